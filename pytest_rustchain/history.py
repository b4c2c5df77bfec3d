"""Run history: the last runs of each mission and step, what changed since the last run, and its table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CACHE_DIR",
    "CACHE_FILE",
    "CACHE_KEY",
    "Notice",
    "notices",
    "run_record",
    "table_lines",
    "update",
]

CACHE_DIR = "rustchain-history"
"""The directory in pytest's cache (``.pytest_cache/d/...``) that holds the history file."""
CACHE_FILE = "runs.json"
CACHE_KEY = "rustchain/history"
"""Where versions before the history file kept it (a pytest cache value): read when there is no file."""
FORMAT_VERSION = 2
"""2: a step's counts in a run are the text ``"passed/total"``; 1 (still read) kept ``[passed, total]``."""
_READABLE_VERSIONS = frozenset({1, FORMAT_VERSION})
MAX_MISSIONS = 2000
"""Missions kept at most; the ones not run for longest go first, so a renamed tree does not grow it forever."""

# -- records ----------------------------------------------------------------------------------------


def _counts_text(passed: int, total: int) -> str:
    # Text rather than a two-number list: a run's step table is then a mapping of strings, which
    # Python's garbage collector never has to scan (the history of 1,000 missions holds 100,000 of them).
    return f"{passed}/{total}"


def counts_of(value: Any) -> tuple[int, int] | None:
    """(passed, total) of a step in one kept run: ``"3/4"``, or ``[3, 4]`` as format 1 kept it; None for
    anything else."""
    if isinstance(value, str):
        passed, sep, total = value.partition("/")
        if sep and passed.isdigit() and total.isdigit():
            return int(passed), int(total)
        return None
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return value[0], value[1]
    return None


def _step_counts(step: Mapping[str, Any]) -> tuple[int, int] | None:
    """(passed, counted) of a step in one run: over its repeats when it has them, else 1/1 or 0/1."""
    repeats = step.get("repeats")
    if isinstance(repeats, Mapping):
        passed, total = int(repeats.get("passed", 0)), int(repeats.get("total", 0))
        return (passed, total) if total else None
    if not step.get("counted", False):
        return None
    return (1 if step.get("status") == "passed" else 0), 1


def run_record(entry: Mapping[str, Any], *, when: str) -> dict[str, Any] | None:
    """What the history keeps of one mission entry (the summary's record); None for a skipped mission."""
    status = str(entry.get("status", ""))
    if status == "skipped":
        return None
    steps: dict[str, str] = {}
    block = entry.get("repeats")
    if isinstance(block, Mapping):
        # A repeated mission: each step once, with its k/n over the repeats (not r1/x, r2/x ...).
        for row in block.get("steps", ()):
            if int(row.get("total", 0)):
                steps[str(row.get("id", ""))] = _counts_text(int(row.get("passed", 0)), int(row.get("total", 0)))
    for step in () if isinstance(block, Mapping) else entry.get("steps", ()):
        counts = _step_counts(step)
        if counts is not None:
            steps[str(step.get("id", ""))] = _counts_text(*counts)
    return {
        "when": when,
        "status": status,
        "passed": int(entry.get("steps_passed", 0)),
        "total": int(entry.get("steps_total", 0)),
        "steps": steps,
    }


def _valid_runs(value: Any) -> list[dict[str, Any]]:
    """Runs from the cache that have the expected shape; anything else (an older format, a hand edit) is dropped."""
    if not isinstance(value, list):
        return []
    runs = []
    for run in value:
        if (
            isinstance(run, dict)
            and isinstance(run.get("passed"), int)
            and isinstance(run.get("total"), int)
            and isinstance(run.get("steps"), dict)
        ):
            runs.append(run)
    return runs


def missions_of(stored: Any) -> dict[str, dict[str, Any]]:
    """The per-mission history held in a cache value (empty for a missing or unreadable one)."""
    if not isinstance(stored, dict) or stored.get("version") not in _READABLE_VERSIONS:
        return {}
    missions = stored.get("missions")
    if not isinstance(missions, dict):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for nodeid, record in missions.items():
        if isinstance(nodeid, str) and isinstance(record, dict):
            out[nodeid] = {"name": str(record.get("name", "")), "runs": _valid_runs(record.get("runs"))}
    return out


def update(stored: Any, entries: Iterable[Mapping[str, Any]], *, keep: int, when: str) -> dict[str, Any]:
    """The cache value after this run: each mission's runs with this one appended, the last ``keep`` kept."""
    missions = missions_of(stored)
    for entry in entries:
        record = run_record(entry, when=when)
        if record is None:
            continue
        nodeid = str(entry["nodeid"])
        old = missions.pop(nodeid, {"runs": []})
        # Re-inserted last: dict order is recency, and the oldest missions go first past MAX_MISSIONS.
        missions[nodeid] = {"name": str(entry.get("name", "")), "runs": [*old["runs"], record][-keep:]}
    while len(missions) > MAX_MISSIONS:
        missions.pop(next(iter(missions)))
    return {"version": FORMAT_VERSION, "missions": missions}


# -- what changed -----------------------------------------------------------------------------------


def percent(passed: int, total: int) -> str:
    """``80%``, ``66.6%``: truncated, so a rate below 100% never shows as 100%."""
    if total == 0:
        return "n/a"
    tenths = 1000 * passed // total
    return f"{tenths // 10}%" if tenths % 10 == 0 else f"{tenths // 10}.{tenths % 10}%"


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    nodeid: str
    text: str
    regression: bool


def notices(previous: Any, current: Any, nodeids: Sequence[str]) -> list[Notice]:
    """For the missions of this run: a regression of the step rate since the last run, and the steps
    that both passed and failed across the runs kept (flaky across runs)."""
    before = missions_of(previous)
    after = missions_of(current)
    out: list[Notice] = []
    for nodeid in sorted(set(nodeids)):
        runs = after.get(nodeid, {}).get("runs", [])
        if not runs:
            continue
        now = runs[-1]
        earlier = before.get(nodeid, {}).get("runs", [])
        if earlier and earlier[-1]["total"] and now["total"]:
            last = earlier[-1]
            if now["passed"] * last["total"] < last["passed"] * now["total"]:
                out.append(
                    Notice(
                        nodeid=nodeid,
                        text=f"regressed from {percent(last['passed'], last['total'])} to "
                        f"{percent(now['passed'], now['total'])} since the last run",
                        regression=True,
                    )
                )
        if len(runs) < 2 or all(_all_passed(run) for run in runs):
            continue
        flaky: list[str] = []
        for step_id in _step_ids(runs):
            passed = total = 0
            for run in runs:
                counts = counts_of(run["steps"].get(step_id))
                if counts is not None:
                    passed += counts[0]
                    total += counts[1]
            if 0 < passed < total:
                flaky.append(f"{step_id} ({passed}/{total})")
        if flaky:
            out.append(
                Notice(
                    nodeid=nodeid,
                    text=f"flaky across the last {len(runs)} runs: {', '.join(flaky)}",
                    regression=False,
                )
            )
    return out


def _all_passed(run: Mapping[str, Any]) -> bool:
    """Every step of the run passed every time it ran (so none of them can be flaky)."""
    for value in run["steps"].values():
        if type(value) is str:  # "3/3": compared as text, the common case, without parsing numbers
            passed, sep, total = value.partition("/")
            if sep and passed == total and passed.isdigit():
                continue
            return False
        counts = counts_of(value)
        if counts is None or counts[0] != counts[1]:
            return False
    return True


def _step_ids(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Step ids in the order the latest run has them, then any that only older runs have."""
    seen: dict[str, None] = {}
    for run in reversed(runs):
        for step_id in run["steps"]:
            seen.setdefault(str(step_id), None)
    return list(seen)


# -- table ------------------------------------------------------------------------------------------

LEGEND = "oldest run first: . passed  F failed  ~ passed in some repeats  - not run or not counted"


def _mark(value: Any) -> str:
    counts = counts_of(value)
    if counts is None or not counts[1]:
        return "-"
    passed, total = counts
    if passed == total:
        return "."
    return "F" if passed == 0 else "~"


def table_lines(stored: Any, nodeids: Sequence[str], *, scrub: Any = str) -> list[str]:
    """The ``--mission-history`` table: per mission its rate in each kept run, then each step's outcomes."""
    missions = missions_of(stored)
    out = [LEGEND]
    for nodeid in sorted(set(nodeids)):
        record = missions.get(nodeid)
        out.append("")
        if record is None or not record["runs"]:
            out.append(f"{scrub(nodeid)}: no runs recorded yet")
            continue
        runs = record["runs"]
        passed = sum(r["passed"] for r in runs)
        total = sum(r["total"] for r in runs)
        rates = " ".join(percent(r["passed"], r["total"]) for r in runs)
        out.append(f"{scrub(nodeid)}: {len(runs)} runs, {passed}/{total} steps passed ({percent(passed, total)})")
        out.append(f"  rates: {rates}")
        ids = _step_ids(runs)
        width = max((len(s) for s in ids), default=0)
        for step_id in ids:
            marks = "".join(_mark(run["steps"].get(step_id)) for run in runs)
            sp = st = 0
            for run in runs:
                counts = counts_of(run["steps"].get(step_id))
                if counts is not None:
                    sp += counts[0]
                    st += counts[1]
            out.append(f"  {scrub(step_id):<{width}}  {marks}  {sp}/{st} ({percent(sp, st)})")
    return out
