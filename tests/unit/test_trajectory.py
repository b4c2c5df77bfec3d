"""Trajectory files: schema-valid events, masking, caps, the run index and the chat-JSONL export."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from pytest_rustchain import trajectory

SCHEMA = json.loads(resources.files("pytest_rustchain").joinpath("schema/trajectory.schema.json").read_text())


def _mask(text: str) -> str:
    return text.replace("hunter2-canary", "***")


def _events(path: Path) -> list[dict[str, Any]]:
    return list(trajectory.read_events(path))


def test_events_follow_the_schema_and_are_masked(tmp_path: Path) -> None:
    """Every event written validates against the shipped schema, and secrets never reach the file."""
    t = trajectory.Trajectory(tmp_path, stem="gen", run_id="RUN", repeat=2, mask=_mask)
    t.emit("run", format="pytest-rustchain-trajectory", version=1, run_id="RUN", mission="Gen", path="gen.mission.yaml",
           nodeid="gen.mission.yaml::gen", repeats=3)  # fmt: skip
    t.emit("step_start", step="ask", step_type="llm", parameters={"prompt": "token hunter2-canary"})
    t.emit(
        "llm_call",
        step="ask",
        source="scripted",
        cassette_key="abc",
        latency_ms=12.5,
        gen_ai={
            "operation": {"name": "chat"},
            "request": {"model": "m"},
            "usage": {"input_tokens": 3, "output_tokens": 5},
            "input": {"messages": [{"role": "user", "content": "hi hunter2-canary"}]},
            "output": {"messages": [{"role": "assistant", "content": "hello"}]},
        },
    )
    t.emit("step_end", **trajectory.step_end_event({"id": "ask", "type": "llm", "status": "passed", "counted": True,
                                                    "duration": 0.1}))  # fmt: skip
    t.emit("score", kind="reward", reward=0.9, success=1.0, efficiency=1.0, quality=0.5)
    t.emit("run_end", status="passed", steps_passed=1, steps_total=1)
    t.close()
    assert t.path == tmp_path / "gen" / "RUN" / "r2.jsonl"
    text = t.path.read_text()
    assert "hunter2-canary" not in text
    events = _events(t.path)
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
    for event in events:
        jsonschema.validate(event, SCHEMA)


def test_long_strings_are_cut_and_files_are_capped(tmp_path: Path, monkeypatch: Any) -> None:
    """A huge output is cut with a note, and a file past its byte cap ends with a truncated run_end."""
    t = trajectory.Trajectory(tmp_path, stem="big", run_id="R", repeat=1, mask=_mask)
    t.emit("step_start", step="s", step_type="command", parameters={"stdin": "x" * 100_000})
    first = _events(t.path)[0]
    assert len(first["parameters"]["stdin"]) < 20_000
    assert "chars omitted" in first["parameters"]["stdin"]
    monkeypatch.setattr(trajectory, "MAX_BYTES", t.written + 50)
    t.emit("step_start", step="s2", step_type="command", parameters={"stdin": "y" * 1000})
    t.emit("step_end", step="s2", step_type="command", status="passed", counted=True, duration=0.0)
    events = _events(t.path)
    assert events[-1]["event"] == "run_end"
    assert events[-1]["status"] == "truncated"
    assert len(events) == 2


def test_index_keeps_earlier_runs(tmp_path: Path) -> None:
    """index.json gains this run's files and keeps those of earlier runs in the same directory."""
    trajectory.write_index(tmp_path, [{"run_id": "a", "file": "x/a/r1.jsonl"}])
    trajectory.write_index(tmp_path, [{"run_id": "b", "file": "x/b/r1.jsonl"}])
    data = json.loads((tmp_path / "index.json").read_text())
    assert [r["run_id"] for r in data["runs"]] == ["a", "b"]


def test_chat_export_rebuilds_each_conversation() -> None:
    """The chat-JSONL export gives one line per llm step: the new messages of each call and its answers."""
    events: list[dict[str, Any]] = [
        {"event": "llm_call", "step": "plan", "source": "recorded", "gen_ai": {
            "request": {"model": "m"},
            "input": {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u1"}]},
            "output": {"messages": [{"role": "assistant", "content": "a1"}]}}},
        {"event": "llm_call", "step": "plan", "source": "recorded", "gen_ai": {
            "request": {"model": "m"},
            "input": {"messages": [{"role": "user", "content": "fix it"}]},
            "output": {"messages": [{"role": "assistant", "content": "a2"}]}}},
        {"event": "step_end", "step": "plan"},
    ]  # fmt: skip
    lines = trajectory.chat_lines(events, reward=0.7)
    assert len(lines) == 1
    assert [m["content"] for m in lines[0]["messages"]] == ["s", "u1", "a1", "fix it", "a2"]
    assert lines[0]["metadata"] == {"step": "plan", "model": "m", "reward": 0.7, "source": "recorded"}


def test_run_ids_sort_by_time() -> None:
    """Run ids start with the UTC time, so directories list oldest first."""
    import datetime as dt

    early = trajectory.new_run_id(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    late = trajectory.new_run_id(dt.datetime(2026, 6, 1, tzinfo=dt.UTC))
    assert early < late
    assert early.startswith("20260101T000000Z-")
