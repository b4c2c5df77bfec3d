"""Numbers over a mission's repeats: each step's and the mission's reliability, the pooled rate, the
``min_pass_rate`` and ``success_threshold`` verdicts, and the ``rustchain`` reward of each repeat."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from pytest_rustchain import stats
from pytest_rustchain.model import MissionResult, MissionStatus, StepResult, StepStatus

__all__ = [
    "GATE_STATISTICS",
    "RepeatVerdict",
    "aggregate",
    "combine",
    "gate_value",
    "headline",
    "junit_properties",
    "markdown_row",
    "prefix",
    "reward_summary",
    "terminal_lines",
    "verdict",
]

_PASSED_RUN = frozenset({"passed", "xfailed"})


def prefix(repeat: int, total: int) -> str:
    """The subtest prefix of a repeat (1-based): ``r2/`` when there are several, nothing for one."""
    return f"r{repeat}/" if total > 1 else ""


def _counts(step: Mapping[str, Any]) -> tuple[int, int]:
    if not step.get("counted", False):
        return 0, 0
    return (1 if step.get("status") == "passed" else 0), 1


def _tool_calls(steps: Sequence[Mapping[str, Any]]) -> int:
    """Tool calls made by the agent steps of one repeat (their ``tool_calls`` output)."""
    total = 0
    for step in steps:
        calls = (step.get("outputs") or {}).get("tool_calls")
        if step.get("type") == "agent" and isinstance(calls, list):
            total += len(calls)
    return total


def _has_agent(steps: Sequence[Mapping[str, Any]]) -> bool:
    return any(step.get("type") == "agent" for step in steps)


def _quality(steps: Sequence[Mapping[str, Any]], success: float) -> float:
    """The fraction of ``expect``s met: steps with an ``expect`` that passed, of those that counted.

    A repeat whose steps declare no ``expect`` has its success rate as quality, so the term never
    rewards a mission for having nothing to check.
    """
    checked = [s for s in steps if s.get("has_expect") and s.get("counted")]
    if not checked:
        return success
    return sum(1 for s in checked if s.get("status") == "passed") / len(checked)


def _run_worked(run: Mapping[str, Any], min_pass_rates: Mapping[str, float]) -> bool:
    """Whether one repeat counts as a passing run in the mission's k/n, interval, pass@k and pass^k.

    A failure that ``min_pass_rate`` tolerates keeps the mission's verdict for the step's rate over the
    repeats, but the repeat it happened in did not work: it counts as a failed run here."""
    if str(run.get("status", "")) not in _PASSED_RUN:
        return False
    return not any(
        step.get("status") == "tolerated" and str(step.get("id", "")) in min_pass_rates for step in run.get("steps", ())
    )


def aggregate(
    runs: Sequence[Mapping[str, Any]],
    *,
    min_pass_rates: Mapping[str, float] | None = None,
    reward: str | None = None,
    judge_scores: Sequence[float | None] | None = None,
    k: int = 2,
) -> dict[str, Any]:
    """The ``repeats`` block of a mission's report from its runs (one mapping per repeat, in order:
    ``status`` and ``steps``, each step with its plain ``id`` and the summary's step fields)."""
    n = len(runs)
    min_pass_rates = dict(min_pass_rates or {})
    order: dict[str, str] = {}
    outcomes: dict[str, list[bool]] = {}
    pooled_passed = pooled_total = 0
    for run in runs:
        for step in run.get("steps", ()):
            step_id = str(step.get("id", ""))
            order.setdefault(step_id, str(step.get("type", "")))
            passed, total = _counts(step)
            pooled_passed += passed
            pooled_total += total
            if total:
                outcomes.setdefault(step_id, []).append(bool(passed))
    steps: list[dict[str, Any]] = []
    for step_id, step_type in order.items():
        rel = stats.reliability(outcomes.get(step_id, []), k=k)
        row: dict[str, Any] = {"id": step_id, "type": step_type, **rel.to_dict()}
        minimum = min_pass_rates.get(step_id)
        row["min_pass_rate"] = minimum
        row["below_min_pass_rate"] = bool(
            minimum is not None and rel.total > 0 and Fraction(rel.passed, rel.total) < Fraction(str(minimum))
        )
        steps.append(row)
    mission = stats.reliability([_run_worked(run, min_pass_rates) for run in runs], k=k)
    pooled = stats.Reliability(passed=pooled_passed, total=pooled_total, k=1).to_dict()
    block: dict[str, Any] = {
        "n": n,
        "mission": mission.to_dict(),
        "steps_pooled": {key: pooled[key] for key in ("passed", "total", "rate", "interval", "confidence")},
        "steps": steps,
        "flaky_steps": [row["id"] for row in steps if row["flaky"]],
    }
    if reward is not None:
        block["rewards"] = _rewards(runs, reward, judge_scores)
    return block


def _rewards(
    runs: Sequence[Mapping[str, Any]], reward: str, judge_scores: Sequence[float | None] | None
) -> list[dict[str, Any]]:
    if reward != "rustchain":
        raise ValueError(f"unknown reward {reward!r}; the known reward is 'rustchain'")
    calls = [_tool_calls(list(run.get("steps", ()))) for run in runs]
    out: list[dict[str, Any]] = []
    for index, run in enumerate(runs):
        steps = list(run.get("steps", ()))
        passed = total = 0
        for step in steps:
            p, t = _counts(step)
            passed += p
            total += t
        success = passed / total if total else 0.0
        efficiency = stats.efficiency(calls[index], calls) if _has_agent(steps) else 1.0
        score = judge_scores[index] if judge_scores is not None and index < len(judge_scores) else None
        quality = score if score is not None else _quality(steps, success)
        out.append(
            {
                "repeat": index + 1,
                "success": success,
                "efficiency": efficiency,
                "quality": quality,
                "quality_from": "judge" if score is not None else "expect",
                "tool_calls": calls[index],
                "reward": stats.rustchain_reward(success=success, efficiency=efficiency, quality=quality),
            }
        )
    return out


def reward_summary(rewards: Sequence[Mapping[str, Any]]) -> dict[str, float] | None:
    """Mean, median, lowest and highest reward over the repeats."""
    values = [float(r["reward"]) for r in rewards]
    if not values:
        return None
    from statistics import fmean, median

    return {
        "mean": fmean(values),
        "median": median(values),
        "min": min(values),
        "max": max(values),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class RepeatVerdict:
    passed: bool
    problems: tuple[str, ...]
    """One line per reason the mission failed over its repeats (empty when it passed)."""


def _pct(value: float | None) -> str:
    """Truncated like every rate the reports show, so 86.67% reads 86.6% everywhere."""
    if value is None:
        return "n/a"
    tenths = int(value * 1000 + 1e-9)
    return f"{tenths // 10}.{tenths % 10}%"


def verdict(block: Mapping[str, Any], runs: Sequence[Mapping[str, Any]], *, threshold: float | None) -> RepeatVerdict:
    """Whether a repeated mission passes.

    With ``success_threshold`` the steps of every repeat pool into one rate (a blocked step still
    fails); without it every repeat must pass. A step with ``min_pass_rate`` fails the mission when its
    rate over the repeats is below it (its failures in single repeats are tolerated by the runner).
    """
    problems: list[str] = []
    n = int(block["n"])
    blocked = sorted(
        {
            f"r{index + 1}/{step.get('id')}"
            for index, run in enumerate(runs)
            for step in run.get("steps", ())
            if step.get("status") == "blocked"
        }
    )
    if blocked:
        problems.append(f"blocked by the safety policy: {', '.join(blocked)}")
    pooled = block["steps_pooled"]
    if threshold is not None:
        if pooled["total"] and Fraction(pooled["passed"], pooled["total"]) < Fraction(str(threshold)):
            problems.append(
                f"success rate over {n} repeats {pooled['passed']}/{pooled['total']} ({_pct(pooled['rate'])}) "
                f"is below the success_threshold {threshold:g}"
            )
    else:
        failed = [index + 1 for index, run in enumerate(runs) if str(run.get("status", "")) not in _PASSED_RUN]
        if failed:
            which = ", ".join(f"r{i}" for i in failed)
            problems.append(f"{len(failed)} of {n} repeats failed: {which}")
    for row in block["steps"]:
        if row["below_min_pass_rate"]:
            low, high = row["interval"]
            problems.append(
                f"step '{row['id']}' passed {row['passed']} of {row['total']} repeats ({_pct(row['rate'])}, "
                f"95% interval {low:.3f}-{high:.3f}), below its min_pass_rate {row['min_pass_rate']:g}"
            )
    return RepeatVerdict(passed=not problems, problems=tuple(problems))


# -- how the numbers read ---------------------------------------------------------------------------

GATE_STATISTICS = ("point", "wilson-lower")


def gate_value(passed: int, total: int, statistic: str) -> Fraction | float | None:
    """What ``--mission-min-success-rate`` compares: the pooled rate itself (exact), or its Wilson 95%
    lower bound (``wilson-lower``: the rate the run shows with 95% confidence)."""
    if statistic not in GATE_STATISTICS:
        raise ValueError(f"unknown gate statistic {statistic!r}; use one of: {', '.join(GATE_STATISTICS)}")
    if total == 0:
        return None
    if statistic == "point":
        return Fraction(passed, total)
    bounds = stats.wilson(passed, total)
    assert bounds is not None
    return bounds[0]


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _interval(row: Mapping[str, Any]) -> str:
    bounds = row.get("interval")
    if not bounds:
        return "n/a"
    return f"[{bounds[0]:.3f}, {bounds[1]:.3f}]"


def _rate(row: Mapping[str, Any]) -> str:
    return f"{row['passed']}/{row['total']} ({_pct(row['rate'])})"


def headline(block: Mapping[str, Any]) -> str:
    """``5 repeats: 4/5 passed (80.0%), 95% CI [0.376, 0.964]``."""
    mission = block["mission"]
    return f"{block['n']} repeats: {_rate(mission)} passed, 95% CI {_interval(mission)}"


def terminal_lines(block: Mapping[str, Any], *, verbosity: int) -> list[str]:
    """The lines under a repeated mission's row in the success-rate section (indented by 4)."""
    pooled = block["steps_pooled"]
    mission = block["mission"]
    k = mission["k"]
    out = [
        f"    {headline(block)}",
        f"    pass@{k} {_num(mission['pass_at_k'])}, pass^{k} {_num(mission['pass_hat_k'])} (of the mission's repeats)",
        f"    steps over the repeats: {_rate(pooled)}, 95% CI {_interval(pooled)}",
    ]
    flaky = [row for row in block["steps"] if row["flaky"]]
    if flaky:
        out.append(
            "    flaky over the repeats: " + ", ".join(f"{row['id']} {row['passed']}/{row['total']}" for row in flaky)
        )
    below = [row for row in block["steps"] if row["below_min_pass_rate"]]
    for row in below:
        out.append(f"    below min_pass_rate {row['min_pass_rate']:g}: {row['id']} {_rate(row)}")
    rewards = block.get("rewards")
    if rewards:
        summary = reward_summary(rewards)
        assert summary is not None
        each = " ".join(f"{r['reward']:.2f}" for r in rewards)
        out.append(
            f"    reward (rustchain): mean {summary['mean']:.3f}, min {summary['min']:.3f}, max {summary['max']:.3f}"
        )
        out.append(f"    reward per repeat: {each}")
    out.extend(judge_lines(block.get("judge")))
    if verbosity > 0:
        width = max([len("step"), *(len(str(row["id"])) for row in block["steps"])])
        k = block["mission"]["k"]
        at, hat = f"pass@{k}", f"pass^{k}"
        out.append(f"    {'step':<{width}}  {'k/n':>7}  {'rate':>6}  {'95% CI':<14}  {at:>6}  {hat:>6}  flaky")
        for row in block["steps"]:
            rate = _pct(row["rate"])
            kn = f"{row['passed']}/{row['total']}"
            line = (
                f"    {row['id']:<{width}}  {kn:>7}  {rate:>6}  {_interval(row):<14}  "
                f"{_num(row['pass_at_k']):>6}  {_num(row['pass_hat_k']):>6}  {'yes' if row['flaky'] else ''}"
            )
            out.append(line.rstrip())
    return out


def judge_lines(judge: Any) -> list[str]:
    """The mission-level judge's lines under the repeats: its scores per repeat, or why it gave none."""
    if not isinstance(judge, Mapping):
        return []
    if judge.get("scores"):
        scores = " ".join(f"{s:.2f}" for s in judge["scores"])
        best = int(judge.get("best_index", 0)) + 1
        source = f", {judge['source']}" if judge.get("source") else ""
        mean = float(judge.get("mean_score", 0))
        out = [
            f"    judge ({judge.get('method', 'ruler')}{source}): mean {mean:.3f}, best r{best}",
            f"    judge score per repeat: {scores}",
        ]
        if judge.get("rejudged_run"):
            out.append(f"    rejudged the stored run {judge['rejudged_run']}: no step ran")
        if judge.get("order_sensitivity") is not None:
            out.append(f"    judge order sensitivity (swap check): {float(judge['order_sensitivity']):.3f}")
        if judge.get("warning"):
            out.append(f"    judge warning: {judge['warning']}")
        return out
    status = str(judge.get("status", ""))
    reason = str(judge.get("reason", "")).split("\n", 1)[0].removeprefix("the judge of the repeats failed: ")
    return [f"    judge: {status}: {reason}"] if status else []


def junit_properties(block: Mapping[str, Any]) -> list[tuple[str, object]]:
    """The repeat numbers as JUnit XML properties of the mission's testcase."""
    mission = block["mission"]
    bounds = mission.get("interval") or [None, None]
    props: list[tuple[str, object]] = [
        ("repeats", block["n"]),
        ("repeats_passed", mission["passed"]),
        ("repeat_rate_low", "n/a" if bounds[0] is None else f"{bounds[0]:.4f}"),
        ("repeat_rate_high", "n/a" if bounds[1] is None else f"{bounds[1]:.4f}"),
        (f"pass_at_{mission['k']}", _num(mission["pass_at_k"])),
        (f"pass_hat_{mission['k']}", _num(mission["pass_hat_k"])),
        ("flaky_over_repeats", ",".join(block["flaky_steps"])),
    ]
    rewards = block.get("rewards")
    if rewards:
        summary = reward_summary(rewards)
        assert summary is not None
        props.append(("reward_mean", f"{summary['mean']:.4f}"))
    judge = block.get("judge")
    if isinstance(judge, Mapping) and judge.get("scores"):
        props.append(("judge_method", str(judge.get("method", ""))))
        props.append(("judge_scores", " ".join(f"{float(s):.4f}" for s in judge["scores"])))
        props.append(("judge_mean_score", f"{float(judge.get('mean_score', 0)):.4f}"))
    elif isinstance(judge, Mapping) and judge.get("status"):
        props.append(("judge_status", str(judge["status"])))
    return props


def markdown_row(name: str, block: Mapping[str, Any], *, escape: Any = str) -> str:
    """One row of the Markdown summary's repeats table (the caller escapes ``name``; step ids pass ``escape``)."""
    mission = block["mission"]
    rewards = block.get("rewards")
    summary = reward_summary(rewards) if rewards else None
    reward = "" if summary is None else f"{summary['mean']:.3f}"
    flaky = ", ".join(f"{escape(row['id'])} {row['passed']}/{row['total']}" for row in block["steps"] if row["flaky"])
    judge = block.get("judge")
    judged = ""
    if isinstance(judge, Mapping) and judge.get("scores"):
        judged = f"{judge.get('method', '')} " + " ".join(f"{float(s):.2f}" for s in judge["scores"])
    elif isinstance(judge, Mapping) and judge.get("status"):
        judged = str(judge["status"])
    return (
        f"| {name} | {block['n']} | {_rate(mission)} | {_interval(mission)} | {_num(mission['pass_at_k'])} "
        f"| {_num(mission['pass_hat_k'])} | {flaky} | {reward} | {escape(judged)} |"
    )


MARKDOWN_HEADER = (
    "| mission | repeats | passed | 95% CI | pass@k | pass^k | flaky over the repeats | mean reward | judge scores |",
    "|---|--:|--:|---|--:|--:|---|--:|---|",
)


# -- one result from the repeats --------------------------------------------------------------------


def _plain_step(result: StepResult, label: str, expects: frozenset[str]) -> dict[str, Any]:
    step_id = result.step_id.removeprefix(label)
    return {
        "id": step_id,
        "type": result.step_type,
        "status": result.status.value,
        "counted": result.counted,
        "has_expect": step_id in expects,
        "outputs": dict(result.outputs),
    }


def combine(
    name: str,
    path: str,
    parts: Sequence[MissionResult],
    *,
    threshold: float | None,
    xfail: bool,
    min_pass_rates: Mapping[str, float],
    expects: frozenset[str] = frozenset(),
    reward: str | None = None,
    judge_scores: Sequence[float | None] | None = None,
    judge: Mapping[str, Any] | None = None,
    judge_result: StepResult | None = None,
    k: int = 2,
    duration: float = 0.0,
) -> MissionResult:
    """One mission result from its repeats (each already prefixed ``r1/`` ...): every step of every
    repeat, the ``repeats`` block, and the verdict over the repeats.

    ``judge_result`` is the mission-level judge (``repeats/judge``): a counted result of the item
    like a step; when it failed, the mission fails with its reason."""
    n = len(parts)
    runs = [
        {"status": part.status.value, "steps": [_plain_step(r, prefix(i + 1, n), expects) for r in part.steps.values()]}
        for i, part in enumerate(parts)
    ]
    block = aggregate(runs, min_pass_rates=min_pass_rates, reward=reward, judge_scores=judge_scores, k=k)
    if judge is not None:
        block["judge"] = dict(judge)
    elif judge_result is not None:
        block["judge"] = {"status": judge_result.status.value, "reason": judge_result.reason}
    decided = verdict(block, runs, threshold=threshold)
    if judge_result is not None and judge_result.status is StepStatus.FAILED:
        decided = RepeatVerdict(passed=False, problems=(*decided.problems, judge_result.reason.split("\n", 1)[0]))
    steps: dict[str, StepResult] = {}
    for part in parts:
        steps.update(part.steps)
    if judge_result is not None:
        steps[judge_result.step_id] = judge_result
    blocked = any(r.status is StepStatus.BLOCKED for r in steps.values())
    status = MissionStatus.PASSED if decided.passed else MissionStatus.FAILED
    if xfail and not blocked:
        status = MissionStatus.XFAILED if any(p.status is MissionStatus.XFAILED for p in parts) else status
        if all(p.status is MissionStatus.XPASSED for p in parts):
            status = MissionStatus.XPASSED
    message = ""
    if status is not MissionStatus.PASSED:
        lines = list(decided.problems)
        details = [
            f"r{i + 1}: {part.message}" if n > 1 else part.message for i, part in enumerate(parts) if part.message
        ]
        message = "\n\n".join(["\n".join(lines), *details] if lines else details)
    return MissionResult(
        name=name,
        path=path,
        status=status,
        steps=steps,
        duration=duration,
        workspace=parts[0].workspace if parts else "",
        message=message,
        repeats=block,
        llm=_merge_llm(parts),
        matrix=parts[0].matrix if parts else {},
    )


def _merge_llm(parts: Sequence[MissionResult]) -> dict[str, Any]:
    from pytest_rustchain.llm.runtime import merge_llm  # the model layer loads only when a mission uses it

    return merge_llm([p.llm for p in parts]) if any(p.llm for p in parts) else {}
