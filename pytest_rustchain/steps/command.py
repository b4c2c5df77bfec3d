"""The ``noop`` and ``command`` step types."""

from __future__ import annotations

import functools
import posixpath
import shlex
from collections.abc import Mapping
from typing import Any

from pytest_rustchain.errors import StepError
from pytest_rustchain.steps._exec import parse_output_file, run_argv
from pytest_rustchain.steps.base import Outputs, StepContext, StepType, register

__all__ = ["COMMAND_SCHEMA", "build_argv", "parse_output_file"]

_ENV_SCHEMA = {
    "type": "object",
    "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
    "additionalProperties": {"type": ["string", "number", "boolean"]},
}

COMMAND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["command"],
    "properties": {
        "command": {"type": "string", "minLength": 1},
        "args": {"type": "array", "items": {"type": ["string", "number", "boolean"]}},
        "shell": {"type": "boolean"},
        "working_dir": {"type": "string"},
        "stdin": {"type": "string"},
        "env": _ENV_SCHEMA,
        "capture_stderr": {"type": "boolean", "description": "RustChain's flag: stderr is always captured"},
        "report_level": {
            "enum": ["summary", "detailed"],
            "description": "detailed: a failure shows compiler and test-runner errors and more output",
        },
    },
}


def _word(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _split(command: str) -> tuple[str, ...]:
    """``shlex.split``, once per command line: the safety check and the run both need the argv (and a
    mission often runs the same line again); long lines are split each time rather than kept."""
    return _split_cached(command) if len(command) <= _CACHED_LINE else tuple(shlex.split(command))


_CACHED_LINE = 4096


@functools.lru_cache(maxsize=256)
def _split_cached(command: str) -> tuple[str, ...]:
    return tuple(shlex.split(command))


def build_argv(params: Mapping[str, Any]) -> list[str]:
    """The argv a ``command`` step runs: a shell line, a split command line, or program + args."""
    command: str = params["command"]
    args = [_word(a) for a in params.get("args", ())]
    if params.get("shell", False):
        line = command if not args else " ".join([command, *(shlex.quote(a) for a in args)])
        return ["/bin/sh", "-c", line]
    if args or "args" in params:
        head = [command]
    else:
        try:
            head = list(_split(command))
        except ValueError as exc:
            raise StepError(
                f"cannot split the command line {command!r}: {exc}\nHINT: fix the quoting, or set shell: true"
            ) from None
    if not head:
        raise StepError("the command is empty")
    return [*head, *args]


_SEPARATORS = frozenset({"&&", "||", ";", "|", "&"})


def created_dirs(params: Mapping[str, Any]) -> list[str]:
    """Directories a command line plainly makes (``mkdir -p out/x``), relative to the workspace."""
    working_dir = params.get("working_dir", ".")
    base = working_dir if isinstance(working_dir, str) else "."
    command = params.get("command", "")
    try:
        words = shlex.split(command, comments=True) if isinstance(command, str) else []
    except ValueError:
        return []
    words += [str(a) for a in params.get("args", ())]
    made: list[str] = []
    in_mkdir = False
    for word in words:
        if word in _SEPARATORS or word.endswith(";"):
            in_mkdir = False
            word = word.rstrip(";")
            if not word:
                continue
        if posixpath.basename(word) == "mkdir":
            in_mkdir = True
            continue
        if in_mkdir and not word.startswith("-") and not word.startswith(("/", "~")):
            made.append(posixpath.join(base, word))
    return made


def _command(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
    env = {k: _word(v) for k, v in params.get("env", {}).items()}
    return run_argv(build_argv(params), ctx, working_dir=params.get("working_dir"), env=env, stdin=params.get("stdin"))


register(
    StepType(
        name="command",
        schema=COMMAND_SCHEMA,
        run=_command,
        family="commands",
        command_like=True,
        paths={"working_dir": "cwd"},
        creates=created_dirs,
    )
)
