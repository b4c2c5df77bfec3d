"""Trajectories: one JSON Lines file per mission run and repeat, masked and capped, plus the run index
and the chat-JSONL export built from them.

Event names and fields follow OpenTelemetry's GenAI attributes (``gen_ai.*``), nested under ``gen_ai``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_rustchain.model import StepResult

__all__ = [
    "EVENTS",
    "FORMAT_VERSION",
    "MissionTrajectories",
    "Trajectory",
    "chat_lines",
    "llm_call_event",
    "new_run_id",
    "read_events",
    "step_end_event",
    "step_events",
    "tool_call_event",
    "validation_events",
    "write_index",
]

FORMAT_VERSION = 1
EVENTS = ("run", "step_start", "llm_call", "tool_call", "validation", "step_end", "score", "run_end")
MAX_STRING = 16_000
MAX_ITEMS = 500
MAX_DEPTH = 12
MAX_BYTES = 8 * 1024 * 1024
"""Per file: past this, one ``truncated`` note and only ``run_end`` follow."""

Mask = Callable[[str], str]
_SAFE = re.compile(r"[^A-Za-z0-9._=-]")


def new_run_id(now: dt.datetime | None = None) -> str:
    """``20261129T201500Z-3f9a1c``: sortable by time, unique across machines sharing a directory."""
    moment = now or dt.datetime.now(dt.UTC)
    return moment.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def capped(value: Any, mask: Mask, *, depth: int = 0) -> Any:
    """Plain JSON data, every string masked and cut to ``MAX_STRING`` (head and tail kept), lists and
    mappings cut to ``MAX_ITEMS``, nesting cut at ``MAX_DEPTH``."""
    if depth > MAX_DEPTH:
        return "[... nested too deep, omitted ...]"
    if isinstance(value, str):
        text = mask(value)
        if len(text) > MAX_STRING:
            half = MAX_STRING // 2
            text = text[:half] + f"\n[... {len(text) - MAX_STRING} chars omitted ...]\n" + text[-half:]
        return text
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, Mapping):
        items = list(value.items())
        out = {mask(str(k)): capped(v, mask, depth=depth + 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            out["..."] = f"{len(items) - MAX_ITEMS} more keys omitted"
        return out
    if isinstance(value, (list, tuple)):
        seq = [capped(v, mask, depth=depth + 1) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            seq.append(f"[... {len(value) - MAX_ITEMS} more items omitted ...]")
        return seq
    return capped(str(value), mask, depth=depth)


class Trajectory:
    """The event stream of one repeat of one mission run, written as it happens (``r<k>.jsonl``).

    Each line is flushed, so a run that is killed keeps what it did up to then.
    """

    def __init__(self, directory: Path, *, stem: str, run_id: str, repeat: int, mask: Mask) -> None:
        self.path = directory / _SAFE.sub("_", stem) / run_id / f"r{repeat}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.repeat = repeat
        self.run_id = run_id
        self.mask = mask
        self.seq = 0
        self.written = 0
        self.truncated = False
        self._stream = self.path.open("w", encoding="utf-8")

    def emit(self, event: str, **fields: Any) -> None:
        if event not in EVENTS:
            raise ValueError(f"unknown trajectory event {event!r}")
        if self._stream.closed or (self.truncated and event != "run_end"):
            return
        self.seq += 1
        record = {"event": event, "seq": self.seq, "time": _now(), "repeat": self.repeat}
        record.update(capped(fields, self.mask))
        line = json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n"
        if self.written + len(line) > MAX_BYTES and event != "run_end":
            self.truncated = True
            note = {"event": "run_end", "seq": self.seq, "time": _now(), "repeat": self.repeat}
            note.update({"status": "truncated", "note": f"trajectory cut at {MAX_BYTES} bytes"})
            self._stream.write(json.dumps(note) + "\n")
            self._stream.close()
            return
        self._stream.write(line)
        self._stream.flush()
        self.written += len(line)

    def close(self) -> None:
        if not self._stream.closed:
            self._stream.close()


def step_end_event(result: Mapping[str, Any]) -> dict[str, Any]:
    """The ``step_end`` fields of a step's summary entry."""
    keys = ("status", "reason", "skip_kind", "phase", "counted", "flaky", "duration", "attempts", "risk", "outputs")
    return {"step": result.get("id", ""), "step_type": result.get("type", ""), **{k: result.get(k) for k in keys}}


def llm_call_event(result: StepResult) -> dict[str, Any]:
    """An ``llm_call`` event from a model step's result: the request as rendered (system and prompt),
    the final answer, usage, source; field names after OpenTelemetry's GenAI attributes."""
    params, outputs = result.params, result.outputs
    messages = [{"role": "system", "content": params["system"]}] if params.get("system") else []
    prompt = params.get("prompt", params.get("objective", params.get("task")))
    if isinstance(prompt, str):
        messages.append({"role": "user", "content": prompt})
    answer = outputs.get("raw_content", outputs.get("content"))
    if answer is None and "scores" in outputs:
        answer = json.dumps({"scores": outputs["scores"], "explanations": outputs.get("explanations")})
    usage = outputs.get("usage") or {}
    source = str(outputs.get("source") or "")
    return {
        "step": result.step_id,
        "step_type": result.step_type,
        "source": source if source in ("live", "recorded", "scripted") else "recorded",
        "cassette_key": outputs.get("cassette_key"),
        "latency_ms": outputs.get("latency_ms"),
        "attempt": outputs.get("attempts"),
        "gen_ai": {
            "operation": {"name": "chat"},
            "request": {
                "model": str(outputs.get("model") or params.get("model") or ""),
                "temperature": params.get("temperature"),
                "max_tokens": params.get("max_tokens"),
            },
            "response": {"model": str(outputs.get("model") or ""), "finish_reasons": [outputs.get("finish_reason")]},
            "usage": {"input_tokens": usage.get("input_tokens"), "output_tokens": usage.get("output_tokens")},
            "input": {"messages": messages},
            "output": {"messages": [{"role": "assistant", "content": str(answer or "")}]},
        },
    }


def tool_call_event(result: StepResult, call: dict[str, Any]) -> dict[str, Any]:
    """A ``tool_call`` event from one of an agent step's tool calls: what the model asked for, the
    safety verdict (approve, reject, terminate, or invalid for a call that could not be checked) and
    how it ended."""
    return {
        "step": str(call.get("id") or result.step_id),
        "step_type": str(call.get("step_type") or call.get("name") or ""),
        "verdict": {"decision": call.get("verdict"), "risk": int(call.get("risk") or 0),
                    "rules": [str(r) for r in call.get("rules") or ()]},
        "result": {"status": call.get("status"), "message": call.get("message"), "duration": call.get("duration")},
        "gen_ai": {"tool": {"name": str(call.get("name") or ""), "call": {"arguments": call.get("arguments")}}},
    }  # fmt: skip


def validation_events(result: StepResult) -> list[dict[str, Any]]:
    """One ``validation`` event per checked answer of an ``llm`` step (``validate:``, a schema, a code
    block): the attempt, whether it passed, the exit code of a validation command, and what was wrong."""
    out: list[dict[str, Any]] = []
    for entry in result.outputs.get("validation") or ():
        if not isinstance(entry, Mapping):
            continue
        code = entry.get("exit_code")
        out.append(
            {
                "step": result.step_id,
                "step_type": result.step_type,
                "attempt": int(entry.get("attempt") or 0),
                "passed": bool(entry.get("passed")),
                "exit_code": code if isinstance(code, int) and not isinstance(code, bool) else None,
                "detail": str(entry.get("error") or ""),
            }
        )
    return out


def step_events(result: StepResult) -> list[tuple[str, dict[str, Any]]]:
    """The events a finished step adds to its repeat's trajectory, in order: its model call, the
    validation of each answer, its tool calls, and ``step_end``."""
    events: list[tuple[str, dict[str, Any]]] = []
    outputs = result.outputs
    if result.step_type in ("llm", "chain", "judge", "agent") and isinstance(outputs.get("usage"), dict):
        events.append(("llm_call", llm_call_event(result)))
    events.extend(("validation", v) for v in validation_events(result))
    if result.step_type == "agent":
        for call in outputs.get("tool_calls") or ():
            if isinstance(call, dict):
                events.append(("tool_call", tool_call_event(result, call)))
    events.append(("step_end", {**step_end_event(result.to_dict()), "parameters": dict(result.params)}))
    return events


def read_events(path: Path) -> Iterator[dict[str, Any]]:
    """The events of a trajectory file; a line that is not a JSON object raises ValueError naming it."""
    with path.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc})") from None
            if not isinstance(event, dict):
                raise ValueError(f"{path}:{number}: not a JSON object")
            yield event


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        Path(name).chmod(0o644)
        Path(name).replace(path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def write_index(directory: Path, entries: Iterable[Mapping[str, Any]]) -> Path:
    """Add this run's files to ``DIR/index.json`` (earlier runs' entries stay), atomically."""
    path = directory / "index.json"
    runs: list[Any] = []
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(old, dict) and old.get("version") == FORMAT_VERSION and isinstance(old.get("runs"), list):
            runs = old["runs"]
    except (OSError, ValueError):
        pass
    runs.extend(dict(e) for e in entries)
    document = {"format": "pytest-rustchain-trajectories", "version": FORMAT_VERSION, "runs": runs}
    _atomic_write(path, json.dumps(document, ensure_ascii=False, indent=1) + "\n")
    return path


def chat_lines(events: Sequence[Mapping[str, Any]], *, reward: float | None) -> list[dict[str, Any]]:
    """The chat-JSONL export of one trajectory: one line per llm/agent step with its whole conversation.

    ``{"messages": [...], "tools": [...], "metadata": {...}}``, the shape common fine-tuning readers
    take; the answer of each call ends the step's messages as an ``assistant`` message.
    """
    by_step: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for event in events:
        if event.get("event") != "llm_call":
            continue
        step = str(event.get("step", ""))
        if step not in by_step:
            order.append(step)
            by_step[step] = {"messages": [], "tools": [], "sources": set(), "model": ""}
        entry = by_step[step]
        gen_ai = event.get("gen_ai") or {}
        entry["messages"].extend(m for m in gen_ai.get("input", {}).get("messages", []) if isinstance(m, dict))
        entry["messages"].extend(m for m in gen_ai.get("output", {}).get("messages", []) if isinstance(m, dict))
        tools = gen_ai.get("request", {}).get("tools")
        if isinstance(tools, list) and not entry["tools"]:
            entry["tools"] = tools
        entry["sources"].add(str(event.get("source", "")))
        entry["model"] = str(gen_ai.get("response", {}).get("model") or gen_ai.get("request", {}).get("model") or "")
    lines = []
    for step in order:
        entry = by_step[step]
        lines.append(
            {
                "messages": entry["messages"],
                "tools": entry["tools"],
                "metadata": {
                    "step": step,
                    "model": entry["model"],
                    "reward": reward,
                    "source": ",".join(sorted(s for s in entry["sources"] if s)),
                },
            }
        )
    return lines


class MissionTrajectories:
    """The trajectories of one mission item: a file per repeat, closed with its score and ``run_end``
    once every repeat is done (the reward of a repeat needs all of them)."""

    def __init__(self, directory: Path, *, run_id: str, stem: str, nodeid: str, name: str, path: str, repeats: int):
        self.directory = directory
        self.run_id = run_id
        self.stem = stem
        self.nodeid = nodeid
        self.name = name
        self.path = path
        self.repeats = repeats
        self.files: dict[int, Trajectory] = {}
        self.started: dict[int, float] = {}

    def begin(self, index: int, *, workspace: str, mask: Mask) -> None:
        t = Trajectory(self.directory, stem=self.stem, run_id=self.run_id, repeat=index + 1, mask=mask)
        self.files[index] = t
        t.emit(
            "run",
            format="pytest-rustchain-trajectory",
            version=FORMAT_VERSION,
            run_id=self.run_id,
            mission=self.name,
            path=self.path,
            nodeid=self.nodeid,
            repeats=self.repeats,
            workspace=workspace,
        )

    def emit(self, index: int, event: str, **fields: Any) -> None:
        t = self.files.get(index)
        if t is not None:
            t.emit(event, **fields)

    def step_start(self, index: int, label: str, *, step_type: str, line: int) -> None:
        self.emit(index, "step_start", step=label, step_type=step_type, line=line)

    def step_end(self, index: int, result: Mapping[str, Any], params: Mapping[str, Any]) -> None:
        self.emit(index, "step_end", **step_end_event(result), parameters=dict(params))

    def finish(self, parts: Sequence[Mapping[str, Any]], block: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        """Write each repeat's score and ``run_end``, close the files, and return the index entries."""
        rewards = {int(r["repeat"]) - 1: r for r in (block or {}).get("rewards", ())}
        judge = (block or {}).get("judge") or {}
        scores = judge.get("scores") if isinstance(judge, Mapping) else None
        entries: list[dict[str, Any]] = []
        for index, t in sorted(self.files.items()):
            part = parts[index] if index < len(parts) else {"status": "error"}
            reward = rewards.get(index)
            if isinstance(scores, list) and index < len(scores) and scores[index] is not None:
                t.emit(
                    "score",
                    kind="judge",
                    score=scores[index],
                    explanation=str(judge.get("explanations", [""] * len(scores))[index]),
                    **{
                        k: judge[k]
                        for k in ("method", "model", "source", "order_seed")
                        if judge.get(k) not in (None, "")
                    },
                )
            if reward is not None:
                keys = ("reward", "success", "efficiency", "quality", "quality_from")
                t.emit("score", kind="reward", **{k: reward[k] for k in keys if k in reward})
            t.emit(
                "run_end",
                status=str(part.get("status", "error")),
                steps_passed=int(part.get("steps_passed", 0)),
                steps_total=int(part.get("steps_total", 0)),
                duration=float(part.get("duration", 0.0)),
            )
            t.close()
            entries.append(
                {
                    "run_id": self.run_id,
                    "nodeid": self.nodeid,
                    "mission": self.name,
                    "path": self.path,
                    "repeat": index + 1,
                    "repeats": self.repeats,
                    "file": t.path.relative_to(self.directory).as_posix(),
                    "status": str(part.get("status", "error")),
                    "steps_passed": int(part.get("steps_passed", 0)),
                    "steps_total": int(part.get("steps_total", 0)),
                    "reward": None if reward is None else reward["reward"],
                }
            )
        return entries
