"""The mission-level judge's candidates: what the judge reads of each repeat."""

from __future__ import annotations

from typing import Any

from pytest_rustchain.missionjudge import RepeatRecord, candidate, models_under_test


def _events(workspace: str, answer: str, *, passed: bool) -> tuple[dict[str, Any], ...]:
    return (
        {"event": "step_end", "step": "r2/setup", "step_type": "command", "status": "passed", "counted": True},
        {
            "event": "llm_call",
            "step": "r2/gen",
            "step_type": "llm",
            "gen_ai": {
                "request": {"model": "coder"},
                "input": {"messages": [{"role": "user", "content": f"write {workspace}/a.py"}]},
                "output": {"messages": [{"role": "assistant", "content": answer}]},
            },
        },
        {"event": "validation", "step": "r2/gen", "attempt": 1, "passed": passed, "exit_code": 0 if passed else 2,
         "detail": "" if passed else "exit code 2\nboom"},
        {"event": "step_end", "step": "r2/gen", "step_type": "llm", "status": "passed" if passed else "failed",
         "counted": True, "phase": "" if passed else "expect"},
        {"event": "tool_call", "step": "r2/agent/1:command", "verdict": {"decision": "reject"}},
    )  # fmt: skip


def test_candidate_reads_model_steps_with_validation_and_facts() -> None:
    """A repeat's candidate holds its model steps' prompts, validations and answers, without the repeat
    prefix or the workspace path, and its facts count passes, exit codes and blocked tool calls."""
    text, facts = candidate(RepeatRecord(events=_events("/tmp/w1", "code", passed=False), status="failed",
                                         workspace="/tmp/w1"))  # fmt: skip
    assert text.startswith("## step gen (llm): failed\n[user]\nwrite <workspace>/a.py")
    assert "validation of attempt 1: failed (exit code 2): boom" in text
    assert text.index("validation of attempt 1") < text.index("[assistant]\ncode")
    assert "setup" not in text and "/tmp/w1" not in text
    assert facts == {"status": "failed", "counted_steps_passed": "1/2", "failed_steps": ["gen"],
                     "expect_failed_steps": ["gen"], "validation_exit_codes": [2],
                     "blocked_tool_calls": 1}  # fmt: skip


def test_candidates_of_identical_repeats_are_identical() -> None:
    """Two repeats that did the same in different workspaces read the same, so only real differences count."""
    one = candidate(RepeatRecord(events=_events("/tmp/a", "x", passed=True), status="passed", workspace="/tmp/a"))
    two = candidate(RepeatRecord(events=_events("/tmp/b", "x", passed=True), status="passed", workspace="/tmp/b"))
    assert one == two


def test_named_steps_and_models_under_test() -> None:
    """judge.steps picks the steps read (any type named), and the models under test are those of model steps."""
    record = RepeatRecord(events=_events("/w", "x", passed=True), status="passed")
    text, _ = candidate(record, steps=["setup"])
    assert text == "## step setup (command): passed"
    assert models_under_test([record]) == {"coder"}


def test_stored_run_is_the_newest_of_the_same_item() -> None:
    """--mission-rejudge reads the newest run of the item itself; another matrix combination of the same
    file, or an older run, is never mixed in."""
    from pytest_rustchain.rejudge import find_run

    def entry(run: str, node: str, repeat: int) -> dict[str, Any]:
        return {"run_id": run, "nodeid": node, "path": "m.mission.yaml", "repeat": repeat, "file": f"{run}/{repeat}"}

    entries = [entry("20261129T100000Z-a", "m[x=1]", 1), entry("20261129T110000Z-b", "m[x=1]", 2),
               entry("20261129T110000Z-b", "m[x=1]", 1), entry("20261129T120000Z-c", "m[x=2]", 1)]  # fmt: skip
    found = find_run(entries, nodeid="m[x=1]", path="m.mission.yaml")
    assert found is not None
    assert found.run_id == "20261129T110000Z-b"
    assert [e["repeat"] for e in found.entries] == [1, 2]
    assert find_run(entries, nodeid="other", path="elsewhere.yaml") is None
    by_path = find_run(entries, nodeid="elsewhere/m.mission.yaml::m[x=2]", path="m.mission.yaml")
    assert by_path is not None and [e["nodeid"] for e in by_path.entries] == ["m[x=2]"]
