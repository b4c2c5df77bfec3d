"""Success rates of a run's missions, the gate, and their terminal, JSON, Markdown and annotation forms."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from pytest_rustchain import repeats
from pytest_rustchain.masking import neutralise_workflow_commands
from pytest_rustchain.model import MissionResult, MissionStatus, StepResult
from pytest_rustchain.repeats import gate_value

__all__ = [
    "REPORT_FORMAT",
    "REPORT_VERSION",
    "Rate",
    "RunSummary",
    "Threshold",
    "error_entry",
    "gate_line",
    "markdown",
    "mission_entry",
    "parse_threshold",
    "quiet_line",
    "report_document",
    "skipped_entry",
    "summarize",
    "terminal_lines",
    "workflow_annotations",
]

REPORT_FORMAT = "pytest-rustchain-report"
REPORT_VERSION = 1
SLOWEST = 5
OUTPUT_CHARS = 4000
OUTPUT_ITEMS = 1000
MARKDOWN_REASON_CHARS = 4000
MARKDOWN_FAILURES = 50
ANNOTATION_LIMIT = 10

Scrub = Callable[[str], str]

_PASSED_MISSION = frozenset({"passed", "xfailed"})
_FAILED_STEP = frozenset({"failed", "blocked", "lost"})
_STEP_HEADER = re.compile(r"^(?:tolerated \((?P<why>[^)]*)\): )?step '[^']*' \([^)]*\) failed at \S+$")
_LOCATION = re.compile(r"^(?P<path>.+?):(?P<line>\d+)(?::(?P<col>\d+))?: ")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|~&!$#])")


def _scrub_for_output(text: str, *, github_actions: bool) -> str:
    """The one way out for every string a report writes: terminal section, JSON, Markdown, annotations.

    Under GitHub Actions the runner executes an output line that starts with ``::`` (after blanks) as
    a workflow command; such a line gets a backslash in front, so it is shown and not run. Step
    results arrive masked by the runner; text from elsewhere (load errors, crash messages) passes here
    as well, so this is where any further masking of reports belongs.
    """
    return neutralise_workflow_commands(text) if github_actions else text


def scrubber(*, github_actions: bool) -> Scrub:
    """``_scrub_for_output`` with the environment decided once."""

    def scrub(text: str) -> str:
        return _scrub_for_output(text, github_actions=github_actions)

    return scrub


# -- numbers ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Rate:
    """``passed`` of ``total``; shown truncated, so a rate below 100% or below a threshold never looks reached."""

    passed: int = 0
    total: int = 0

    @property
    def value(self) -> float | None:
        return None if self.total == 0 else self.passed / self.total

    @property
    def exact(self) -> Fraction | None:
        return None if self.total == 0 else Fraction(self.passed, self.total)

    def ratio(self) -> str:
        return f"{self.passed}/{self.total}"

    def percent(self) -> str:
        if self.total == 0:
            return "n/a"
        tenths = 1000 * self.passed // self.total
        return f"{tenths // 10}.{tenths % 10}%"

    def decimal(self, places: int = 2) -> str:
        if self.total == 0:
            return "n/a"
        scaled = 10**places * self.passed // self.total
        whole, part = divmod(scaled, 10**places)
        return f"{whole}.{part:0{places}d}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Threshold:
    """A required success rate, kept exact so the gate flips exactly at it."""

    value: Fraction
    places: int
    """Decimal places it was written with (at least 2): rates are shown with as many."""

    def text(self) -> str:
        return _decimal_text(self.value, self.places)


def _decimal_text(value: Fraction, places: int) -> str:
    scaled = value.numerator * 10**places // value.denominator
    whole, part = divmod(scaled, 10**places)
    return f"{whole}.{part:0{places}d}"


def parse_threshold(raw: str) -> Threshold:
    """``"0.9"`` -> Threshold; raises ValueError with a message (and a HINT) for anything else."""
    text = raw.strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = Decimal("NaN")
    if number.is_finite() and 0 <= number <= 1:
        exponent = number.as_tuple().exponent
        places = max(2, -exponent if isinstance(exponent, int) else 0)
        return Threshold(value=Fraction(number), places=places)
    message = f"{raw!r} is not a success rate between 0 and 1"
    if number.is_finite() and 1 < number <= 100:
        message += f"\n  HINT: a rate of {number}% is written {number / 100}"
    elif text.endswith("%"):
        message += "\n  HINT: write the rate as a fraction: 90% is 0.9"
    raise ValueError(message)


# -- mission entries (plain dicts: they cross xdist, and the JSON report is made of them) -----------


def _step_entry(step: StepResult) -> dict[str, Any]:
    entry = step.to_dict(max_output_chars=2**62)  # trimmed once, where a report writes it
    entry.pop("params", None)
    return entry


_MISSION_SUFFIXES = (".mission.yaml", ".mission.yml", ".yaml", ".yml")


def matrix_id(nodeid: str, path: str) -> str:
    """The combination id of a matrix item (``python=3.12`` for ``ci.mission.yaml::ci[python=3.12]``),
    else ``""``: what the item name adds to the file's stem."""
    name = nodeid.rsplit("::", 1)[-1]
    base = path.replace("\\", "/").rsplit("/", 1)[-1]
    stem = next((base[: -len(s)] for s in _MISSION_SUFFIXES if base.endswith(s)), base)
    rest = name[len(stem) :] if name.startswith(stem) else ""
    return rest[1:-1] if rest.startswith("[") and rest.endswith("]") else ""


def mission_title(mission: Mapping[str, Any]) -> str:
    """A mission's name as reports show it: ``CI [python=3.12]`` for one combination of a matrix."""
    combination = mission.get("matrix")
    ident = combination.get("id") if isinstance(combination, Mapping) else None
    return f"{mission['name']} [{ident}]" if ident else str(mission["name"])


def mission_label(mission: Mapping[str, Any]) -> str:
    """A mission's file as the terminal section shows it: ``ci.mission.yaml[python=3.12]`` for a combination."""
    combination = mission.get("matrix")
    ident = combination.get("id") if isinstance(combination, Mapping) else None
    return f"{mission['path']}[{ident}]" if ident else str(mission["path"])


def mission_entry(
    nodeid: str, data: Mapping[str, Any] | MissionResult, typed: MissionResult | None = None
) -> dict[str, Any]:
    """The summary's record of a mission: the typed result rebuilt with ``MissionResult.from_dict``
    (a worker's report data) and its counts and rate taken from it, computed in one place.

    ``typed`` is the result ``data`` was made from (``typed.to_dict()``), when this process ran the
    mission: then it is used as it is instead of being rebuilt."""
    if isinstance(data, MissionResult):
        result = data
        steps = [_step_entry(s) for s in result.steps.values()]
    else:
        result = typed if typed is not None else MissionResult.from_dict(data)
        # The data is ``MissionResult.to_dict``'s: each step's entry is already what ``_step_entry`` makes
        # of the rebuilt step (no params, outputs trimmed once), with the keys other reporters added
        # (its dependencies for the graphs). Shared, not copied: nothing changes a step entry once made
        # (reports that alter one, as the JSON report's scrubbing does, work on a copy), and a run of a
        # thousand missions would otherwise hold every step's entry twice until it ends.
        steps = [
            s if "params" not in s else {k: v for k, v in s.items() if k != "params"} for s in data.get("steps") or ()
        ]
    passed, total = result.tally()
    entry: dict[str, Any] = {
        "nodeid": nodeid,
        "name": result.name,
        "path": result.path or nodeid.split("::", 1)[0],
        "status": result.status.value,
        "duration": result.duration,
        "workspace": result.workspace,
        "message": result.message,
        "steps_total": total,
        "steps_passed": passed,
        "success_rate": None if total == 0 else passed / total,
        "flaky_steps": [s.step_id for s in result.steps.values() if s.flaky],
        "steps": steps,
    }
    risks = [s.risk for s in result.steps.values()]
    if risks:
        entry["risk_max"] = max(risks)
    # From the plain data when there is some: what the rebuilt result holds (a typed one may hold tuples).
    plain = None if isinstance(data, MissionResult) else data
    repeats = result.repeats if plain is None else plain.get("repeats")
    if repeats is not None:
        entry["repeats"] = dict(repeats)
    ident = matrix_id(nodeid, entry["path"])
    if ident:
        entry["matrix"] = {"id": ident, "values": dict(result.matrix if plain is None else plain.get("matrix") or {})}
    llm = result.llm if plain is None else plain.get("llm") or {}
    if llm:
        entry["llm"] = _llm_entry(llm)
    return entry


def _llm_entry(llm: Mapping[str, Any]) -> dict[str, Any]:
    """A mission's model calls: totals by source, tokens, cost, the cassette and how it was used."""
    by_source = dict(llm.get("by_source") or {})
    out: dict[str, Any] = {
        "calls": int(llm.get("calls") or 0),
        "by_source": {k: int(by_source.get(k) or 0) for k in ("live", "recorded", "scripted")},
        "input_tokens": int(llm.get("input_tokens") or 0),
        "output_tokens": int(llm.get("output_tokens") or 0),
        "cost_usd": float(llm.get("cost_usd") or 0.0),
        "unpriced_calls": int(llm.get("unpriced_calls") or 0),
        "unused_recordings": int(llm.get("unused_recordings") or 0),
    }
    for key in ("cassette", "record_mode", "cassette_error"):
        if llm.get(key):
            out[key] = str(llm[key])
    if "cassette_written" in llm:
        out["cassette_written"] = bool(llm["cassette_written"])
    return out


def _first_try(step: Mapping[str, Any]) -> bool:
    """Passed without any retry: neither the step's ``retries`` nor an llm validation retry."""
    outputs = step.get("outputs") or {}
    return step["status"] == "passed" and step["attempts"] <= 1 and outputs.get("first_try_passed") is not False


def _retried(step: Mapping[str, Any]) -> bool:
    outputs = step.get("outputs") or {}
    return step["attempts"] > 1 or outputs.get("first_try_passed") is False


def error_entry(nodeid: str, *, name: str, message: str, duration: float = 0.0) -> dict[str, Any]:
    """A mission that could not run (a broken file, a setup error): failed, 0 steps."""
    return _empty_entry(nodeid, name=name, status=MissionStatus.ERROR, message=message, duration=duration)


def skipped_entry(nodeid: str, *, name: str, reason: str) -> dict[str, Any]:
    """A mission skipped as a whole (``marks: [skip]``): shown, never counted."""
    return _empty_entry(nodeid, name=name, status=MissionStatus.SKIPPED, message=reason, duration=0.0)


def _empty_entry(nodeid: str, *, name: str, status: MissionStatus, message: str, duration: float) -> dict[str, Any]:
    path = nodeid.split("::", 1)[0]
    result = MissionResult(name=name, path=path, status=status, steps={}, duration=duration, message=message)
    return mission_entry(nodeid, result)


# -- aggregation ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TypeRate:
    type: str
    rate: Rate
    not_counted: int
    first_try: Rate = Rate(passed=0, total=0)
    """Counted steps that passed on their first attempt (no retry, no validation retry)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SlowStep:
    duration: float
    path: str
    line: int
    step: str
    type: str
    combination: str = ""
    """The ``matrix:`` combination the step ran in (``os=linux-python=3.12``), else empty."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    missions: tuple[Mapping[str, Any], ...]
    """Mission entries ordered by node id, so every run (and every worker layout) lists them alike."""
    mission_rate: Rate
    step_rate: Rate
    skipped_missions: int
    steps_shown: int
    not_counted: int
    step_statuses: Mapping[str, int]
    step_types: tuple[TypeRate, ...]
    slowest: tuple[SlowStep, ...]
    llm: Mapping[str, Any] = field(default_factory=dict)
    """Model calls of the whole run (the ``llm:`` line); empty when no mission called a model."""
    any_retried: bool = False
    """Some counted step passed or failed only after a retry: the first-try column is worth showing."""

    @property
    def empty(self) -> bool:
        return not self.missions


def summarize(entries: Iterable[Mapping[str, Any]]) -> RunSummary:
    """Pool mission entries into the run's rates (SPEC 4.3): only counted steps enter a step rate."""
    missions = tuple(sorted(entries, key=lambda m: m["nodeid"]))
    ran = [m for m in missions if m["status"] != "skipped"]
    mission_rate = Rate(passed=sum(1 for m in ran if m["status"] in _PASSED_MISSION), total=len(ran))
    per_type: dict[str, list[int]] = {}
    statuses: dict[str, int] = {}
    passed = total = shown = 0
    retried = False
    slow: list[tuple[float, str, int, str, int, str, str, str]] = []
    for m in missions:
        for index, step in enumerate(m["steps"]):
            shown += 1
            status = step["status"]
            statuses[status] = statuses.get(status, 0) + 1
            counts = per_type.setdefault(step["type"], [0, 0, 0, 0])
            if step["counted"]:
                total += 1
                counts[1] += 1
                if status == "passed":
                    passed += 1
                    counts[0] += 1
                if _first_try(step):
                    counts[3] += 1
                retried = retried or _retried(step)
            else:
                counts[2] += 1
            if step["duration"] > 0:
                where = str(step.get("source") or m["path"])
                matrix = m.get("matrix")
                combination = str(matrix.get("id", "")) if isinstance(matrix, Mapping) else ""
                slow.append(
                    (-step["duration"], m["nodeid"], index, where, step["line"], step["id"], step["type"], combination)
                )
    slow.sort()
    slowest = tuple(
        SlowStep(duration=-d, path=path, line=line, step=sid, type=stype, combination=combination)
        for d, _, _, path, line, sid, stype, combination in slow[:SLOWEST]
    )
    return RunSummary(
        missions=missions,
        mission_rate=mission_rate,
        step_rate=Rate(passed=passed, total=total),
        skipped_missions=len(missions) - len(ran),
        steps_shown=shown,
        not_counted=shown - total,
        step_statuses=statuses,
        step_types=tuple(
            TypeRate(
                type=t, rate=Rate(passed=c[0], total=c[1]), not_counted=c[2], first_try=Rate(passed=c[3], total=c[1])
            )
            for t, c in sorted(per_type.items())
        ),
        slowest=slowest,
        llm=_pool_llm(m.get("llm") for m in missions),
        any_retried=retried,
    )


def _pool_llm(parts: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    present = [p for p in parts if p]
    if not present:
        return {}
    by_source = {k: sum(p["by_source"].get(k, 0) for p in present) for k in ("live", "recorded", "scripted")}
    return {
        "calls": sum(p["calls"] for p in present),
        "by_source": by_source,
        "input_tokens": sum(p["input_tokens"] for p in present),
        "output_tokens": sum(p["output_tokens"] for p in present),
        "cost_usd": round(sum(p["cost_usd"] for p in present), 6),
        "unpriced_calls": sum(p["unpriced_calls"] for p in present),
        "unused_recordings": sum(p["unused_recordings"] for p in present),
    }


def llm_line(llm: Mapping[str, Any]) -> str:
    """``42 calls (30 recorded, 12 scripted, 0 live), 18,204 tokens, $0.00``: where every answer came from."""
    src = llm["by_source"]
    tokens = llm["input_tokens"] + llm["output_tokens"]
    cost = f"${llm['cost_usd']:.2f}"
    if llm.get("unpriced_calls"):
        cost += f" ({llm['unpriced_calls']} unpriced)"
    unused = f", {llm['unused_recordings']} unused recordings" if llm.get("unused_recordings") else ""
    return (
        f"{llm['calls']} calls ({src['recorded']} recorded, {src['scripted']} scripted, {src['live']} live), "
        f"{tokens:,} tokens, {cost}{unused}"
    )


def gate_line(summary: RunSummary, threshold: Threshold, statistic: str = "point") -> tuple[bool, str]:
    """(below, the line that says so); ``n/a`` (nothing counted) never fails the gate.

    ``statistic``: ``point`` compares the pooled rate itself, ``wilson-lower`` its Wilson 95% lower
    bound (what the run shows with 95% confidence).
    """
    rate = summary.step_rate
    exact = rate.exact
    required = threshold.text()
    if exact is None:
        return False, f"mission success rate n/a (no counted steps): the required {required} does not apply"
    shown = rate.decimal(threshold.places)
    counts = f"({rate.passed} of {rate.total} counted steps passed)"
    if statistic == "wilson-lower":
        low = gate_value(rate.passed, rate.total, statistic)
        assert low is not None
        # Shown rounded down, so a bound below the threshold never reads as meeting it.
        lower = _decimal_text(Fraction(int(float(low) * 10**threshold.places), 10**threshold.places), threshold.places)
        what = f"mission success rate {shown}, 95% lower bound {lower},"
        if float(low) < threshold.value:
            return True, f"{what} is below the required {required} {counts}"
        return False, f"{what} meets the required {required} {counts}"
    if exact < threshold.value:
        return True, f"mission success rate {shown} is below the required {required} {counts}"
    return False, f"mission success rate {shown} meets the required {required} {counts}"


# -- terminal ---------------------------------------------------------------------------------------

_FIXED = 1 + 9 + 1 + 7 + 1 + 9 + 2 + 7


def _fit(text: str, width: int) -> str:
    """Cut from the left, where a long path is least telling."""
    return text if len(text) <= width else "..." + text[len(text) - width + 3 :]


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 3)] + "..."


def _short_reason(reason: str) -> str:
    """The telling line of a step's reason: the problem, not the ``step 'x' failed at`` header."""
    lines = [line.strip() for line in reason.splitlines() if line.strip()]
    if not lines:
        return ""
    if _STEP_HEADER.match(lines[0]) and len(lines) > 1:
        return lines[1]
    return lines[0]


def _not_counted(summary: RunSummary) -> str:
    n = summary.not_counted
    if not n:
        return ""
    return f", {n} skipped step{'s' if n > 1 else ''} not counted"


def quiet_line(summary: RunSummary) -> str:
    m, s = summary.mission_rate, summary.step_rate
    line = (
        f"mission success rates: {m.ratio()} missions passed ({m.percent()}), {s.ratio()} steps passed ({s.percent()})"
    )
    if summary.llm:
        line += f"; llm: {llm_line(summary.llm)}"
    return line


_TOOL_CALL_LINES = 20


def tool_calls(step: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """An agent step's tool calls (from its outputs), each with id, verdict, status and rule ids."""
    outputs = step.get("outputs") or {}
    calls = outputs.get("tool_calls") if isinstance(outputs, Mapping) else None
    if step.get("type") != "agent" or not isinstance(calls, list):
        return []
    return [c for c in calls if isinstance(c, Mapping)]


def _call_line(call: Mapping[str, Any]) -> str:
    """``fix/2:edit_file approve passed`` or ``fix/3:command reject blocked (RC-SEC-001)``."""
    rules = ", ".join(str(r) for r in call.get("rules") or ())
    tail = f" ({rules})" if rules else ""
    if call.get("verdict") == "invalid" or call.get("status") == "failed":
        tail += f": {_short_reason(str(call.get('message') or ''))}"
    return f"{call.get('id')} {call.get('verdict')} {call.get('status')}{tail}"


def terminal_lines(summary: RunSummary, *, verbosity: int, width: int, scrub: Scrub) -> list[str]:
    """The body of the ``mission success rates`` section (the header line is pytest's)."""
    width = max(60, width)
    label = width - _FIXED
    out = [f"{'mission':<{label}} {'steps':>9} {'rate':>7} {'time':>9}  verdict"]
    for mission in summary.missions:
        rate = Rate(passed=mission["steps_passed"], total=mission["steps_total"])
        out.append(
            f"{_fit(scrub(mission_label(mission)), label):<{label}} {rate.ratio():>9} {rate.percent():>7} "
            f"{mission['duration']:>8.2f}s  {mission['status']}"
        )
        if verbosity > 0:
            out.append(_cut(f"    {scrub(mission_title(mission))}", width))
            if mission["status"] in ("error", "skipped") and mission["message"]:
                out.append(_cut(f"    {scrub(_short_reason(mission['message']))}", width))
            for step in mission["steps"]:
                calls = tool_calls(step)
                if step["status"] == "passed" and not step["flaky"] and not calls:
                    continue
                why, reason = step.get("tolerated_by", ""), _short_reason(step["reason"])
                status = step["status"] + (f" ({why})" if why else "") + ("" if step["counted"] else " (not counted)")
                text = f"    {step['id']} ({step['type']}) {status}" + (f": {scrub(reason)}" if reason else "")
                out.append(_cut(text, width))
                for call in calls[:_TOOL_CALL_LINES]:
                    out.append(_cut(f"      {scrub(_call_line(call))}", width))
                if len(calls) > _TOOL_CALL_LINES:
                    out.append(f"      ... and {len(calls) - _TOOL_CALL_LINES} more tool calls (see the JSON report)")
        elif mission["flaky_steps"]:
            out.append(_cut(f"    flaky: {', '.join(mission['flaky_steps'])}", width))
        block = mission.get("repeats")
        if isinstance(block, Mapping):
            out.extend(_cut(scrub(line), width) for line in repeats.terminal_lines(block, verbosity=verbosity))
    if summary.step_types:
        out.append("")
        first = f" {'first try':>9}" if summary.any_retried else ""
        extra = "  not counted" if verbosity > 0 else ""
        out.append(f"{'step type':<{label}} {'steps':>9} {'rate':>7}{first}{extra}")
        for t in summary.step_types:
            tail = f"  {t.not_counted:>11}" if verbosity > 0 else ""
            ft = f" {t.first_try.percent():>9}" if summary.any_retried else ""
            out.append(f"{_fit(t.type, label):<{label}} {t.rate.ratio():>9} {t.rate.percent():>7}{ft}{tail}")
    missions, steps = summary.mission_rate, summary.step_rate
    out.append("")
    skipped = f", {summary.skipped_missions} skipped" if summary.skipped_missions else ""
    out.append(f"missions: {missions.ratio()} passed ({missions.percent()}){skipped}")
    out.append(f"steps:    {steps.ratio()} passed ({steps.percent()}){_not_counted(summary)}")
    if summary.llm:
        out.append(f"llm:      {llm_line(summary.llm)}")
    if summary.slowest:
        out.append("")
        out.append("slowest steps:")
        for slow in summary.slowest:
            where = f"{scrub(slow.path)}:{slow.line}" + (f" [{slow.combination}]" if slow.combination else "")
            out.append(_cut(f"{slow.duration:>9.2f}s  {slow.step} ({slow.type})  {where}", width))
    return out


# -- JSON -------------------------------------------------------------------------------------------


def _plain_out(value: Any, scrub: Scrub) -> Any:
    """Outputs for a report: strings trimmed and scrubbed, long lists cut, at every depth."""
    if isinstance(value, str):
        if len(value) > OUTPUT_CHARS:
            half = OUTPUT_CHARS // 2
            value = value[:half] + f"\n[... {len(value) - OUTPUT_CHARS} chars omitted ...]\n" + value[-half:]
        return scrub(value)
    if isinstance(value, Mapping):
        return {scrub(str(k)): _plain_out(v, scrub) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_plain_out(v, scrub) for v in value[:OUTPUT_ITEMS]]
        if len(value) > OUTPUT_ITEMS:
            items.append(f"[... {len(value) - OUTPUT_ITEMS} more items omitted ...]")
        return items
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return scrub(str(value))


def _report_step(step: Mapping[str, Any], scrub: Scrub) -> dict[str, Any]:
    out = dict(step)
    out["id"] = scrub(step["id"])
    out["reason"] = scrub(step["reason"])
    out["outputs"] = _plain_out(step["outputs"], scrub)
    if "source" in out:
        out["source"] = scrub(str(out["source"]))
    for key in ("findings", "depends_on", "inferred"):
        if key in out:
            out[key] = _plain_out(out[key], scrub)
    return out


def _report_mission(m: Mapping[str, Any], scrub: Scrub) -> dict[str, Any]:
    out = dict(m)
    for key in ("nodeid", "name", "path", "workspace", "message"):
        out[key] = scrub(m[key])
    out["flaky_steps"] = [scrub(s) for s in m["flaky_steps"]]
    out["steps"] = [_report_step(s, scrub) for s in m["steps"]]
    return out


def report_document(
    summary: RunSummary,
    *,
    created: str,
    duration: float,
    exit_status: int,
    threshold: Threshold | None,
    statistic: str = "point",
    versions: Mapping[str, str],
    safety: Sequence[str] = (),
    scrub: Scrub,
) -> dict[str, Any]:
    """The ``--mission-report`` JSON document (shape: ``schema/report.schema.json``)."""
    m, s = summary.mission_rate, summary.step_rate
    gate: dict[str, Any] = {"min_success_rate": None, "passed": None, "message": ""}
    if threshold is not None:
        below, line = gate_line(summary, threshold, statistic)
        gate = {
            "min_success_rate": float(threshold.value),
            "passed": not below,
            "message": line,
            "statistic": statistic,
        }
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "created": created,
        "duration": duration,
        "exit_status": exit_status,
        "versions": dict(versions),
        "safety": [scrub(line) for line in safety],
        "gate": gate,
        "totals": {
            "missions": m.total,
            "missions_passed": m.passed,
            "missions_failed": m.total - m.passed,
            "missions_skipped": summary.skipped_missions,
            "mission_success_rate": m.value,
            "steps": summary.steps_shown,
            "steps_counted": s.total,
            "steps_passed": s.passed,
            "steps_not_counted": summary.not_counted,
            "step_success_rate": s.value,
            "step_statuses": dict(sorted(summary.step_statuses.items())),
        },
        "step_types": [
            {
                "type": t.type,
                "steps_total": t.rate.total,
                "steps_passed": t.rate.passed,
                "success_rate": t.rate.value,
                "not_counted": t.not_counted,
                "first_try_rate": t.first_try.value,
            }
            for t in summary.step_types
        ],
        **({"llm": dict(summary.llm)} if summary.llm else {}),
        "slowest_steps": [
            {"path": scrub(w.path), "line": w.line, "step": w.step, "type": w.type, "duration": w.duration}
            for w in summary.slowest
        ],
        "missions": [_report_mission(mission, scrub) for mission in summary.missions],
    }


# -- Markdown ---------------------------------------------------------------------------------------


def _md(text: str) -> str:
    """Inline Markdown text: one line, every character that could start markup escaped."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _code_block(text: str, indent: str) -> list[str]:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    if len(text) > MARKDOWN_REASON_CHARS:
        text = text[:MARKDOWN_REASON_CHARS] + f"\n[... {len(text) - MARKDOWN_REASON_CHARS} chars omitted ...]"
    body = [f"{indent}{line}" if line else "" for line in text.splitlines()]
    return [f"{indent}{fence}text", *body, f"{indent}{fence}"]


def markdown(summary: RunSummary, *, threshold: Threshold | None, scrub: Scrub, statistic: str = "point") -> str:
    """The ``--mission-summary`` Markdown (also what goes to ``GITHUB_STEP_SUMMARY``)."""
    m, s = summary.mission_rate, summary.step_rate
    out = ["## Mission success rates", ""]
    if summary.empty:
        return "\n".join([*out, "No mission ran."]) + "\n"
    skipped = f", {summary.skipped_missions} skipped" if summary.skipped_missions else ""
    out.append(
        f"**Missions:** {m.ratio()} passed ({m.percent()}){skipped}. "
        f"**Steps:** {s.ratio()} passed ({s.percent()}){_not_counted(summary)}."
    )
    if summary.llm:
        out += ["", f"**LLM:** {_md(llm_line(summary.llm))}."]
        if summary.llm["by_source"]["scripted"]:
            out.append("Scripted answers test the mission's logic, not a model.")
    if threshold is not None:
        below, line = gate_line(summary, threshold, statistic)
        out += ["", f"**{_md(line)}**" if below else _md(line)]
    out += ["", "| mission | file | steps | rate | time | verdict | flaky |", "|---|---|--:|--:|--:|---|---|"]
    for mission in summary.missions:
        rate = Rate(passed=mission["steps_passed"], total=mission["steps_total"])
        flaky = ", ".join(_md(scrub(f)) for f in mission["flaky_steps"])
        title, path = _md(scrub(mission_title(mission))), _md(scrub(mission["path"]))
        out.append(
            f"| {title} | {path} | {rate.ratio()} | {rate.percent()} "
            f"| {mission['duration']:.2f}s | {mission['status']} | {flaky} |"
        )
    repeated = [m for m in summary.missions if isinstance(m.get("repeats"), Mapping)]
    if repeated:
        out += ["", *repeats.MARKDOWN_HEADER]
        for mission in repeated:
            out.append(repeats.markdown_row(_md(scrub(mission_title(mission))), mission["repeats"], escape=_md))
    if summary.step_types:
        if summary.any_retried:
            out += ["", "| step type | steps | rate | first try | not counted |", "|---|--:|--:|--:|--:|"]
        else:
            out += ["", "| step type | steps | rate | not counted |", "|---|--:|--:|--:|"]
        for t in summary.step_types:
            first = f" {t.first_try.percent()} |" if summary.any_retried else ""
            out.append(f"| {_md(t.type)} | {t.rate.ratio()} | {t.rate.percent()} |{first} {t.not_counted} |")
    agents = [(mission, step) for mission in summary.missions for step in mission["steps"] if tool_calls(step)]
    if agents:
        out += [
            "",
            "### Agent tool calls",
            "",
            "| mission | call | verdict | status | rules |",
            "|---|---|---|---|---|",
        ]
        for mission, step in agents:
            calls = tool_calls(step)
            for call in calls[:_TOOL_CALL_LINES]:
                rules = ", ".join(str(r) for r in call.get("rules") or ())
                name, call_id = _md(scrub(mission_title(mission))), _md(scrub(str(call.get("id"))))
                out.append(
                    f"| {name} | {call_id} | {_md(str(call.get('verdict')))} | {_md(str(call.get('status')))} "
                    f"| {_md(rules)} |"
                )
            if len(calls) > _TOOL_CALL_LINES:
                out.append(f"| {_md(scrub(mission_title(mission)))} | ... {len(calls) - _TOOL_CALL_LINES} more | | | |")
    failures = list(_failures(summary))
    if failures:
        out += ["", "### Failures", ""]
        for mission, step in failures[:MARKDOWN_FAILURES]:
            where = _md(scrub(mission["path"] if step is None else str(step.get("source") or mission["path"])))
            if step is None:
                out.append(f"- **{_md(scrub(mission_title(mission)))}** ({where}): {mission['status']}")
                text = mission["message"]
            else:
                out.append(
                    f"- **{_md(scrub(mission_title(mission)))}**, step **{_md(scrub(step['id']))}** "
                    f"({_md(step['type'])}, {where} line {step['line']}): {step['status']}"
                )
                text = step["reason"]
            if text.strip():
                out += ["", *_code_block(scrub(text), "  "), ""]
        if len(failures) > MARKDOWN_FAILURES:
            out.append(f"- ... and {len(failures) - MARKDOWN_FAILURES} more (see the JSON report)")
    return "\n".join(out).rstrip("\n") + "\n"


def _failures(summary: RunSummary) -> Iterable[tuple[Mapping[str, Any], Mapping[str, Any] | None]]:
    """Failed and blocked steps, and missions that failed without any (broken files, crashes), in order."""
    for mission in summary.missions:
        failed = [step for step in mission["steps"] if step["status"] in _FAILED_STEP]
        if not failed and mission["status"] not in _PASSED_MISSION and mission["status"] != "skipped":
            yield mission, None
        for step in failed:
            yield mission, step


# -- GitHub annotations -----------------------------------------------------------------------------


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _source_annotations(
    name: str, step: Mapping[str, Any], *, file_for: Callable[[str], str], scrub: Scrub
) -> list[str]:
    """An annotation on the project's own source file for each compiler or test-runner error the step
    reported (``outputs.diagnostics`` with a ``source``: the workspace was the checkout or a copy)."""
    out: list[str] = []
    diagnostics = (step.get("outputs") or {}).get("diagnostics") or []
    for diag in diagnostics[:ANNOTATION_LIMIT]:
        if not isinstance(diag, Mapping) or not diag.get("source"):
            continue
        props = [f"file={_escape_property(file_for(scrub(str(diag['source']))))}"]
        if diag.get("line"):
            props.append(f"line={int(diag['line'])}")
            if diag.get("col"):
                props.append(f"col={int(diag['col'])}")
        tool = f" ({diag['tool']})" if diag.get("tool") else ""
        title = f"mission {name}: step {step['id']}{tool}"
        props.append(f"title={_escape_property(title)}")
        out.append(f"::error {','.join(props)}::{_escape_data(scrub(str(diag.get('message', ''))))}")
    return out


def workflow_annotations(summary: RunSummary, *, file_for: Callable[[str], str], scrub: Scrub) -> list[str]:
    """``::error file=...,line=...::`` lines for failed steps, on their YAML line (the first few only:
    GitHub shows ten per step)."""
    lines: list[str] = []
    failures = list(_failures(summary))
    for mission, step in failures[:ANNOTATION_LIMIT]:
        name = scrub(mission_title(mission))
        if step is None:
            text = scrub(mission["message"]) or mission["status"]
            found = _LOCATION.match(text)
            props = [f"file={_escape_property(file_for(mission['path']))}"]
            if found and found.group("path") == mission["path"]:
                props.append(f"line={found.group('line')}")
                if found.group("col"):
                    props.append(f"col={found.group('col')}")
            title = f"mission {name}: {mission['status']}"
            props.append(f"title={_escape_property(title)}")
        else:
            text = scrub(step["reason"]) or step["status"]
            source = str(step.get("source") or mission["path"])
            props = [f"file={_escape_property(file_for(source))}"]
            if step["line"]:
                props.append(f"line={step['line']}")
            title = f"mission {name}: step {step['id']} {step['status']}"
            props.append(f"title={_escape_property(title)}")
        lines.append(f"::error {','.join(props)}::{_escape_data(text)}")
        if step is not None:
            lines.extend(_source_annotations(name, step, file_for=file_for, scrub=scrub))
    if len(failures) > ANNOTATION_LIMIT:
        more = len(failures) - ANNOTATION_LIMIT
        lines.append(f"::notice title=mission failures::{more} more failures are listed in the mission summary")
    return lines


# -- the mission's own failure text -----------------------------------------------------------------


def rollup_once(message: str, shown: Iterable[tuple[str, str]]) -> str:
    """The mission's roll-up with each step failure that pytest already printed (the step's own
    ``SUBFAILED`` report, a ``<failure>`` in JUnit XML) cut to its first two lines, so every failure's
    details are printed once. ``shown`` holds (step id, the reason its report printed)."""
    for step_id, reason in shown:
        lines = reason.strip("\n").splitlines()
        if len(lines) <= 3 or reason not in message:
            continue
        short = [*lines[:2], f"  [... the full text is in the failure of step '{step_id}']"]
        message = message.replace(reason, "\n".join(short), 1)
    return message
