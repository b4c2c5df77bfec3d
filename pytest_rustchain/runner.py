"""Runs a loaded mission step by step: one lifecycle per step, behind one exception boundary.

A step's life (``MissionRun.execute``) has named phases, in order:

``decide``
    Does it run at all? Dependencies, ``fail_fast``, ``if:``, the mission's time limit. A step that
    does not run gets a SKIPPED result whose ``skip_kind``/``skipped_because`` say why.
``render``
    Its parameters are rendered with the template context. A parameter that is exactly one
    ``{{ expression }}`` keeps the expression's value (a list, a number) unless the step type's
    schema wants text there.
``check``
    The guard judges exactly what will run (argv, stdin, the step's final environment, scripts as
    they are on disk now) and may BLOCK it.
``run``
    ``StepType.run(params, ctx)`` returns outputs or raises ``StepError``; retries repeat
    ``run`` and ``expect``.
``expect``
    The ``expect:`` assertions on the outputs.
``conclude``
    PASSED, FAILED or TOLERATED (``tolerated_by`` says by what); the outputs are published to the
    templates of later steps.

Whatever any phase raises (a ``StepError``, a ``TemplateError``, a ``RecursionError`` in a template
macro, any exception of a third-party step type) fails that step with the phase, the exception's
type and text: it counts in the success rate, its dependents are skipped, and every report shows it.
Only ``KeyboardInterrupt``/``SystemExit`` pass through; steps that never got a result then count
as not run (``result()``).

A step type plugs in as a ``steps.StepType`` (name, parameter schema, ``run``; see steps/base.py),
registered by a module in ``steps/`` or returned by the ``pytest_rustchain_step_types`` hook. A step
that produces sub-steps (tool calls, nested steps) reports them through ``ctx.substep`` (see
``StepContext``); each becomes its own counted result ``<step>/<sub>``. A whole mission repeated
(``r2/<step>``) is one more ``MissionRun`` with its own ``prefix`` in a ``ChainRun``.
"""

from __future__ import annotations

import datetime as dt
import enum
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_rustchain import plan, steps, templating
from pytest_rustchain.environment import allowed_environment
from pytest_rustchain.errors import StepError, StepSkipped, UnsafeStepError
from pytest_rustchain.expect import check_expectations
from pytest_rustchain.guard import Guard, StepVerdict
from pytest_rustchain.levels import LEVELS, Policy, check_safety_level
from pytest_rustchain.masking import Masker, config_file_secrets, secret_values
from pytest_rustchain.model import (
    Mission,
    MissionResult,
    MissionStatus,
    SkipKind,
    Step,
    StepResult,
    StepStatus,
)
from pytest_rustchain.paths import resolve_in_workspace
from pytest_rustchain.steps._output import OutputFile

if TYPE_CHECKING:
    from pytest_rustchain.sandbox import Sandbox

__all__ = ["ChainRun", "MissionRun", "Phase", "RunSettings", "check_safety_level", "mission_policy", "run_steps"]

_TAIL_LINES = 20
# expect keys whose lone `{{ expression }}` values keep their native value (compared, not searched).
_NATIVE_EXPECT = frozenset({"output", "json", "exit_code"})
_STATUS_FUNCS = ("success()", "failure()", "always()", "cancelled()")
_SHELL_KEYS = frozenset({"command"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSettings:
    rootdir: Path
    pass_env: tuple[str, ...] = ()
    source_env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    vars_override: Mapping[str, Any] = field(default_factory=dict)
    matrix: Mapping[str, Any] = field(default_factory=dict)
    """The ``matrix:`` combination of this item: ``matrix.<name>``, and ``vars.<name>`` unless overridden."""
    matrix_id: str = ""
    """That combination's id (``python=3.12``): each combination records its model answers in its own cassette."""
    output_cap: int = 64 * 1024
    max_file_bytes: int = 50 * 1024 * 1024
    python: str = sys.executable
    tolerate: bool = True
    """False under ``--runxfail``: tolerated failures become real ones."""
    policy: Policy = field(default_factory=Policy)
    secret_names: tuple[str, ...] = ()
    """Extra variable names whose values are masked (ini ``mission_secrets``)."""
    github_actions: bool = False
    sandbox: Sandbox | None = None
    sleep: Callable[[float], None] = time.sleep
    llm: Any = None
    """``llm.config.LLMOptions``: providers, cassette directory and record mode (None: defaults)."""
    home_files: tuple[tuple[Path, str], ...] = ()
    """User configuration files copied into each mission's HOME: (the file, its path under HOME)."""
    fixtures: Mapping[str, Any] = field(default_factory=dict)
    """``fixtures.<name>`` in templates: the values of the mission's pytest fixtures and setup files."""
    fixture_paths: tuple[Path, ...] = ()
    """Files and directories of those fixtures (a setup file's directory, a pytest fixture's paths) that
    the sandbox keeps readable, although pytest's temporary directory lies in the host's hidden /tmp."""


def _native_keys(spec: steps.StepType) -> frozenset[str]:
    """Parameters where a lone ``{{ expression }}`` keeps its value: those whose schema takes
    something other than text only (``data:`` of validate_schema takes any JSON value)."""
    props = spec.schema.get("properties", {})
    keys = set()
    for key, sub in props.items():
        kind = sub.get("type") if isinstance(sub, Mapping) else None
        if kind != "string":
            keys.add(key)
    return frozenset(keys)


def _tail(text: str, lines: int = _TAIL_LINES) -> str:
    parts = text.rstrip("\n").splitlines()
    shown = parts[-lines:]
    prefix = ["[...]"] if len(parts) > lines else []
    return "\n".join("    " + line for line in (*prefix, *shown))


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    if not text.isprintable():
        # NUL, escape sequences and bidi controls are shown, never sent to the terminal as they are.
        text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


_OUTCOMES = {
    StepStatus.PASSED: "success",
    StepStatus.FAILED: "failure",
    StepStatus.TOLERATED: "failure",
    StepStatus.BLOCKED: "failure",
    StepStatus.SKIPPED: "skipped",
}


_DIAGNOSED = frozenset({"compile_code", "run_tests", "lint_code"})
_HEADLINE_DIAGNOSTICS = 5


class Phase(enum.StrEnum):
    """The phases of a step's life, in order; a failed step's result names the one that failed."""

    DECIDE = "decide"
    RENDER = "render"
    CHECK = "check"
    RUN = "run"
    EXPECT = "expect"
    CONCLUDE = "conclude"


class _StepExtras(Mapping[str, Any]):
    """A step's ``extras``: fixed values, and ``llm_runtime``, which builds the run's model runtime
    (cassette, session) when a step first looks it up: missions without model steps never build one."""

    __slots__ = ("_base", "_run")

    def __init__(self, base: Mapping[str, Any], run: MissionRun) -> None:
        self._base = base
        self._run = run

    def __getitem__(self, key: str) -> Any:
        if key == _RUNTIME_KEY:
            return self._run.llm_runtime
        return self._base[key]

    def __iter__(self) -> Iterator[str]:
        yield _RUNTIME_KEY
        yield from self._base

    def __len__(self) -> int:
        return len(self._base) + 1


_RUNTIME_KEY = "llm_runtime"
"""``llm.runtime.RUNTIME_KEY`` (a unit test keeps them equal), without importing the model layer."""


class MissionRun:
    """Iterate to get the steps in run order; ``execute`` each; ``result()`` at the end."""

    def __init__(
        self,
        mission: Mission,
        *,
        workspace: Path,
        home: Path,
        tmpdir: Path,
        settings: RunSettings,
        prefix: str = "",
        repeat: int = 0,
        workspace_is_real: bool = False,
    ) -> None:
        """``workspace_is_real``: ``workspace`` is already resolved (``create_workspace`` resolves the
        directories it makes); else it is resolved here."""
        self.mission = mission
        self.prefix = prefix
        self.repeat = repeat
        """Which repeat of the mission this is, from 0 (cassettes replay each repeat's own answers)."""
        self.workspace = workspace if workspace_is_real else workspace.resolve()
        self.settings = settings
        self.started = time.monotonic()
        self.timestamp = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        self.results: dict[str, StepResult] = {}
        self._hard_failed: list[str] = []  # failed or blocked, in order; drives deps, fail_fast, failure()
        self._bad: dict[str, str] = {}  # step id -> root failed step id (failed, or skipped for a failure)
        self._timed_out = False
        self._order = plan.order(mission.steps)
        base = allowed_environment(settings.source_env, settings.pass_env)
        base.update({"HOME": str(home), "TMPDIR": str(tmpdir), "MISSION_WORKSPACE": str(self.workspace)})
        base.update(mission.env)
        self.env = base
        self._support_dirs = (home, tmpdir)
        self.policy = mission_policy(settings.policy, mission.config.safety)
        self.guard = Guard(
            policy=self.policy,
            workspace=self.workspace,
            workspace_kind=mission.config.workspace.kind,
            mission_path=mission.display_path,
        )
        secrets = secret_values(settings.source_env, settings.secret_names)
        secrets += secret_values({**mission.env, **{k: v for s in mission.steps for k, v in s.env.items()}})
        secrets += copy_home_files(settings.home_files, home) if not prefix else _home_file_secrets(settings.home_files)
        llm_options = settings.llm
        if llm_options is not None:
            secrets += llm_options.settings.secret_values(settings.source_env)
        self.masker = Masker(secrets=tuple(secrets), neutralise_workflow_commands=settings.github_actions)
        check_safety_level(mission, settings.policy)
        self._unavailable: dict[str, str] = {}  # step id -> reason it could not run (no provider)
        # Looked up once per step type and run: the registry does not change while a mission runs.
        self._specs: dict[str, steps.StepType] = {}
        self._native: dict[str, frozenset[str]] = {}
        self._llm: Any = None
        self._extras_base: dict[str, Any] | None = None
        self._output = OutputFile()
        # Text given on the command line that reads as a number compares with numbers as one.
        # The combination wins over the mission's vars; the configuration and command line win over both.
        self._vars = {
            **mission.vars,
            **settings.matrix,
            **{k: templating.numeric_text(v) for k, v in settings.vars_override.items()},
        }
        self._phase = Phase.DECIDE
        self._current: Step | None = None
        self._params: Mapping[str, Any] = {}
        self._subs: list[StepResult] = []
        self._substeps: dict[str, tuple[StepResult, ...]] = {}
        self._context: dict[str, Any] = {
            "vars": self._vars,
            "matrix": dict(settings.matrix),
            "env": dict(base),
            "steps": {},
            "timestamp": self.timestamp,
            "workspace": str(self.workspace),
            "mission": {
                "name": mission.name,
                "path": mission.display_path,
                "stem": mission.stem,
                "repeat": repeat + 1,
            },
            "python": settings.python,
            "fixtures": dict(settings.fixtures),
        }

    # -- iteration -------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Step]:
        return iter(self._order)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _remaining(self) -> float | None:
        limit = self.mission.config.mission_timeout_seconds
        if limit is None:
            return None
        return limit - self.elapsed

    # -- deciding --------------------------------------------------------------------------------

    def _skip(self, step: Step, reason: str, kind: SkipKind, root: str | None = None) -> StepResult:
        because = ""
        if kind is SkipKind.FAILURE and root:
            self._bad[step.id] = root
            because = self.prefix + root
        return self._result(step, StepStatus.SKIPPED, reason=reason, skip_kind=kind, skipped_because=because)

    def _result(
        self, step: Step, status: StepStatus, *, verdict: StepVerdict | None = None, **fields: Any
    ) -> StepResult:
        """Record the result of ``step``: its id (prefixed for next missions), type and risk filled in."""
        if verdict is not None:
            fields.update(risk=verdict.score, findings=tuple(verdict.findings_dicts()))
        # `steps.<id>.outcome` and `.conclusion` in `if:` and templates, as in GitHub Actions.
        known = self._context["steps"]
        view = known.get(step.id)
        if view is None:
            view = known[step.id] = templating.StepView(step.id)
        view["outcome"] = _OUTCOMES.get(status, "failure")
        tolerated = status is StepStatus.TOLERATED and step.continue_on_error
        view["conclusion"] = "success" if tolerated else view["outcome"]
        return self._record(
            StepResult(
                step_id=self.prefix + step.id,
                step_type=step.step_type,
                family=self._family(step),
                status=status,
                line=step.line,
                source=step.source or self.mission.display_path,
                **fields,
            )
        )

    def _mark_failed(self, step: Step) -> None:
        """The step failed in a way that skips its dependents, triggers fail_fast and failure()."""
        self._hard_failed.append(step.id)
        self._bad[step.id] = step.id

    def _spec(self, step_type: str) -> steps.StepType:
        spec = self._specs.get(step_type)
        if spec is None:
            spec = self._specs[step_type] = steps.registry()[step_type]
        return spec

    def _family(self, step: Step) -> str:
        return self._spec(step.step_type).family

    def _record(self, result: StepResult) -> StepResult:
        if self.masker.active:
            result = replace(
                result,
                reason=self.masker.text(result.reason),
                outputs=self.masker.value(dict(result.outputs)),
                params=self.masker.value(dict(result.params)),
            )
        self.results[result.step_id] = result
        return result

    def _status_context(self) -> dict[str, Any]:
        failed = bool(self._hard_failed)
        return {
            **self._context,
            "success": lambda: not failed,
            "failure": lambda: failed,
            "always": lambda: True,
            "cancelled": lambda: self._timed_out,
        }

    @property
    def failed(self) -> bool:
        """Whether a step failed in a way that fails this mission (blocked included)."""
        return bool(self._hard_failed)

    def skip_all(self, step: Step, reason: str) -> StepResult:
        return self._skip(step, reason, SkipKind.FAILURE, root=step.id)

    def execute(self, step: Step) -> StepResult:
        """Decide whether ``step`` runs, run it, and return its recorded result; never raises an
        ``Exception``: whatever goes wrong in any phase becomes the step's failure."""
        self._phase = Phase.DECIDE
        self._params = {}
        self._subs = []
        self._current = step
        started = time.monotonic()
        try:
            result = self._decide(step) or self._run(step, started)
        except Exception as exc:
            problem = f"{self._phase}: {type(exc).__name__}: {exc}"
            result = self._fail(step, self._params, {}, [problem], time.monotonic() - started, 1)
        if self._subs:
            self._substeps[step.id] = tuple(self._record(sub) for sub in self._subs)
        return result

    def substeps(self, step: Step) -> tuple[StepResult, ...]:
        """The sub-steps ``step`` reported through ``ctx.substep``, in order (recorded after it)."""
        return self._substeps.get(step.id, ())

    def _substep_recorder(self, step: Step) -> steps.Substeps:
        family = self._family(step)

        def record(
            name: str,
            *,
            passed: bool,
            reason: str = "",
            outputs: Mapping[str, Any] | None = None,
            duration: float = 0.0,
        ) -> None:
            tolerated_by = "" if passed else self._tolerated_by(step)
            status = StepStatus.PASSED if passed else StepStatus.TOLERATED if tolerated_by else StepStatus.FAILED
            self._subs.append(
                StepResult(
                    step_id=f"{self.prefix}{step.id}/{name}",
                    step_type=step.step_type,
                    family=family,
                    status=status,
                    reason=(f"tolerated ({tolerated_by}): " if tolerated_by else "") + reason,
                    tolerated_by=tolerated_by,
                    duration=duration,
                    outputs=dict(outputs or {}),
                    line=step.line,
                    source=step.source or self.mission.display_path,
                    phase="" if passed else str(Phase.RUN),
                )
            )

        return record

    def _decide(self, step: Step) -> StepResult | None:
        """The skip result when ``step`` does not run, else None."""
        remaining = self._remaining()
        if remaining is not None and remaining <= 0:
            self._timed_out = True
        condition = step.condition
        if condition == "always()":
            return None
        dependencies = step.all_dependencies
        bad_deps = [d for d in dependencies if d in self._bad]
        uses_status = condition != "success()" and any(f in condition for f in _STATUS_FUNCS)
        if self._timed_out:
            limit = self.mission.config.mission_timeout_seconds or 0
            return self._skip(step, f"mission timed out after {limit:g} s", SkipKind.FAILURE, root=step.id)
        unavailable = [d for d in dependencies if d in self._unavailable]
        if unavailable and not uses_status and not bad_deps:
            dep = unavailable[0]
            self._unavailable[step.id] = self._unavailable[dep]
            return self._skip(step, f"dependency '{dep}' did not run: {self._unavailable[dep]}", SkipKind.PROVIDER)
        if condition == "failure()":
            if not self._hard_failed:
                return self._skip(step, "if: failure() and no earlier step failed", SkipKind.CONDITION)
        elif not uses_status:
            if bad_deps:
                dep = bad_deps[0]
                root = self._bad[dep]
                how = "failed" if root == dep else f"was skipped because '{root}' failed"
                why = step.why(dep)
                reason = f"dependency '{dep}' {how}" + (f" ({why})" if why else "")
                return self._skip(step, reason, SkipKind.FAILURE, root=root)
            if self._hard_failed and self.mission.config.fail_fast:
                first = self._hard_failed[0]
                return self._skip(step, f"skipped after '{first}' failed (fail_fast)", SkipKind.FAILURE, root=first)
        if condition not in ("success()", "failure()"):
            try:
                value = templating.evaluate(condition, self._status_context())
            except templating.TemplateError as exc:
                return self._fail(step, {}, {}, [f"if: {exc}"], 0.0, 1)
            if not value:
                return self._skip(step, f"if: {condition} is false", SkipKind.CONDITION)
        return None

    # -- running ---------------------------------------------------------------------------------

    def _timeout_for(self, step: Step) -> float:
        timeout = step.timeout_seconds or self.mission.config.timeout_seconds
        remaining = self._remaining()
        if remaining is not None and step.condition != "always()":
            timeout = max(0.05, min(timeout, remaining))
        return timeout

    def _resolver(self, cwd: Path) -> Callable[..., Path]:
        def resolve(rel: str, *, follow_last: bool = True) -> Path:
            return resolve_in_workspace(self.workspace, rel, cwd=cwd, follow_last=follow_last)

        return resolve

    def _run(self, step: Step, started: float) -> StepResult:
        spec = self._spec(step.step_type)
        self._phase = Phase.RENDER
        try:
            params = self._render_params(step, spec)
        except templating.TemplateError as exc:
            return self._fail(step, step.parameters, {}, [f"parameters: {exc}"], time.monotonic() - started, 1)
        self._params = params
        env = dict(self.env)
        env.update(step.env)
        ctx = steps.StepContext(
            step_id=step.id,
            workspace=self.workspace,
            cwd=self.workspace,
            env=env,
            timeout=self._timeout_for(step),
            mission_path=self.mission.path,
            rootdir=self.settings.rootdir,
            max_file_bytes=self.settings.max_file_bytes,
            output_cap=self.settings.output_cap,
            extras=self._extras(),
            substep=self._substep_recorder(step),
        )
        self._phase = Phase.CHECK
        verdict = self.guard.judge(step, params, env=env)
        if verdict.blocked:
            self._mark_failed(step)
            return self._result(
                step, StepStatus.BLOCKED, verdict=verdict, reason=verdict.explanation,
                duration=time.monotonic() - started, params=params, phase=str(Phase.CHECK),
            )  # fmt: skip
        attempts = 0
        delay = step.retries.delay_seconds
        while True:
            attempts += 1
            try:
                outputs, problems = self._attempt(step, spec, params, ctx)
            except StepSkipped as exc:
                self._unavailable[step.id] = exc.reason.splitlines()[0]
                return self._skip(step, exc.reason, SkipKind.PROVIDER)
            if not problems:
                self._phase = Phase.CONCLUDE
                self._remember_written(step, params)
                self._publish(step, outputs, "passed")
                flaky = f"passed on attempt {attempts} of {step.retries.count + 1} (flaky)" if attempts > 1 else ""
                if outputs.get("first_try_passed") is False and isinstance(outputs.get("attempts"), int):
                    # Passed only after its own retries (an llm validation retry): flaky as well.
                    flaky = f"passed on validation attempt {outputs['attempts']} (flaky)"
                    attempts += outputs["attempts"] - 1
                return self._result(
                    step, StepStatus.PASSED, verdict=verdict, reason=flaky, duration=time.monotonic() - started,
                    outputs=outputs, attempts=attempts, params=params,
                )  # fmt: skip
            remaining = self._remaining()
            out_of_time = remaining is not None and remaining <= 0
            if attempts > step.retries.count or out_of_time:
                if out_of_time:
                    limit = self.mission.config.mission_timeout_seconds or 0
                    problems.append(f"the mission's time limit ran out during this step (mission timeout {limit:g} s)")
                return self._fail(step, params, outputs, problems, time.monotonic() - started, attempts, verdict)
            self.settings.sleep(delay)
            delay *= step.retries.backoff

    def _attempt(
        self, step: Step, spec: steps.StepType, params: Mapping[str, Any], ctx: steps.StepContext
    ) -> tuple[dict[str, Any], list[str]]:
        """One try: ``run`` then ``expect``; (outputs, problems), problems empty when it passed."""
        self._phase = Phase.RUN
        self._subs.clear()  # a retried attempt's sub-steps are replaced by the next attempt's
        attempt_start = time.monotonic()
        outputs: dict[str, Any] = {}
        problems: list[str] = []
        try:
            outputs = dict(spec.run(params, ctx))
        except StepSkipped:
            raise
        except StepError as exc:
            outputs = dict(exc.outputs)
            problems.append(exc.message)
        except Exception as exc:
            # A step type's own bug fails the attempt, like a StepError, naming the exception.
            problems.append(f"run: {type(exc).__name__}: {exc}")
        duration = time.monotonic() - attempt_start
        if not problems or spec.command_like:
            self._phase = Phase.EXPECT
            try:
                expect = self._render(step, step.expect, extra={"result": outputs}, native_keys=_NATIVE_EXPECT)
                problems.extend(
                    check_expectations(
                        expect,
                        outputs,
                        duration=duration,
                        resolve=self._resolver(ctx.cwd),
                        command_like=spec.command_like and not (problems and outputs.get("exit_code") is None),
                    )
                )
                if spec.check_expect is not None and not problems:
                    problems.extend(spec.check_expect(expect, outputs))
            except templating.TemplateError as exc:
                problems.append(f"expect: {exc}")
        return outputs, problems

    def _render_params(self, step: Step, spec: steps.StepType) -> dict[str, Any]:
        raw = step.parameters
        refs: dict[str, str] = {}
        if step.step_type == "create_file" and step.render and isinstance(raw.get("content"), str):
            content, refs = self._single_brace(raw["content"])
            raw = {**raw, "content": content}
        shell = spec.command_like and bool(step.parameters.get("shell"))
        native = self._native.get(step.step_type)
        if native is None:
            native = self._native[step.step_type] = _native_keys(spec)
        params = self._render(step, raw, shell_keys=_SHELL_KEYS if shell else frozenset(), native_keys=native)
        for marker, value in refs.items():
            params["content"] = params["content"].replace(marker, value)
        if step.template is not None:
            params["content"] = (
                templating.render_string(step.template, self._context, strict=not self.mission.compat)
                if step.render
                else step.template
            )
        return params

    _BRACE = re.compile(r"(?<!\{)\{([A-Za-z][A-Za-z0-9_-]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\}(?!\})")

    def _single_brace(self, text: str) -> tuple[str, dict[str, str]]:
        """RustChain's ``{step_id}`` in file content: the output of an earlier step with that id.

        Only names of earlier steps are replaced, so Python f-strings and JSON stay as written. The
        values go in after rendering, through markers, so inserted text is never rendered again.
        """
        done = self._context["steps"]
        values: dict[str, str] = {}

        def sub(m: re.Match[str]) -> str:
            view = done.get(m.group(1))
            if view is None:
                return m.group(0)
            key = m.group(2)
            if key is None:
                key = next((k for k in ("content", "stdout", "message", "body") if k in view), None)
            if key is None or key not in view:
                return m.group(0)
            marker = f"\x00rc{len(values)}\x00"
            values[marker] = str(view[key])
            return marker

        return self._BRACE.sub(sub, text), values

    def _extras(self) -> Mapping[str, Any]:
        """The step context's ``extras``: the model runtime (built when a step first asks for it) and
        what the sandbox needs, the same for every step of this run."""
        if self._extras_base is None:
            self._extras_base = self._sandbox_extras()
            self._extras_base["mission_output"] = self._output
        return _StepExtras(self._extras_base, self)

    def _sandbox_extras(self) -> dict[str, Any]:
        if self.settings.sandbox is None:
            return {"python": self.settings.python}
        from pytest_rustchain.sandbox import sandbox_readable
        from pytest_rustchain.sandbox import tcp_ports as sandbox_tcp_ports

        project = self.mission.config.workspace.kind == "project"
        return {
            "python": self.settings.python,
            "sandbox": self.settings.sandbox,
            "sandbox_writable": (self.workspace, *self._support_dirs),
            # A project checkout's .git stays read-only: hooks or config planted there would run later,
            # outside the sandbox.
            "sandbox_read_only": (self.workspace / ".git",) if project else (),
            "sandbox_network": bool(self.policy.allow_hosts),
            "sandbox_tcp_ports": sandbox_tcp_ports(self.policy.allow_hosts),
            "sandbox_readable": (
                self.settings.rootdir,
                *sandbox_readable(),
                Path(self.settings.python).parent,
                *self.settings.fixture_paths,
            ),
        }

    # -- model access and nested steps ----------------------------------------------------------

    @property
    def llm_runtime(self) -> Any:
        """The item's ``LLMRuntime``, built on first use (loading nothing for missions without models)."""
        if self._llm is None:
            from pytest_rustchain.llm.config import LLMOptions
            from pytest_rustchain.llm.runtime import build_runtime

            options = self.settings.llm or LLMOptions()
            self._llm = build_runtime(
                options,
                mission_path=self.mission.path,
                mission_stem=self.mission.stem + (f".{self.settings.matrix_id}" if self.settings.matrix_id else ""),
                rootdir=self.settings.rootdir,
                masker=self.masker,
                volatile={
                    "<workspace>": str(self.workspace),
                    "<home>": str(self._support_dirs[0]),
                    "<tmpdir>": str(self._support_dirs[1]),
                    "<timestamp>": self.timestamp,
                    "<python>": self.settings.python,
                },
                allow_hosts=self.policy.allow_hosts,
                environ=self.settings.source_env,
                run_step=self._run_nested,
                outputs_of=self._outputs_of,
                compat=self.mission.compat,
                repeat=self.repeat,
            )
        return self._llm

    def _outputs_of(self, step_id: str) -> Mapping[str, Any] | None:
        result = self.results.get(self.prefix + step_id)
        if result is None or result.status is not StepStatus.PASSED:
            return None
        view = self._context["steps"].get(step_id)
        return dict(view["outputs"]) if view is not None else None

    def _run_nested(self, step_type: str, params: Mapping[str, Any], *, level: str | None = None) -> Mapping[str, Any]:
        """Run another step type for the current step (validation, output_file, a tool): its schema,
        the guard and containment apply as to a written step; its parameters are never rendered.
        ``level`` narrows the mission's policy for this call (an agent's ``tool_policy``), never widens it."""
        import jsonschema

        spec = steps.registry()[step_type]
        errors = list(jsonschema.Draft202012Validator(spec.schema).iter_errors(dict(params)))
        if errors:
            raise StepError(f"{step_type}: invalid parameters: {errors[0].message}")
        parent = self._current
        step = Step(
            id=f"{parent.id}-{step_type}"[:64] if parent else step_type,
            name=step_type,
            step_type=step_type,
            parameters=dict(params),
            line=parent.line if parent else 0,
            source=parent.source if parent else "",
        )
        env = dict(self.env)
        if parent is not None:
            env.update(parent.env)
        verdict = self.guard.judge(step, params, env=env)
        narrowed = level is not None and LEVELS[level] < verdict.verdict.threshold and verdict.score >= LEVELS[level]
        if verdict.blocked or narrowed:
            explanation = verdict.explanation
            if narrowed and not verdict.blocked:
                head, _, rest = explanation.partition("\n")
                head = head.replace("ALLOWED", "BLOCKED", 1).replace(
                    f"policy {verdict.verdict.level}", f"policy {level} (tool_policy)"
                )
                explanation = f"{head}\n{rest}".rstrip()
            rule_ids = tuple(f.rule_id for f in verdict.verdict.findings)
            raise UnsafeStepError(step.id, explanation, score=verdict.score, rule_ids=rule_ids)
        ctx = steps.StepContext(
            step_id=step.id,
            workspace=self.workspace,
            cwd=self.workspace,
            env=env,
            timeout=self._timeout_for(parent) if parent else self.mission.config.timeout_seconds,
            mission_path=self.mission.path,
            rootdir=self.settings.rootdir,
            max_file_bytes=self.settings.max_file_bytes,
            output_cap=self.settings.output_cap,
            extras=self._extras(),
        )
        outputs = dict(spec.run(params, ctx))
        self._remember_written(step, params)
        return outputs

    def finish_llm(self) -> dict[str, Any]:
        """Write the cassette (if this run changed it) and return the item's model-call summary."""
        if self._llm is None:
            if self._extras_base is None or self.settings.llm is None or not self.settings.llm.prune:
                return {}
            self.llm_runtime  # noqa: B018 - pruning drops what a run that ran steps left unused, all of it here
        from pytest_rustchain.llm.runtime import finish_runtime

        return finish_runtime(self._llm)

    def _remember_written(self, step: Step, params: Mapping[str, Any]) -> None:
        """Scripts this step wrote, as they are on disk: running one later is judged as its text."""
        if not any(use == "write" for use in self._spec(step.step_type).paths.values()):
            return  # writes no file (noop, command): nothing to read back
        for rel, text in written_text(step, params, workspace=self.workspace):
            self.guard.remember_written(rel, text)

    def _render(
        self,
        step: Step,
        value: Mapping[str, Any],
        *,
        shell_keys: frozenset[str] = frozenset(),
        native_keys: frozenset[str] = frozenset(),
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        if not step.render or not value:
            return dict(value)
        context = self._context if extra is None else {**self._context, **extra}
        rendered: dict[str, Any] = {}
        for key, item in value.items():
            try:
                rendered[key] = templating.render_value(
                    {key: item}, context, strict=not self.mission.compat, shell_keys=shell_keys,
                    native=key in native_keys,
                )[key]  # fmt: skip
            except templating.TemplateError as exc:
                # Name the parameter (or expect key), so a long step points at the one string to fix.
                raise templating.TemplateError(f"{key}: {exc}") from None
        return rendered

    def _publish(self, step: Step, outputs: Mapping[str, Any], status: str) -> None:
        # Text that reads as a number compares with numbers as one in `if:` and templates.
        numeric = {k: templating.numeric_text(v) for k, v in outputs.items()}
        view = templating.StepView(step.id, numeric)
        view["outputs"] = dict(numeric)
        view["status"] = status
        self._context["steps"][step.id] = view
        if self.mission.compat and step.step_type in ("llm", "chain") and "content" in outputs:
            # RustChain's templates name an llm answer `<id>_response`.
            self._context[f"{step.id}_response"] = outputs["content"]

    def _fail(
        self,
        step: Step,
        params: Mapping[str, Any],
        outputs: Mapping[str, Any],
        problems: list[str],
        duration: float,
        attempts: int,
        verdict: StepVerdict | None = None,
    ) -> StepResult:
        diagnostics = self._diagnostics(step, params, outputs)
        if diagnostics:
            outputs = {**outputs, "diagnostics": diagnostics}
        self._publish(step, outputs, "failed")
        text = self._failure_text(step, params, outputs, problems, attempts)
        tolerated_by = self._tolerated_by(step)
        if tolerated_by:
            status = StepStatus.TOLERATED
            text = f"tolerated ({tolerated_by}): " + text
            if step.min_pass_rate is not None:
                # Judged over the repeats: its dependents cannot run without it, but the steps that do
                # not need it keep running (no fail_fast), so their rates stay measured.
                self._bad[step.id] = step.id
            elif not step.continue_on_error:
                # xfail and threshold missions tolerate the failure in the verdict only: dependents
                # are still skipped, as they would be in the same mission without a threshold.
                self._mark_failed(step)
        else:
            # Under --runxfail a tolerated failure is a real one, with the usual consequences.
            status = StepStatus.FAILED
            self._mark_failed(step)
        return self._result(
            step, status, verdict=verdict, reason=text, duration=duration, outputs=outputs,
            attempts=attempts, params=params, tolerated_by=tolerated_by, phase=str(self._phase),
        )  # fmt: skip

    def _diagnostics(self, step: Step, params: Mapping[str, Any], outputs: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Compiler and test-runner errors in a failed step's output, with workspace-relative files
        (and ``source``, the file in the project, when the workspace is the checkout or a copy of it)."""
        if step.step_type not in _DIAGNOSED and params.get("report_level") != "detailed":
            return []
        text = "\n".join(str(outputs.get(k, "")) for k in ("stderr", "stdout"))
        from pytest_rustchain.diagnostics import find_diagnostics  # its patterns load at the first failure

        found = find_diagnostics(text)
        if not found:
            return []
        base = str(params.get("path", params.get("working_dir", ".")) or ".")
        spec = self.mission.config.workspace
        out: list[dict[str, Any]] = []
        for diag in found:
            entry: dict[str, Any] = diag.to_dict()
            file = diag.file
            if Path(file).is_absolute():
                inside = os.path.relpath(file, self.workspace)
                file = inside if not inside.startswith("..") else file
            else:
                file = os.path.normpath(Path(base, file))
            entry["file"] = file
            source = ""
            if not Path(file).is_absolute() and not file.startswith(".."):
                if spec.kind == "project":
                    source = file
                elif spec.kind == "copy" and spec.copy_from is not None:
                    try:
                        source = (spec.copy_from / file).relative_to(self.settings.rootdir.resolve()).as_posix()
                    except ValueError:
                        source = ""
            entry["source"] = source
            out.append(entry)
        return out

    def _tolerated_by(self, step: Step) -> str:
        """What tolerates a failure of ``step`` (empty when nothing does, or under --runxfail)."""
        mission = self.mission
        tolerated_by = ""
        if step.continue_on_error:
            tolerated_by = "continue_on_error"
        elif step.min_pass_rate is not None:
            tolerated_by = f"min_pass_rate {step.min_pass_rate:g}, judged over the repeats"
        elif mission.xfail is not None:
            tolerated_by = f"mission xfail: {mission.xfail}"
        elif mission.config.success_threshold is not None:
            tolerated_by = f"success_threshold {mission.config.success_threshold:g}"
        return tolerated_by if self.settings.tolerate else ""

    def _failure_text(
        self, step: Step, params: Mapping[str, Any], outputs: Mapping[str, Any], problems: list[str], attempts: int
    ) -> str:
        where = f"{step.source or self.mission.display_path}:{step.line}"
        lines = [f"step '{self.prefix}{step.id}' ({step.step_type}) failed at {where}"]
        found = outputs.get("diagnostics") or []
        for diag in found[:_HEADLINE_DIAGNOSTICS]:
            where_diag = diag["file"] + (f":{diag['line']}" if diag["line"] else "")
            where_diag += f":{diag['col']}" if diag["line"] and diag["col"] else ""
            lines.append(f"  {where_diag}: {diag['message']}")
        if len(found) > _HEADLINE_DIAGNOSTICS:
            lines.append(f"  ... {len(found) - _HEADLINE_DIAGNOSTICS} more errors (see the report's diagnostics)")
        for problem in problems:
            lines.extend(f"  {part}" for part in problem.splitlines() or [""])
        if "command" in outputs:
            lines.append(f"  command: {_short(outputs['command'])}")
        elif params:
            shown = ", ".join(f"{k}={_short(v, 80)}" for k, v in params.items() if k not in ("content",))
            if shown:
                lines.append(f"  parameters: {shown}")
        if "exit_code" in outputs and not any(p.startswith("exit code") for p in problems):
            lines.append(f"  exit code: {outputs['exit_code']}")
        if attempts > 1:
            lines.append(f"  attempts: {attempts}")
        if isinstance(outputs.get("hint"), str):
            lines.append(f"  HINT: {outputs['hint']}")
        for stream in ("stderr", "stdout"):
            text = outputs.get(stream)
            if isinstance(text, str) and text.strip():
                total = outputs.get(f"{stream}_bytes")
                size = f", {total:,} bytes in all" if isinstance(total, int) and total > len(text) else ""
                lines.append(f"  {stream} (last lines{size}):")
                lines.append(_tail(text, _TAIL_LINES * 3 if params.get("report_level") == "detailed" else _TAIL_LINES))
        lines.append(f"  workspace: {self.workspace}")
        return "\n".join(lines)

    # -- the end ---------------------------------------------------------------------------------

    def result(self) -> MissionResult:
        mission = self.mission
        self._output.discard()
        for step in self._order:
            if self.prefix + step.id not in self.results:
                # Interrupted (Ctrl-C, SIGTERM) before this step had a result: it counts, as not run.
                self._skip(step, "not run: the run stopped before this step", SkipKind.FAILURE, root=step.id)
        ordered: dict[str, StepResult] = {}
        for step in self._order:
            ordered[self.prefix + step.id] = self.results[self.prefix + step.id]
            ordered.update((sub.step_id, sub) for sub in self._substeps.get(step.id, ()))
        failed = [r for r in ordered.values() if r.status in (StepStatus.FAILED, StepStatus.BLOCKED)]
        tolerated = [r for r in ordered.values() if r.status is StepStatus.TOLERATED]
        blocked = [r for r in failed if r.status is StepStatus.BLOCKED]
        counted = [r for r in ordered.values() if r.counted]
        passed = sum(1 for r in counted if r.status is StepStatus.PASSED)
        rate = passed / len(counted) if counted else None
        threshold = mission.config.success_threshold
        message = ""
        if mission.xfail is not None and not blocked:
            problems = failed + [r for r in tolerated if r.tolerated_by.startswith("mission xfail")]
            status = MissionStatus.XFAILED if problems else MissionStatus.XPASSED
            if status is MissionStatus.XPASSED:
                message = f"mission marked xfail ({mission.xfail}) but every step passed"
            else:
                message = _rollup(problems, len(counted))
        elif threshold is not None:
            met = rate is not None and rate >= threshold
            ok = met and not failed
            status = MissionStatus.PASSED if ok else MissionStatus.FAILED
            if not ok:
                shown = "n/a" if rate is None else f"{rate:.2f}"
                head = f"step success rate {shown} is below the threshold {threshold:g}" if not met else ""
                bad = failed + tolerated
                parts = [p for p in (head, _rollup(bad, len(counted)) if bad else "") if p]
                message = "\n".join(parts)
        else:
            status = MissionStatus.FAILED if failed else MissionStatus.PASSED
            if failed:
                message = _rollup(failed, len(counted))
        llm = self.finish_llm()
        if llm.get("cassette_error"):
            # A cassette that could not be written (a secret-shaped string left) fails the mission.
            status = MissionStatus.FAILED
            message = "\n\n".join(m for m in (message, str(llm["cassette_error"])) if m)
        return MissionResult(
            name=mission.name,
            path=mission.display_path,
            status=status,
            steps=ordered,
            duration=self.elapsed,
            workspace=str(self.workspace),
            message=message,
            llm=llm,
            matrix=dict(self.settings.matrix),
        )


def copy_home_files(files: tuple[tuple[Path, str], ...], home: Path) -> list[str]:
    """Copy the user's configuration files into the mission's ``home``; return the secrets in them."""
    for source, rel in files:
        target = home / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        target.chmod(0o600)
    return _home_file_secrets(files)


def _home_file_secrets(files: tuple[tuple[Path, str], ...]) -> list[str]:
    secrets: list[str] = []
    for source, _ in files:
        try:
            secrets += config_file_secrets(source.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    return secrets


def mission_policy(policy: Policy, requested: str | None) -> Policy:
    """A mission may name a stricter level than the configuration, never a looser one."""
    if requested is None or LEVELS[requested] >= policy.threshold:
        return policy
    return replace(policy, level=requested)


def _rollup(failed: list[StepResult], total: int) -> str:
    head = f"{len(failed)} of {total} steps failed: {', '.join(r.step_id for r in failed)}"
    return "\n\n".join([head, *(r.reason for r in failed)])


class ChainRun:
    """A mission followed by its ``next_missions``, in one workspace, reported as one item."""

    def __init__(
        self,
        mission: Mission,
        *,
        workspace: Path,
        home: Path,
        tmpdir: Path,
        settings: RunSettings,
        prefix: str = "",
        repeat: int = 0,
        workspace_is_real: bool = False,
    ) -> None:
        """``prefix`` and ``repeat``: one repeat of a repeated mission (``r2/``, 1), see ``repeats``;
        ``workspace_is_real``: see ``MissionRun``."""
        self.mission = mission
        self.runs = [
            MissionRun(member, workspace=workspace, home=home, tmpdir=tmpdir, settings=settings, prefix=label,
                       repeat=repeat, workspace_is_real=workspace_is_real)
            for label, member in [(prefix, mission), *followers(mission, f"{prefix}next/")]
        ]  # fmt: skip
        self.started = time.monotonic()

    def __iter__(self) -> Iterator[tuple[MissionRun, Step]]:
        for run in self.runs:
            for step in run:
                yield run, step

    def execute(self, run: MissionRun, step: Step) -> StepResult:
        if run is not self.runs[0] and step.condition != "always()":
            earlier = next((r for r in self.runs if r is not run and r.failed), None)
            if earlier is not None and self.runs.index(earlier) < self.runs.index(run):
                return run.skip_all(step, f"mission '{earlier.mission.name}' failed before this next mission")
        return run.execute(step)

    def result(self) -> MissionResult:
        results = [run.result() for run in self.runs]
        main = results[0]
        if len(results) == 1:
            return main
        steps_all: dict[str, StepResult] = {}
        for res in results:
            steps_all.update(res.steps)
        failed_next = [r for r in results[1:] if r.status is MissionStatus.FAILED]
        status = MissionStatus.FAILED if failed_next else main.status
        message = "\n\n".join(
            m for m in [main.message, *(f"next mission {r.path}:\n{r.message}" for r in failed_next)] if m
        )
        from pytest_rustchain.llm.runtime import merge_llm

        return MissionResult(
            name=main.name,
            path=main.path,
            status=status,
            steps=steps_all,
            duration=time.monotonic() - self.started,
            workspace=main.workspace,
            message=message,
            llm=merge_llm([r.llm for r in results]),
            matrix=main.matrix,
        )


def followers(mission: Mission, prefix: str) -> Iterator[tuple[str, Mission]]:
    for follower in mission.next_missions:
        label = f"{prefix}{follower.stem}/"
        yield label, follower
        yield from followers(follower, f"{label}next/")


def run_steps(chain: ChainRun, on_result: Callable[[StepResult], None] | None = None) -> MissionResult:
    """Run every step of ``chain`` without pytest (the Python API and the benchmarks)."""
    for run, step in chain:
        result = chain.execute(run, step)
        if on_result is not None:
            on_result(result)
    return chain.result()


def _declared(mission: Mission, **fields: Any) -> dict[str, StepResult]:
    """One result per declared step of ``mission`` (next missions' included, in run order), each with
    ``fields``: the steps a mission that never ran would have run, counted and not passed."""
    out: dict[str, StepResult] = {}
    types = steps.registry()
    for prefix, member in [("", mission), *followers(mission, "next/")]:
        for step in plan.order(member.steps):
            out[prefix + step.id] = StepResult(
                step_id=prefix + step.id,
                step_type=step.step_type,
                family=types[step.step_type].family if step.step_type in types else "other",
                line=step.line,
                source=step.source or member.display_path,
                **fields,
            )
    return out


def unmet_result(mission: Mission, message: str, reason: str, duration: float = 0.0) -> MissionResult:
    """The result of a mission whose fixtures or setup failed before its first step: every declared
    step (next missions' included) skipped because of that failure, so counted and not passed."""
    skipped = _declared(mission, status=StepStatus.SKIPPED, reason=reason, skip_kind=SkipKind.FAILURE, phase="decide")
    return MissionResult(
        name=mission.name,
        path=mission.display_path,
        status=MissionStatus.ERROR,
        steps=skipped,
        duration=duration,
        message=message,
    )


def lost_result(mission: Mission, message: str, duration: float = 0.0) -> MissionResult:
    """The result of a mission whose process died before it reported (an xdist worker crash): its
    declared steps, next missions' included, each ``lost``, counted and not passed."""
    lost = _declared(mission, status=StepStatus.LOST, reason=f"lost: {message}", phase="lost")
    head = f"{len(lost)} of {len(lost)} steps lost: {message}" if lost else message
    return MissionResult(
        name=mission.name,
        path=mission.display_path,
        status=MissionStatus.ERROR,
        steps=lost,
        duration=duration,
        message=head,
    )


_SCRIPT_LIMIT = 256 * 1024


def written_text(
    step: Step, params: Mapping[str, Any], *, workspace: Path | None = None, raw: bool = False
) -> list[tuple[str, str]]:
    """(workspace-relative path, text) of each file ``step`` writes, as its step type declares them.

    With ``raw`` (the dry run) the text is the step's ``content`` parameter (or template) as written;
    otherwise it is read back from ``workspace`` after the step ran.
    """
    spec = steps.registry()[step.step_type]
    out: list[tuple[str, str]] = []
    for key in spec.path_params("write"):
        rel = params.get(key)
        if not isinstance(rel, str) or not rel:
            continue
        if raw:
            text = params.get(spec.content, step.template) if spec.content else None
            if isinstance(text, str):
                out.append((rel, text))
            continue
        if workspace is None:
            continue
        try:
            target = resolve_in_workspace(workspace, rel)
            if target.is_file() and target.stat().st_size <= _SCRIPT_LIMIT:
                out.append((target.relative_to(workspace).as_posix(), target.read_text("utf-8", "replace")))
        except (StepError, OSError, ValueError):
            continue
    return out
