"""The contract between the runner and step implementations: context, step type record, registry."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from pytest_rustchain.errors import StepError

__all__ = [
    "BUILTINS",
    "Outputs",
    "PathUse",
    "Registry",
    "StepContext",
    "StepError",
    "StepType",
    "Substeps",
    "activate",
    "closest",
    "deactivate",
    "register",
    "registry",
]

Outputs = dict[str, Any]


class Substeps(Protocol):
    """Records one sub-step of a running step (an agent's tool call, one item of a batch)."""

    def __call__(
        self,
        name: str,
        *,
        passed: bool,
        reason: str = "",
        outputs: Mapping[str, Any] | None = None,
        duration: float = 0.0,
    ) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class StepContext:
    """Everything a step implementation may use; steps never look at global state."""

    step_id: str
    workspace: Path
    """The mission's workspace root (already resolved); every path parameter is relative to it."""
    cwd: Path
    """Directory relative paths are resolved against (the workspace unless ``working_dir`` moved it)."""
    env: Mapping[str, str]
    """The full environment a subprocess gets (already filtered and merged)."""
    timeout: float
    """Seconds this step may take."""
    mission_path: Path
    rootdir: Path
    max_file_bytes: int = 50 * 1024 * 1024
    output_cap: int = 64 * 1024
    """Bytes of head and of tail kept of each captured stream."""
    extras: Mapping[str, Any] = field(default_factory=dict)
    substep: Substeps | None = None
    """Call ``ctx.substep("call-1", passed=True, outputs={...})`` to report a sub-step: it becomes a
    counted result ``<step>/<name>`` (a subtest of its own under pytest) right after its step.
    A failed sub-step fails the mission as a failed step does; whether the step itself fails is up to
    the step type (raise ``StepError``). Sub-steps of an attempt that is retried are dropped."""


StepFunc = Callable[[Mapping[str, Any], StepContext], Outputs]

PathUse = Literal["read", "write", "delete", "move", "cwd"]
"""What a step does with a path parameter: reads it, writes it, deletes it (recursively with
``recursive: true``), moves it away (deleted, whole trees too), or runs in it (``working_dir``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepType:
    """One step type: its canonical name, its parameter schema and the function that runs it.

    ``run(params, ctx)`` returns the outputs mapping, or raises ``StepError(message, outputs=...)``
    when the step fails. ``params`` are the rendered parameters, already validated by ``schema``.
    """

    name: str
    schema: Mapping[str, Any]
    """JSON Schema (Draft 2020-12) of the ``parameters`` mapping; use additionalProperties: false."""
    run: StepFunc
    aliases: tuple[str, ...] = ()
    family: str = "other"
    """Used for the per-type success rate table (file operations, commands, ...)."""
    command_like: bool = False
    """True when outputs carry exit_code/stdout/stderr (enables those ``expect`` keys)."""
    paths: Mapping[str, PathUse] = field(default_factory=dict)
    """The parameters that name workspace paths and what the step does there. The safety check judges
    each one (containment, protected files), a later step that uses a path under one this step
    writes depends on it, and the dry run lists them: third-party step types get all of that by
    declaring their paths here."""
    content: str | None = None
    """The parameter whose text the step writes to its ``write`` path (create_file's ``content``):
    a script written so is judged as that text when a later step runs it, also in the dry run."""
    creates: Callable[[Mapping[str, Any]], list[str]] | None = None
    """Workspace paths the step makes beyond its ``write`` paths, read from its raw parameters
    (``mkdir`` in a command line), for inferred dependencies."""
    expect_keys: frozenset[str] = frozenset()
    """``expect`` keys only this step type understands (checked by ``check_expect``)."""
    check_expect: Callable[[Mapping[str, Any], Mapping[str, Any]], list[str]] | None = None
    """``check_expect(expect, outputs)`` -> one message per failed type-specific assertion."""

    def path_params(self, use: PathUse | None = None) -> tuple[str, ...]:
        """The names of the path parameters (those with ``use`` when given)."""
        return tuple(k for k, v in self.paths.items() if use is None or v == use)


class Registry(Mapping[str, StepType]):
    """Step types by canonical name, with their aliases.

    The built-in types live in ``BUILTINS``. A pytest session whose plugins or conftest.py files add
    step types works on its own copy, kept in ``config.stash`` and made the active one (``registry()``)
    for that session only: the built-in table is never changed by a session.

    A built-in type is known by name and aliases from ``BUILTIN_MODULES`` until it is first looked
    up; then its module is imported (and registers it): a mission loads only the step types it uses.
    """

    __slots__ = ("_aliases", "_lazy", "_lazy_expect", "_types")

    def __init__(self, types: Iterable[StepType] = ()) -> None:
        self._types: dict[str, StepType] = {}
        self._aliases: dict[str, str] = {}
        self._lazy: dict[str, str] = {}
        """Built-in types not imported yet: name -> module."""
        self._lazy_expect: dict[str, frozenset[str]] = {}
        """Their ``expect_keys``, known without importing them."""
        for step_type in types:
            self.add(step_type)

    def add(self, step_type: StepType) -> StepType:
        self._types[step_type.name] = step_type
        self._lazy.pop(step_type.name, None)
        for alias in step_type.aliases:
            self._aliases[alias] = step_type.name
        return step_type

    def add_lazy(self, name: str, module: str, aliases: Iterable[str] = (), expect_keys: Iterable[str] = ()) -> None:
        """Know the built-in type ``name`` (its aliases, its own expect keys) before ``module`` is imported."""
        if name not in self._types:
            self._lazy[name] = module
            self._lazy_expect[name] = frozenset(expect_keys)
        for alias in aliases:
            self._aliases[alias] = name

    def remove(self, name: str) -> None:
        self._lazy.pop(name, None)
        step_type = self._types.pop(name, None)
        if step_type is not None:
            for alias in step_type.aliases:
                self._aliases.pop(alias, None)

    def expect_key_owners(self, key: str) -> list[str]:
        """The step types whose own ``expect`` keys include ``key``, sorted (imports nothing)."""
        owners = [n for n, t in self._types.items() if key in t.expect_keys]
        owners += [n for n, keys in self._lazy_expect.items() if n not in self._types and key in keys]
        return sorted(owners)

    def copy(self) -> Registry:
        copy = Registry(self._types.values())
        copy._lazy.update(self._lazy)
        copy._lazy_expect.update(self._lazy_expect)
        copy._aliases.update(self._aliases)
        return copy

    def __getitem__(self, name: str) -> StepType:
        found = self._types.get(name)
        if found is not None:
            return found
        module = self._lazy.get(name)
        if module is None:
            raise KeyError(name)
        importlib.import_module(module)  # registers its types in BUILTINS
        step_type = BUILTINS._types[name]
        if self is not BUILTINS:
            self.add(step_type)
        return step_type

    def __contains__(self, name: object) -> bool:
        return name in self._types or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        # A snapshot: looking a type up while iterating (``items()``) imports modules that register more.
        return iter([*self._types, *(name for name in self._lazy if name not in self._types)])

    def __len__(self) -> int:
        return len(self._types) + sum(1 for name in self._lazy if name not in self._types)

    def canonical_name(self, name: str) -> str | None:
        """Map a spelling (``CreateFile``, ``create-file``, ``command``) to its registered name."""
        if name in self:
            return name
        if name in self._aliases:
            return self._aliases[name]
        snake = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
        snake = snake.replace("-", "_")
        if snake in self:
            return snake
        return self._aliases.get(snake)


_AGENT_EXPECT = ("blocked_actions", "contains", "matches", "max_iterations", "tool_args", "tool_called",
                 "tool_not_called", "tool_sequence")  # fmt: skip
_LLM_EXPECT = ("contains", "finish_reason", "first_try", "matches", "max_cost_usd", "max_latency_ms",
               "max_output_tokens", "not_contains")  # fmt: skip

BUILTIN_MODULES: dict[str, tuple[str, tuple[str, ...]] | tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "agent": ("agent", ("Agent",), _AGENT_EXPECT),
    "compile_code": ("code", ()),
    "run_tests": ("code", ()),
    "lint_code": ("code", ()),
    "format_code": ("code", ()),
    "noop": ("noop", ()),
    "command": ("command", ()),
    "parse_json": ("data", ()),
    "parse_yaml": ("data", ()),
    "validate_schema": ("data", ()),
    "create_file": ("files", ()),
    "edit_file": ("files", ()),
    "delete_file": ("files", ()),
    "copy_file": ("files", ()),
    "move_file": ("files", ()),
    "read_file": ("files", ()),
    "list_directory": ("files", ()),
    "http": ("http", ("Http", "HTTP"), ("header", "json_schema", "max_latency_ms", "status")),
    "judge": ("judge", ("Judge",), ("min_mean_score", "min_score")),
    "llm": ("llm", ("Llm", "LLM"), _LLM_EXPECT),
    "chain": ("llm", ("Chain",), _LLM_EXPECT),
    "tool": ("tool", ()),
}
"""Each built-in step type: the module in steps/ that registers it, its aliases and its own ``expect``
keys (a unit test checks this table against what the modules register)."""

BUILTINS = Registry()
"""The step types that ship with pytest-rustchain (each module in steps/ registers its own)."""
for _name, (_module, _aliases, *_expect) in BUILTIN_MODULES.items():
    BUILTINS.add_lazy(_name, f"pytest_rustchain.steps.{_module}", _aliases, *_expect)

_ACTIVE: ContextVar[Registry] = ContextVar("pytest_rustchain_step_types", default=BUILTINS)


def register(step_type: StepType) -> StepType:
    """Add a built-in step type (called by the modules in steps/ when they are imported)."""
    return BUILTINS.add(step_type)


def registry() -> Registry:
    """The step types of the running session (the built-in ones outside pytest)."""
    return _ACTIVE.get()


def activate(types: Registry) -> Token[Registry]:
    """Make ``types`` the registry ``registry()`` returns, until ``deactivate(token)``."""
    return _ACTIVE.set(types)


def deactivate(token: Token[Registry]) -> None:
    _ACTIVE.reset(token)


def canonical_name(name: str) -> str | None:
    """Map a spelling (``CreateFile``, ``create-file``, ``command``) to its registered name."""
    return registry().canonical_name(name)


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice a typo most likely meant (``comand`` -> ``command``, ``timout`` -> ``timeout_seconds``)."""
    best: tuple[float, str] | None = None
    for choice in choices:
        score = difflib.SequenceMatcher(None, word.lower(), choice.lower()).ratio()
        head = choice.split("_")[0]
        if head != choice and len(head) >= 4:
            # A typo of the first word of a snake_case key still points at the key.
            score = max(score, difflib.SequenceMatcher(None, word.lower(), head.lower()).ratio() - 0.05)
        if best is None or score > best[0]:
            best = (score, choice)
    return best[1] if best is not None and best[0] >= 0.6 else None
