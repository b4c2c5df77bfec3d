"""``--mission-rejudge=DIR``: score stored runs again from their trajectories, without running any step.

``DIR`` is a directory written by ``--mission-trajectories``: ``index.json`` lists each stored run and
repeat, and each repeat's JSON Lines file holds its events. For a mission item the newest stored run of
that mission is read back, every event is checked against the shipped trajectory schema, each repeat's
steps become results again (as they were: nothing runs), and the mission's ``judge:`` scores the
repeats from the same transcripts the run built, so an unchanged judge replays from the cassette and a
new rubric or judge model re-scores yesterday's runs.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pytest_rustchain.errors import MissionError
from pytest_rustchain.missionjudge import RepeatRecord
from pytest_rustchain.model import Mission, MissionResult, MissionStatus, SkipKind, StepResult, StepStatus

__all__ = ["RejudgeError", "StoredRepeat", "StoredRun", "find_run", "load_repeat", "read_index", "rejudge_steps"]

INDEX_FORMAT = "pytest-rustchain-trajectories"


class RejudgeError(MissionError):
    """A stored run cannot be read back: a missing or broken index, file or event."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredRun:
    run_id: str
    entries: tuple[Mapping[str, Any], ...]
    """The index entries of the run's repeats, r1 first."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredRepeat:
    record: RepeatRecord
    result: MissionResult


@functools.cache
def _validator() -> Any:
    import jsonschema

    text = resources.files("pytest_rustchain").joinpath("schema/trajectory.schema.json").read_text(encoding="utf-8")
    return jsonschema.Draft202012Validator(json.loads(text))


def read_index(directory: Path, *, shown: str) -> list[Mapping[str, Any]]:
    """The entries of ``DIR/index.json``; RejudgeError naming what is wrong and how to fix it."""
    hint = f"  HINT: give the directory a run wrote with --mission-trajectories={shown}"
    if not directory.exists():
        raise RejudgeError(f"--mission-rejudge={shown}: no such directory\n{hint}")
    if not directory.is_dir():
        raise RejudgeError(f"--mission-rejudge={shown} is not a directory\n{hint}")
    path = directory / "index.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RejudgeError(f"--mission-rejudge={shown}: {path} does not exist\n{hint}") from None
    except (OSError, ValueError) as exc:
        raise RejudgeError(f"--mission-rejudge={shown}: cannot read {path}: {exc}\n{hint}") from None
    if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT or not isinstance(data.get("runs"), list):
        raise RejudgeError(
            f"--mission-rejudge={shown}: {path} is not a trajectory index (format {INDEX_FORMAT!r} with a runs list)\n"
            f"{hint}"
        )
    return [e for e in data["runs"] if isinstance(e, dict)]


def find_run(entries: Sequence[Mapping[str, Any]], *, nodeid: str, path: str) -> StoredRun | None:
    """The newest stored run of a mission (run ids sort by time), its repeats in order.

    Entries are matched by node id (each ``matrix:`` combination has its own); by the mission file's
    path and the same item name only when no entry has the node id (a run started from another
    directory), so a matrix file's combinations never mix."""
    item = nodeid.rsplit("::", 1)[-1]
    mine = [e for e in entries if e.get("nodeid") == nodeid] or [
        e for e in entries if e.get("path") == path and str(e.get("nodeid", "")).rsplit("::", 1)[-1] == item
    ]
    if not mine:
        return None
    newest = max(mine, key=lambda e: (str(e.get("run_id", "")), str(e.get("nodeid", ""))))
    run_id, node = str(newest.get("run_id", "")), newest.get("nodeid")
    chosen = sorted(
        (e for e in mine if str(e.get("run_id", "")) == run_id and e.get("nodeid") == node),
        key=lambda e: int(e.get("repeat") or 0),
    )
    return StoredRun(run_id=run_id, entries=tuple(chosen))


def _events(path: Path, shown: str) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise RejudgeError(
            f"{shown} is listed in index.json but does not exist\n"
            "  HINT: keep the trajectory directory whole, or write it again with --mission-trajectories"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RejudgeError(f"cannot read {shown}: {exc}") from None
    validator = _validator()
    events: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise RejudgeError(
                f"{shown}:{number}: not JSON ({exc})\n  HINT: a trajectory file holds one JSON object per line"
            ) from None
        error = next(iter(validator.iter_errors(event)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "the event"
            raise RejudgeError(
                f"{shown}:{number}: the event does not fit the trajectory schema at {where}: {error.message[:200]}\n"
                "  HINT: the schema is pytest_rustchain/schema/trajectory.schema.json; rejudge files this plugin wrote"
            )
        events.append(event)
    if not events or events[0].get("event") != "run":
        raise RejudgeError(f"{shown}: the file does not start with a run event\n  HINT: it is not a trajectory file")
    return events


def _status(value: Any) -> MissionStatus:
    try:
        return MissionStatus(str(value))
    except ValueError:
        return MissionStatus.ERROR  # a truncated or cut-off trajectory


def load_repeat(directory: Path, entry: Mapping[str, Any], *, shown_dir: str) -> StoredRepeat:
    """One stored repeat: its events as the judge reads them and its step results as they were."""
    rel = str(entry.get("file", ""))
    target = (directory / rel).resolve()
    shown = f"{shown_dir.rstrip('/')}/{rel}"
    if not rel or not target.is_relative_to(directory.resolve()):
        raise RejudgeError(f"index.json names the file {rel!r}, outside {shown_dir}\n  HINT: the index is damaged")
    events = _events(target, shown)
    from pytest_rustchain import steps as step_types

    registry = step_types.registry()
    run_event = events[0]
    ends = [e for e in events if e.get("event") == "step_end"]
    final: Mapping[str, Any] = next((e for e in reversed(events) if e.get("event") == "run_end"), {})
    results: dict[str, StepResult] = {}
    for end in ends:
        step_type = str(end.get("step_type", ""))
        spec = registry.get(step_type)
        data = {**end, "id": end.get("step"), "type": step_type, "family": spec.family if spec else ""}
        data = {k: v for k, v in data.items() if v is not None}
        step = StepResult.from_dict(data)
        params = end.get("parameters")
        if isinstance(params, dict):
            step = dataclasses.replace(step, params=params)
        results[step.step_id] = step
    status = _status(final.get("status", entry.get("status", "error")))
    record = RepeatRecord(events=tuple(events), status=status.value, workspace=str(run_event.get("workspace") or ""))
    result = MissionResult(
        name=str(run_event.get("mission", "")),
        path=str(run_event.get("path", "")),
        status=status,
        steps=results,
        duration=float(final.get("duration") or 0.0),
        workspace=str(run_event.get("workspace") or ""),
    )
    return StoredRepeat(record=record, result=result)


_REPEAT_PREFIX = re.compile(r"^r\d+/")
_RAN = frozenset({StepStatus.PASSED, StepStatus.FAILED, StepStatus.TOLERATED})


def rejudge_steps(
    mission: Mission, repeats: Sequence[StoredRepeat], runtime: Any, *, rootdir: Path, mask: Any
) -> tuple[list[StoredRepeat], list[StepResult]]:
    """Ask each ``judge`` step of the stored repeats again: its candidates as they were rendered then,
    its other parameters (rubric, task, model ...) as the mission file has them now, its ``expect``
    checked again. Returns the repeats with those steps replaced, and the new results in order."""
    from pytest_rustchain import steps as step_types
    from pytest_rustchain.errors import StepError, StepSkipped
    from pytest_rustchain.llm.runtime import RUNTIME_KEY
    from pytest_rustchain.steps.judge import judge_expectations

    spec = step_types.registry()["judge"]
    by_id = {s.id: s for s in mission.steps}
    out: list[StoredRepeat] = []
    redone: list[StepResult] = []
    for index, stored in enumerate(repeats):
        results = dict(stored.result.steps)
        failed = False
        for key, old in stored.result.steps.items():
            plain = _REPEAT_PREFIX.sub("", key, count=1)
            step = by_id.get(plain)
            if old.step_type != "judge" or step is None or old.status not in _RAN or not old.params:
                continue
            now = {k: v for k, v in step.parameters.items() if k != "candidates" and "{{" not in str(v)}
            params = {**old.params, **now}
            ctx = step_types.StepContext(
                step_id=plain, workspace=rootdir, cwd=rootdir, env={}, timeout=mission.config.timeout_seconds,
                mission_path=mission.path, rootdir=rootdir,
                extras={RUNTIME_KEY: dataclasses.replace(runtime, repeat=index)},
            )  # fmt: skip
            started = time.monotonic()
            skip_kind, phase = SkipKind.NONE, ""
            try:
                outputs: dict[str, Any] = dict(spec.run(params, ctx))
                problems = judge_expectations(step.expect, outputs) if step.expect else []
                status = StepStatus.FAILED if problems else StepStatus.PASSED
                reason, phase = "\n".join(problems), "expect" if problems else ""
            except StepSkipped as exc:
                status, reason, outputs, skip_kind = StepStatus.SKIPPED, exc.reason, {}, SkipKind.PROVIDER
            except StepError as exc:
                status, reason, outputs, phase = StepStatus.FAILED, exc.message, dict(exc.outputs), "run"
            if status is StepStatus.FAILED and old.status is StepStatus.TOLERATED:
                status = StepStatus.TOLERATED
            failed = failed or status is StepStatus.FAILED
            new = dataclasses.replace(
                old, status=status, reason=mask.text(reason), outputs=mask.value(outputs), skip_kind=skip_kind,
                phase=phase, duration=time.monotonic() - started, params=mask.value(params),
            )  # fmt: skip
            results[key] = new
            redone.append(new)
        result = dataclasses.replace(stored.result, steps=results)
        if failed and result.status is MissionStatus.PASSED:
            result = dataclasses.replace(
                result, status=MissionStatus.FAILED, message="a judge step failed when rejudged"
            )
        out.append(dataclasses.replace(stored, result=result))
    return out, redone
