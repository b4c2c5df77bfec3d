"""Numbers over a mission's repeats: each step's and the mission's reliability, the pooled rate, the
``min_pass_rate`` and ``success_threshold`` verdicts, and the ``rustchain`` reward of each repeat."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from pytest_rustchain import stats

__all__ = ["RepeatVerdict", "aggregate", "prefix", "reward_summary", "verdict"]

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
    mission = stats.reliability([str(run.get("status", "")) in _PASSED_RUN for run in runs], k=k)
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
    return {
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class RepeatVerdict:
    passed: bool
    problems: tuple[str, ...]
    """One line per reason the mission failed over its repeats (empty when it passed)."""


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


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
