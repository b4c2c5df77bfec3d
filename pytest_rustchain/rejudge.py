"""``--mission-rejudge=DIR``: score stored runs again from their trajectories, without running any step.

``DIR`` is a directory written by ``--mission-trajectories``: ``index.json`` lists each stored run and
repeat, and each repeat's JSON Lines file holds its events. For a mission item the newest stored run of
that mission is read back, every event is checked against the shipped trajectory schema, each repeat's
steps become results again (as they were: nothing runs), and the mission's ``judge:`` scores the
repeats from the same transcripts the run built, so an unchanged judge replays from the cassette and a
new rubric or judge model re-scores yesterday's runs.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pytest_rustchain.errors import MissionError
from pytest_rustchain.missionjudge import RepeatRecord
from pytest_rustchain.model import MissionResult, MissionStatus, StepResult

__all__ = ["RejudgeError", "StoredRepeat", "StoredRun", "find_run", "load_repeat", "read_index"]

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
