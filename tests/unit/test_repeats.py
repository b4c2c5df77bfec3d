"""Numbers over a mission's repeats: per-step reliability, pooling, min_pass_rate, verdicts and rewards."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_rustchain import repeats


def _step(step_id: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "type": extra.pop("type", "command"),
        "status": status,
        "counted": extra.pop("counted", True),
        "has_expect": extra.pop("has_expect", False),
        "outputs": extra.pop("outputs", {}),
    }


def _run(status: str, *steps: dict[str, Any]) -> dict[str, Any]:
    return {"status": status, "steps": list(steps)}


RUNS = [
    _run("passed", _step("write", "passed"), _step("gen", "passed"), _step("test", "passed")),
    _run("passed", _step("write", "passed"), _step("gen", "tolerated"), _step("test", "passed")),
    _run("passed", _step("write", "passed"), _step("gen", "passed"), _step("test", "passed")),
    _run("failed", _step("write", "passed"), _step("gen", "passed"), _step("test", "failed")),
    _run("passed", _step("write", "passed"), _step("gen", "passed"), _step("test", "passed")),
]


def test_per_step_reliability_and_flaky_steps() -> None:
    """Each step gets k/n over the repeats with its interval; steps that both passed and failed are flaky."""
    block = repeats.aggregate(RUNS)
    rows = {row["id"]: row for row in block["steps"]}
    assert block["n"] == 5
    assert (rows["write"]["passed"], rows["write"]["total"]) == (5, 5)
    assert round(rows["write"]["interval"][0], 3) == 0.566
    assert (rows["gen"]["passed"], rows["gen"]["total"]) == (4, 5)
    assert block["flaky_steps"] == ["gen", "test"]
    assert (block["mission"]["passed"], block["mission"]["total"]) == (4, 5)
    assert (block["steps_pooled"]["passed"], block["steps_pooled"]["total"]) == (13, 15)


def test_uncounted_steps_do_not_enter_a_step_rate() -> None:
    """A step skipped by its condition in some repeats is measured over the repeats where it counted."""
    runs = [_run("passed", _step("h", "skipped", counted=False)), _run("passed", _step("h", "passed"))]
    row = repeats.aggregate(runs)["steps"][0]
    assert (row["passed"], row["total"]) == (1, 1)


def test_verdict_without_threshold_needs_every_repeat() -> None:
    """Without success_threshold a repeated mission fails when any repeat failed, naming the repeats."""
    result = repeats.verdict(repeats.aggregate(RUNS), RUNS, threshold=None)
    assert not result.passed
    assert result.problems == ("1 of 5 repeats failed: r4",)


def test_threshold_pools_over_repeats() -> None:
    """success_threshold compares the rate pooled over every repeat's counted steps."""
    block = repeats.aggregate(RUNS)
    assert repeats.verdict(block, RUNS, threshold=0.85).passed  # 13/15 = 0.867
    below = repeats.verdict(block, RUNS, threshold=0.9)
    assert below.problems == ("success rate over 5 repeats 13/15 (86.6%) is below the success_threshold 0.9",)


def test_min_pass_rate_fails_the_mission_with_the_interval() -> None:
    """A step whose rate over the repeats is below its min_pass_rate fails the mission, with its interval."""
    block = repeats.aggregate(RUNS, min_pass_rates={"gen": 0.9, "write": 0.8})
    result = repeats.verdict(block, RUNS, threshold=0.5)
    assert result.problems == (
        "step 'gen' passed 4 of 5 repeats (80.0%, 95% interval 0.376-0.964), below its min_pass_rate 0.9",
    )
    exact = repeats.aggregate(RUNS, min_pass_rates={"gen": 0.8})
    assert repeats.verdict(exact, RUNS, threshold=0.5).passed  # exactly at the minimum passes


def test_blocked_step_fails_even_above_threshold() -> None:
    """A step blocked by the safety policy in any repeat fails the mission whatever the pooled rate."""
    runs = [*RUNS[:4], _run("failed", _step("write", "blocked"), _step("gen", "passed"), _step("test", "passed"))]
    result = repeats.verdict(repeats.aggregate(runs), runs, threshold=0.1)
    assert result.problems == ("blocked by the safety policy: r5/write",)


def test_rustchain_reward_per_repeat() -> None:
    """The reward weighs success, efficiency against the median tool calls, and quality from expects or a judge."""
    agent = [
        _run("passed", _step("a", "passed", type="agent", outputs={"tool_calls": [{}] * 4}), _step("x", "passed")),
        _run("failed", _step("a", "passed", type="agent", outputs={"tool_calls": [{}] * 8}), _step("x", "failed")),
        _run("passed", _step("a", "passed", type="agent", outputs={"tool_calls": [{}] * 4}), _step("x", "passed")),
    ]
    for run in agent:
        run["steps"][1]["has_expect"] = True
    rewards = repeats.aggregate(agent, reward="rustchain")["rewards"]
    assert [r["tool_calls"] for r in rewards] == [4, 8, 4]
    assert rewards[0]["reward"] == pytest.approx(1.0)
    assert rewards[1]["efficiency"] == pytest.approx(0.5)
    assert rewards[1]["quality"] == 0.0
    assert rewards[1]["reward"] == pytest.approx(0.5 * 0.5 + 0.3 * 0.5 + 0.2 * 0.0)
    judged = repeats.aggregate(agent, reward="rustchain", judge_scores=[0.9, 0.2, None])["rewards"]
    assert judged[0]["quality"] == 0.9
    assert judged[0]["quality_from"] == "judge"
    assert judged[2]["quality_from"] == "expect"
    with pytest.raises(ValueError, match="unknown reward"):
        repeats.aggregate(agent, reward="elo")


def test_subtest_prefix() -> None:
    """Repeats are named r1/, r2/ ...; a single run keeps plain step ids."""
    assert repeats.prefix(2, 5) == "r2/"
    assert repeats.prefix(1, 1) == ""


def test_repeat_with_a_min_pass_rate_failure_is_a_failed_run() -> None:
    """A repeat whose step failed under min_pass_rate passes the verdict but counts as a failed run."""
    plain = repeats.aggregate(RUNS)
    assert (plain["mission"]["passed"], plain["mission"]["total"]) == (4, 5)
    judged = repeats.aggregate(RUNS, min_pass_rates={"gen": 0.6})
    assert (judged["mission"]["passed"], judged["mission"]["total"]) == (3, 5)
    assert repeats.verdict(judged, RUNS, threshold=0.5).passed
