"""Frozen data of a mission (as loaded) and of its results (as run)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Combination",
    "FixtureUse",
    "Limits",
    "LoadOptions",
    "Mission",
    "MissionConfig",
    "MissionJudge",
    "MissionResult",
    "MissionStatus",
    "Retries",
    "SkipKind",
    "Step",
    "StepResult",
    "StepStatus",
    "WorkspaceSpec",
    "mission_stem",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Retries:
    count: int = 0
    delay_seconds: float = 0.0
    backoff: float = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkspaceSpec:
    kind: str = "tmp"
    """``tmp``, ``project`` or ``copy``."""
    copy_from: Path | None = None
    exclude: tuple[str, ...] = ()
    """``copy``: glob patterns of names not copied (``.git``, ``node_modules``, ``*.pyc``), at any depth."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MissionConfig:
    timeout_seconds: float = 300.0
    mission_timeout_seconds: float | None = None
    fail_fast: bool = True
    success_threshold: float | None = None
    repeat: int | None = None
    """``config.repeat``: runs of the mission inside its item (None: the ini/command-line default)."""
    workspace: WorkspaceSpec = WorkspaceSpec()
    safety: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MissionJudge:
    """``judge:`` at the top of a mission: one model call scores the mission's repeats against each
    other (``ruler``) or each alone (``rubric``), from the transcripts of its model steps."""

    method: str = "ruler"
    rubric: str = ""
    task: str = ""
    steps: tuple[str, ...] = ()
    """The steps whose transcripts are judged; empty: every llm, chain and agent step."""
    role: str | None = None
    provider: str | None = None
    model: str | None = None
    temperature: float = 0.0
    seed: int | None = None
    """The shuffle seed; None: derived from the mission file's stem, so replays ask the same."""
    swap_check: bool = False
    min_mean_score: float | None = None
    """Below this mean score over the repeats the judge fails (and with it the mission)."""
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    id: str
    name: str
    step_type: str
    """Canonical registered name (``create_file``), whatever spelling the file used."""
    parameters: Mapping[str, Any]
    depends_on: tuple[str, ...] = ()
    timeout_seconds: float | None = None
    continue_on_error: bool = False
    min_pass_rate: float | None = None
    """Over the repeats the step must pass at least this often; single failures are tolerated."""
    condition: str = "success()"
    retries: Retries = Retries()
    expect: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    render: bool = True
    line: int = 0
    """1-based line of the step in its mission file (0 when unknown)."""
    source: str = ""
    """The file the step was written in (a base mission or an included steps file), as displayed."""
    inferred: tuple[tuple[str, str], ...] = ()
    """Dependencies found without ``depends_on``: (step id, why)."""
    template: str | None = None
    """``create_file`` with ``template:``: the template file's text, rendered into ``content`` at run time."""
    template_path: str = ""
    """Where that template was read from, as written in the mission."""

    @property
    def all_dependencies(self) -> tuple[str, ...]:
        return self.depends_on + tuple(dep for dep, _ in self.inferred if dep not in self.depends_on)

    def why(self, dep: str) -> str:
        for other, reason in self.inferred:
            if other == dep and dep not in self.depends_on:
                return reason
        return ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Combination:
    """One combination of a mission's ``matrix:``: its values and the id its item carries."""

    id: str
    """``os=linux-python=3.12``: the item is ``<stem>[<id>]``."""
    values: Mapping[str, Any] = field(default_factory=dict)
    """Name -> value (text, number or boolean), as ``matrix.<name>`` and ``vars.<name>`` in templates."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FixtureUse:
    """One entry of a mission's ``fixtures:``: a pytest fixture by name, or a setup file."""

    key: str
    """The name templates use: ``fixtures.<key>``."""
    fixture: str = ""
    """The pytest fixture's name; empty for a setup file."""
    setup: Mission | None = None
    """The setup file, loaded and checked at collection."""
    source: str = ""
    """The file that names it (display path)."""
    index: int = 0
    """Its place in that file's ``fixtures:`` list."""
    line: int = 1
    col: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Mission:
    path: Path
    """The mission file as given (absolute)."""
    display_path: str
    """The path shown to users: relative to the rootdir when possible."""
    stem: str
    name: str
    steps: tuple[Step, ...]
    version: str = "1.0"
    description: str = ""
    config: MissionConfig = MissionConfig()
    vars: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    marks: tuple[str, ...] = ()
    mark_positions: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """Where each mark of ``marks`` was written: (line, column), 1-based."""
    skip: str | None = None
    xfail: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    reward: str | None = None
    """``reward: rustchain``: score each repeat (0.5 success + 0.3 efficiency + 0.2 quality)."""
    judge: MissionJudge | None = None
    """``judge:``: a model scores the repeats after the last one (the reward's quality term)."""
    next_missions: tuple[Mission, ...] = ()
    """Missions run after this one in the same workspace and item (``next/<stem>/<step>``)."""
    fixtures: tuple[FixtureUse, ...] = ()
    """What the mission's templates reach as ``fixtures.<key>``: pytest fixtures and setup files."""
    warnings: tuple[str, ...] = ()
    """Compatibility-mode notes (unknown keys ignored, ...), shown as pytest warnings."""
    compat: bool = False
    line: int = 1
    matrix: tuple[Combination, ...] = ()
    """The combinations of ``matrix:``, in order; each is its own item (empty: one item, no matrix)."""

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)


class StepStatus(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    TOLERATED = "tolerated"
    BLOCKED = "blocked"
    SKIPPED = "skipped"
    LOST = "lost"
    """The step never reported: the process running its mission died (an xdist worker crash)."""


class SkipKind(enum.StrEnum):
    """Why a step did not run; only ``FAILURE`` skips count in the success rate."""

    NONE = ""
    FAILURE = "failure"
    CONDITION = "condition"
    PROVIDER = "provider"


@dataclass(frozen=True, slots=True, kw_only=True)
class StepResult:
    step_id: str
    step_type: str
    family: str
    status: StepStatus
    reason: str = ""
    """Skip reason, or the one-paragraph failure text (shown to people; never parsed)."""
    skip_kind: SkipKind = SkipKind.NONE
    skipped_because: str = ""
    """For a step skipped after a failure: the id of the step whose failure caused it."""
    tolerated_by: str = ""
    """For a failure that does not fail the mission: what tolerates it (``continue_on_error``,
    ``mission xfail: <reason>``, ``success_threshold 0.8``)."""
    source: str = ""
    """The file the step was written in (the mission, an ``include:`` or ``extends:`` file), as displayed."""
    phase: str = ""
    """For a failed step: the lifecycle phase that failed (``decide``, ``render``, ``check``, ``run``, ``expect``)."""
    duration: float = 0.0
    outputs: Mapping[str, Any] = field(default_factory=dict)
    attempts: int = 1
    line: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)
    """The parameters as run (rendered); empty when the step did not run."""
    risk: int = 0
    """The safety check's risk score of the step as run (0 when it did not run)."""
    findings: tuple[Mapping[str, Any], ...] = ()

    @property
    def counted(self) -> bool:
        """Whether the step counts in the success rate (SPEC 4.3)."""
        if self.status is StepStatus.SKIPPED:
            return self.skip_kind is SkipKind.FAILURE
        return True

    def to_dict(self, *, max_output_chars: int = 4000) -> dict[str, Any]:
        return step_result_to_dict(self, max_output_chars=max_output_chars)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepResult:
        """The inverse of ``to_dict`` (outputs as trimmed there); unknown keys are ignored."""
        return cls(
            step_id=str(data.get("id", "")),
            step_type=str(data.get("type", "")),
            family=str(data.get("family", "")),
            status=StepStatus(str(data.get("status", "failed"))),
            reason=str(data.get("reason", "")),
            skip_kind=SkipKind(str(data.get("skip_kind", ""))),
            skipped_because=str(data.get("skipped_because", "")),
            tolerated_by=str(data.get("tolerated_by", "")),
            source=str(data.get("source", "")),
            phase=str(data.get("phase", "")),
            duration=float(data.get("duration", 0.0)),
            outputs=dict(data.get("outputs") or {}),
            attempts=int(data.get("attempts", 1)),
            line=int(data.get("line", 0)),
            risk=int(data.get("risk", 0)),
            findings=tuple(dict(f) for f in data.get("findings") or ()),
        )

    @property
    def flaky(self) -> bool:
        return self.status is StepStatus.PASSED and self.attempts > 1


class MissionStatus(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    XFAILED = "xfailed"
    XPASSED = "xpassed"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass(frozen=True, slots=True, kw_only=True)
class MissionResult:
    name: str
    path: str
    status: MissionStatus
    steps: Mapping[str, StepResult]
    """Results in the order the steps ran (or were decided)."""
    duration: float = 0.0
    workspace: str = ""
    message: str = ""
    """The mission's roll-up text when it did not pass."""
    repeats: Mapping[str, Any] | None = None
    """A repeated mission's numbers over its repeats (``repeats.aggregate``); None for a single run."""
    llm: Mapping[str, Any] = field(default_factory=dict)
    """Model and recorded HTTP calls: totals, the calls, the cassette (see ``llm.runtime.finish_runtime``)."""
    matrix: Mapping[str, Any] = field(default_factory=dict)
    """The ``matrix:`` combination this run used (empty for a mission without a matrix)."""

    @property
    def counted(self) -> tuple[StepResult, ...]:
        return tuple(r for r in self.steps.values() if r.counted)

    def tally(self) -> tuple[int, int]:
        """(steps passed, steps counted), in one pass over the steps."""
        passed = total = 0
        for r in self.steps.values():
            if r.counted:
                total += 1
                if r.status is StepStatus.PASSED:
                    passed += 1
        return passed, total

    @property
    def steps_passed(self) -> int:
        return self.tally()[0]

    @property
    def steps_total(self) -> int:
        return self.tally()[1]

    @property
    def success_rate(self) -> float | None:
        passed, total = self.tally()
        return None if total == 0 else passed / total

    @property
    def passed(self) -> bool:
        return self.status in (MissionStatus.PASSED, MissionStatus.XFAILED)

    def to_dict(self) -> dict[str, Any]:
        """Plain builtin data (crosses xdist, becomes the JSON report's mission entry)."""
        return mission_result_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MissionResult:
        """The inverse of ``to_dict``: what the xdist controller rebuilds from a worker's report."""
        steps = [StepResult.from_dict(s) for s in data.get("steps") or ()]
        return cls(
            name=str(data.get("name", "")),
            path=str(data.get("path", "")),
            status=MissionStatus(str(data.get("status", "error"))),
            steps={s.step_id: s for s in steps},
            duration=float(data.get("duration", 0.0)),
            workspace=str(data.get("workspace", "")),
            message=str(data.get("message", "")),
            repeats=data.get("repeats"),
            llm=dict(data.get("llm") or {}),
            matrix=dict(data.get("matrix") or {}),
        )


_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    """Builtin types only, so results cross xdist and JSON intact."""
    if type(value) in _SCALAR_TYPES:  # exactly these (a StrEnum is a str too): the common case, first
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def step_result_to_dict(result: StepResult, *, max_output_chars: int = 4000) -> dict[str, Any]:
    outputs: dict[str, Any] = {}
    for key, value in result.outputs.items():
        if isinstance(value, str) and len(value) > max_output_chars:
            half = max_output_chars // 2
            value = value[:half] + f"\n[... {len(value) - max_output_chars} chars omitted ...]\n" + value[-half:]
        outputs[key] = value
    return {
        "id": result.step_id,
        "type": result.step_type,
        "family": result.family,
        "status": result.status.value,
        "reason": result.reason,
        "skip_kind": result.skip_kind.value,
        "skipped_because": result.skipped_because,
        "tolerated_by": result.tolerated_by,
        "source": result.source,
        "phase": result.phase,
        "counted": result.counted,
        "flaky": result.flaky,
        "duration": result.duration,
        "attempts": result.attempts,
        "line": result.line,
        "risk": result.risk,
        # Most steps have no findings: the shared empty tuple (also a JSON array) is nothing for the
        # garbage collector to scan, unlike a new empty list per step kept until the end of the run.
        "findings": _plain(result.findings) if result.findings else (),
        "outputs": _plain(outputs),
    }


def mission_result_to_dict(result: MissionResult) -> dict[str, Any]:
    passed, total = result.tally()
    return {
        "name": result.name,
        "path": result.path,
        "status": result.status.value,
        "duration": result.duration,
        "workspace": result.workspace,
        "message": result.message,
        "steps_total": total,
        "steps_passed": passed,
        "success_rate": None if total == 0 else passed / total,
        "steps": [step_result_to_dict(r) for r in result.steps.values()],
        **({"repeats": _plain(result.repeats)} if result.repeats is not None else {}),
        **({"llm": _plain(dict(result.llm))} if result.llm else {}),
        **({"matrix": _plain(dict(result.matrix))} if result.matrix else {}),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Ceilings from the configuration; a mission may go below them, never above."""

    max_steps: int = 1000
    max_timeout_seconds: float = 86400.0
    mission_timeout_seconds: float | None = None
    max_file_bytes: int = 1_048_576


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadOptions:
    compat: bool = False
    rootdir: Path | None = None
    limits: Limits = Limits()


def mission_stem(path: Path) -> str:
    """The item name of a mission file: its name without ``.mission.yaml`` (dots would split it)."""
    name = path.name
    for suffix in (".mission.yaml", ".mission.yml", ".yaml", ".yml"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem
