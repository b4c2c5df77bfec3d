"""The run history's arithmetic: what is kept, what counts as a regression, what is flaky across runs."""

from __future__ import annotations

from typing import Any

from pytest_rustchain import history


def _entry(nodeid: str, steps: dict[str, str], status: str = "passed") -> dict[str, Any]:
    rows = [{"id": k, "status": v, "counted": v != "not-counted"} for k, v in steps.items()]
    counted = [r for r in rows if r["counted"]]
    return {
        "nodeid": nodeid,
        "name": nodeid,
        "status": status,
        "steps_passed": sum(1 for r in counted if r["status"] == "passed"),
        "steps_total": len(counted),
        "steps": rows,
    }


def test_update_keeps_the_last_runs_and_skips_skipped_missions() -> None:
    """Only the last K runs are kept; a skipped mission adds no run; uncounted steps are not recorded."""
    value: Any = None
    for n in range(5):
        value = history.update(value, [_entry("a::a", {"x": "passed" if n % 2 else "failed"})], keep=3, when=str(n))
    runs = value["missions"]["a::a"]["runs"]
    assert [r["when"] for r in runs] == ["2", "3", "4"]
    value = history.update(value, [_entry("a::a", {}, status="skipped")], keep=3, when="5")
    assert len(value["missions"]["a::a"]["runs"]) == 3
    value = history.update(value, [_entry("a::a", {"x": "passed", "y": "not-counted"})], keep=3, when="6")
    assert value["missions"]["a::a"]["runs"][-1]["steps"] == {"x": "1/1"}


def test_unreadable_cache_values_start_a_fresh_history() -> None:
    """A cache value of another shape (an older format, a hand edit) is ignored, never a crash."""
    junks: list[Any] = [None, [], {"version": 99}, {"version": 1, "missions": {"a::a": {"runs": [{"passed": "x"}]}}}]
    for junk in junks:
        value = history.update(junk, [_entry("a::a", {"x": "passed"})], keep=3, when="t")
        assert len(value["missions"]["a::a"]["runs"]) == 1


def test_regression_is_reported_with_both_rates_and_improvement_is_not() -> None:
    """A lower rate than the last run is a regression naming both rates; a higher one says nothing."""
    before = history.update(None, [_entry("a::a", {"x": "passed", "y": "passed", "z": "passed"})], keep=5, when="1")
    after = history.update(before, [_entry("a::a", {"x": "passed", "y": "passed", "z": "failed"})], keep=5, when="2")
    found = history.notices(before, after, ["a::a"])
    assert [n.text for n in found if n.regression] == ["regressed from 100% to 66.6% since the last run"]
    assert [n.text for n in found if not n.regression] == ["flaky across the last 2 runs: z (1/2)"]
    again = history.update(after, [_entry("a::a", {"x": "passed", "y": "passed", "z": "passed"})], keep=5, when="3")
    assert not [n for n in history.notices(after, again, ["a::a"]) if n.regression]


def test_steps_with_repeats_count_every_repeat() -> None:
    """A step measured over repeats is kept as k/n and marked '~' in the table when only some passed."""
    entry = _entry("a::a", {"x": "passed"})
    entry["steps"][0]["repeats"] = {"passed": 3, "total": 5}
    value = history.update(None, [entry], keep=5, when="1")
    assert value["missions"]["a::a"]["runs"][0]["steps"] == {"x": "3/5"}
    lines = history.table_lines(value, ["a::a"])
    assert "  x  ~  3/5 (60%)" in lines


def test_table_for_a_mission_without_runs() -> None:
    """A selected mission that never ran says so in the table."""
    assert "b::b: no runs recorded yet" in history.table_lines(None, ["b::b"])


def test_repeated_missions_are_kept_per_step_over_the_repeats() -> None:
    """A repeated mission's history holds each step once with its k/n over the repeats, not r1/x, r2/x."""
    entry = _entry("a::a", {"r1/x": "passed", "r2/x": "failed"})
    entry["repeats"] = {"steps": [{"id": "x", "passed": 1, "total": 2}]}
    value = history.update(None, [entry], keep=5, when="1")
    assert value["missions"]["a::a"]["runs"][0]["steps"] == {"x": "1/2"}


def test_history_kept_in_the_first_format_is_still_read() -> None:
    """Runs an older version kept with ``[passed, total]`` counts still give the table and the notices,
    next to runs kept now."""
    old = {
        "version": 1,
        "missions": {
            "a::a": {
                "name": "a",
                "runs": [{"when": "1", "status": "passed", "passed": 1, "total": 1, "steps": {"x": [1, 1]}}],
            }
        },
    }
    value = history.update(old, [_entry("a::a", {"x": "failed"})], keep=3, when="2")
    assert value["version"] == history.FORMAT_VERSION
    assert [r["steps"] for r in value["missions"]["a::a"]["runs"]] == [{"x": [1, 1]}, {"x": "0/1"}]
    lines = history.table_lines(value, ["a::a"])
    assert "  x  .F  1/2 (50%)" in lines
    texts = [n.text for n in history.notices(old, value, ["a::a"])]
    assert texts == ["regressed from 100% to 0% since the last run", "flaky across the last 2 runs: x (1/2)"]


def test_counts_of_reads_both_formats_and_nothing_else() -> None:
    """Step counts are "p/t" text or a [p, t] pair; anything else is not a count."""
    assert history.counts_of("3/4") == (3, 4)
    assert history.counts_of([3, 4]) == (3, 4)
    assert [history.counts_of(v) for v in ("3", "a/b", "-1/2", [1], [1, "2"], None, 3)] == [None] * 7
