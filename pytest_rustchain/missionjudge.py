"""The mission-level ``judge:``: after the last repeat, a model scores the repeats of a mission.

Each repeat becomes one candidate: the transcript of its model steps (what was asked, what the model
answered, how each answer was validated, the tool calls and their verdicts), built from the repeat's
trajectory events, with the repeat's deterministic facts beside it (its status, counted steps passed,
validation exit codes, blocked tool calls). The same events are what ``--mission-trajectories`` writes,
so ``--mission-rejudge`` rebuilds exactly the candidates of the run and replays its judge from the
cassette. The scoring itself (shuffled order with a recorded seed, the strict answer check, one retry,
the swap check) is ``pytest_rustchain.judge``.

The judge is one counted result of the mission item, ``repeats/judge``: an answer that breaks the
contract twice, a missing recording or a provider error fails it, and the mission with it; no judge
model and no recording skips it (not counted) and the reward's quality falls back to the ``expect``s.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from pytest_rustchain import judge as scoring
from pytest_rustchain.model import MissionJudge, SkipKind, StepResult, StepStatus

if TYPE_CHECKING:
    from pytest_rustchain.llm.session import LLMSession

__all__ = [
    "JUDGED_TYPES",
    "JUDGE_STEP_ID",
    "JudgeOutcome",
    "RepeatRecord",
    "candidate",
    "default_seed",
    "models_under_test",
    "run_judge",
]

JUDGE_STEP_ID: Final = "repeats/judge"
"""The judge's id in reports: no step id contains ``/``, so it never collides with a step."""
JUDGED_TYPES: Final = frozenset({"llm", "chain", "agent"})
_REPEAT_PREFIX: Final = re.compile(r"^r\d+/")
_BLOCKED_DECISIONS: Final = frozenset({"reject", "terminate", "invalid"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RepeatRecord:
    """One repeat as the judge sees it: its trajectory events, its status and its workspace path."""

    events: tuple[Mapping[str, Any], ...]
    status: str
    workspace: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class JudgeOutcome:
    result: StepResult
    """The counted ``repeats/judge`` result (passed, failed, or skipped without a judge model)."""
    block: Mapping[str, Any] | None
    """The ``judge`` entry of the repeats block (None when the judge gave no scores)."""
    calls: tuple[Mapping[str, Any], ...] = ()
    """The judge's model calls, as ``CallRecord.to_dict()``: they count in the ``llm:`` line."""
    unused_recordings: int | None = None
    """Recordings of the mission's cassette no call used, known once the judge asked (None: not counted)."""

    @property
    def scores(self) -> list[float | None] | None:
        if self.block is None:
            return None
        return [float(s) for s in self.block["scores"]]


def default_seed(stem: str) -> int:
    """A seed fixed by the mission file, so every replay shows the judge the repeats in the same order."""
    return int(hashlib.sha256(f"{stem}/judge".encode()).hexdigest()[:8], 16)


def _plain(step: Any) -> str:
    return _REPEAT_PREFIX.sub("", str(step or ""), count=1)


def _selected(events: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[str]:
    """The judged steps of a repeat, in the order they ended."""
    out: list[str] = []
    for event in events:
        if event.get("event") != "step_end":
            continue
        plain = _plain(event.get("step"))
        wanted = plain in names if names else str(event.get("step_type", "")) in JUDGED_TYPES
        if wanted and plain not in out:
            out.append(plain)
    return out


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _message_lines(messages: Any) -> list[str]:
    lines = []
    for message in messages if isinstance(messages, list) else ():
        if isinstance(message, Mapping):
            lines.append(f"[{message.get('role', '?')}]\n{message.get('content', '')}")
    return lines


def candidate(record: RepeatRecord, *, steps: Sequence[str] = ()) -> tuple[str, dict[str, Any]]:
    """The text the judge reads for one repeat, and its facts.

    The repeat prefix (``r2/``) is dropped from step ids and the repeat's workspace path reads
    ``<workspace>``, so repeats differ only where their runs did and a replay asks the same.
    """
    events = record.events
    chosen = _selected(events, steps)
    blocks: dict[str, list[str]] = {name: [] for name in chosen}
    answers: dict[str, list[str]] = {}
    ends: dict[str, Mapping[str, Any]] = {}
    counted = passed = blocked = 0
    exit_codes: list[int] = []
    failed: list[str] = []
    expects_failed: list[str] = []
    for event in events:
        kind = event.get("event")
        plain = _plain(event.get("step"))
        if kind == "step_end":
            if event.get("counted"):
                counted += 1
                if event.get("status") == "passed":
                    passed += 1
                else:
                    failed.append(plain)
            if event.get("phase") == "expect":
                expects_failed.append(plain)
            ends.setdefault(plain, event)
        elif kind == "validation" and isinstance(event.get("exit_code"), int):
            exit_codes.append(int(event["exit_code"]))
        elif kind == "tool_call":
            verdict = _map(event.get("verdict"))
            if verdict.get("decision") in _BLOCKED_DECISIONS:
                blocked += 1
        owner = plain.split("/", 1)[0] if kind == "tool_call" and plain not in blocks else plain
        if owner not in blocks:
            continue
        if kind == "llm_call":
            gen_ai = _map(event.get("gen_ai"))
            blocks[owner] += _message_lines(_map(gen_ai.get("input")).get("messages"))
            answers.setdefault(owner, []).extend(_message_lines(_map(gen_ai.get("output")).get("messages")))
        elif kind == "validation":
            code = event.get("exit_code")
            state = "passed" if event.get("passed") else "failed"
            line = f"validation of attempt {event.get('attempt')}: {state}"
            line += f" (exit code {code})" if isinstance(code, int) else ""
            detail = str(event.get("detail") or "")
            if isinstance(code, int):
                detail = detail.removeprefix(f"exit code {code}").lstrip("\n")
            blocks[owner].append(line + (f": {detail}" if detail else ""))
        elif kind == "tool_call":
            gen_ai = _map(event.get("gen_ai"))
            tool = _map(gen_ai.get("tool"))
            arguments = _map(tool.get("call")).get("arguments")
            verdict = _map(event.get("verdict"))
            outcome = _map(event.get("result"))
            blocks[owner].append(
                f"tool call {tool.get('name', '?')} {json.dumps(arguments, ensure_ascii=False, sort_keys=True)}: "
                f"{verdict.get('decision', '?')}, {outcome.get('status', '?')}"
            )
    parts = []
    for name in chosen:
        end = ends.get(name, {})
        head = f"## step {name} ({end.get('step_type', '?')}): {end.get('status', '?')}"
        # The prompt, how each answer was checked, then the final answer.
        parts.append("\n".join([head, *blocks[name], *answers.get(name, ())]))
    text = "\n\n".join(parts) if parts else "(no transcript: the judged steps did not run in this repeat)"
    if record.workspace:
        text = text.replace(record.workspace, "<workspace>")
    facts: dict[str, Any] = {"status": record.status, "counted_steps_passed": f"{passed}/{counted}"}
    if failed:
        facts["failed_steps"] = failed
    if expects_failed:
        facts["expect_failed_steps"] = expects_failed
    if exit_codes:
        facts["validation_exit_codes"] = exit_codes
    if blocked:
        facts["blocked_tool_calls"] = blocked
    return text, facts


def models_under_test(records: Sequence[RepeatRecord]) -> set[str]:
    """The models the repeats' llm, chain and agent steps asked: the models under test."""
    models: set[str] = set()
    for record in records:
        for event in record.events:
            if event.get("event") == "llm_call" and str(event.get("step_type", "")) in JUDGED_TYPES:
                model = _map(_map(event.get("gen_ai")).get("request")).get("model")
                if model:
                    models.add(str(model))
    return models


def _skipped(spec: MissionJudge, path: str, reason: str, kind: SkipKind = SkipKind.PROVIDER) -> JudgeOutcome:
    """Not counted: no judge model to ask (``provider``), or nothing to rank (``condition``)."""
    result = StepResult(
        step_id=JUDGE_STEP_ID,
        step_type="judge",
        family="llm",
        status=StepStatus.SKIPPED,
        skip_kind=kind,
        reason=reason,
        line=spec.line,
        source=path,
    )
    return JudgeOutcome(result=result, block=None)


def run_judge(
    spec: MissionJudge,
    records: Sequence[RepeatRecord],
    *,
    session: LLMSession,
    stem: str,
    path: str,
) -> JudgeOutcome:
    """Score the repeats; never raises for a judge that misbehaves: the outcome says what went wrong."""
    from pytest_rustchain.llm.cassette import CassetteError, CassetteMiss, NoLiveProvider, Normaliser
    from pytest_rustchain.llm.config import ConfigError
    from pytest_rustchain.llm.providers import ChatRequest, ProviderError

    started = time.monotonic()
    n = len(records)
    if spec.method == "ruler" and n < 2:
        return _skipped(
            spec,
            path,
            f"the ruler judge ranks the repeats against each other and this run has {n} repeat\n"
            "  HINT: run the mission several times (config.repeat, --mission-repeat), or use method: rubric",
            SkipKind.CONDITION,
        )
    made = [candidate(r, steps=spec.steps) for r in records]
    texts = [text for text, _ in made]
    facts = [f for _, f in made]
    role = spec.role or (None if spec.provider else "judge")
    try:
        target = session.settings.resolve(provider=spec.provider, model=spec.model, role=role)
    except ConfigError as exc:
        if spec.provider is None and not session.settings.roles:
            target = None  # nothing configured: a recording may still answer
        else:
            return _failed(spec, path, str(exc), {}, started)
    model = target.model if target is not None else str(spec.model or role or "judge")
    seed = spec.seed if spec.seed is not None else default_seed(stem)
    before = len(session.calls)
    sources: list[str] = []
    # The candidates carry no run-specific path: the request is keyed as written.
    session.recorder.normaliser = Normaliser.of({})

    class _Stop(Exception):
        def __init__(self, outcome: JudgeOutcome) -> None:
            self.outcome = outcome

    def ask(messages: list[dict[str, str]], purpose: str) -> str:
        request = ChatRequest(
            model=model,
            messages=tuple(messages),
            response_format={"type": "json"},
            params={"temperature": spec.temperature},
        )
        try:
            reply = session.chat(
                request,
                target=target,
                step=JUDGE_STEP_ID,
                repeat=0,
                no_live_reason="no judge model is configured (mission_llm_roles: judge = provider:model)",
            )
        except NoLiveProvider as exc:
            raise _Stop(_skipped(spec, path, str(exc))) from None
        except (CassetteMiss, CassetteError, ProviderError) as exc:
            raise _Stop(_failed(spec, path, str(exc), {"order_seed": seed, "model": model}, started)) from None
        sources.append(reply.source)
        return reply.response.content

    try:
        judged = scoring.judge(
            texts,
            ask=ask,
            method=spec.method,
            rubric=spec.rubric,
            task=spec.task,
            facts=facts,
            seed=seed,
            swap_check=spec.swap_check,
        )
    except _Stop as stop:
        return _with_calls(stop.outcome, session, before)
    except scoring.JudgeError as exc:
        outputs = {"order_seed": seed, "model": model, "raw_answer": exc.raw}
        return _with_calls(_failed(spec, path, exc.message, outputs, started), session, before)
    calls = [c.to_dict() for c in session.calls[before:]]
    source = "+".join(sorted(set(sources))) if sources else ""
    block: dict[str, Any] = {
        "method": spec.method,
        "model": model,
        "source": source,
        "scores": list(judged.scores),
        "explanations": list(judged.explanations),
        "best_index": judged.best_index,
        "mean_score": judged.mean,
        "order_seed": seed,
        "shown_order": list(judged.shown_order),
        "calls": judged.calls,
        "steps": list(spec.steps),
        "status": "passed",
    }
    if judged.order_sensitivity is not None:
        block["order_sensitivity"] = judged.order_sensitivity
        block["swapped_scores"] = list(judged.swapped_scores or ())
    if model in models_under_test(records):
        block["warning"] = f"the judge model {model} is also a model under test in this mission"
    outputs = {**block, "usage": _usage(calls)}
    status, reason = StepStatus.PASSED, ""
    if spec.min_mean_score is not None and judged.mean < spec.min_mean_score:
        status = StepStatus.FAILED
        reason = (
            f"judge.min_mean_score: the mean score over {n} repeats is {judged.mean:.3f}, below "
            f"{spec.min_mean_score:g}\n  scores: {' '.join(f'{s:.2f}' for s in judged.scores)}"
        )
        block["status"] = "failed"
    result = StepResult(
        step_id=JUDGE_STEP_ID,
        step_type="judge",
        family="llm",
        status=status,
        reason=reason,
        phase="expect" if reason else "",
        duration=time.monotonic() - started,
        outputs=outputs,
        line=spec.line,
        source=path,
        attempts=judged.calls,
    )
    return JudgeOutcome(result=result, block=block, calls=tuple(calls))


def _usage(calls: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    return {
        "input_tokens": sum(int(c.get("input_tokens") or 0) for c in calls),
        "output_tokens": sum(int(c.get("output_tokens") or 0) for c in calls),
    }


def _failed(spec: MissionJudge, path: str, message: str, outputs: Mapping[str, Any], started: float) -> JudgeOutcome:
    result = StepResult(
        step_id=JUDGE_STEP_ID,
        step_type="judge",
        family="llm",
        status=StepStatus.FAILED,
        reason=f"the judge of the repeats failed: {message}",
        phase="run",
        duration=time.monotonic() - started,
        outputs=dict(outputs),
        line=spec.line,
        source=path,
    )
    return JudgeOutcome(result=result, block=None)


def _with_calls(outcome: JudgeOutcome, session: LLMSession, before: int) -> JudgeOutcome:
    calls = tuple(c.to_dict() for c in session.calls[before:])
    return JudgeOutcome(result=outcome.result, block=outcome.block, calls=calls)
