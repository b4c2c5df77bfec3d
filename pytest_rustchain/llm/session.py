"""One mission item's model access: resolve, replay or call, and count calls, tokens, cost and sources.

:class:`LLMSession` is what step types (and later the agent loop and judges) hold. ``chat()`` takes a
neutral :class:`~pytest_rustchain.llm.providers.ChatRequest` and a target, asks the recorder first
(replay), calls the provider live only when the record mode allows and a provider exists, and returns
a :class:`Reply` with the answer, its source and its cost. Every call is appended to ``calls`` so the
item can report an ``llm:`` line (calls by source, tokens, cost).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_rustchain.llm.cassette import Recorder
from pytest_rustchain.llm.config import LLMSettings, Target
from pytest_rustchain.llm.providers import ChatRequest, ChatResponse, chat
from pytest_rustchain.llm.transport import HostPolicy

__all__ = ["CallRecord", "LLMSession", "Reply", "summarise_calls"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecord:
    step: str
    kind: str
    source: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    latency_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "kind": self.kind,
            "source": self.source,
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "latency_ms": self.latency_ms,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    response: ChatResponse
    source: str
    key: str
    cost_usd: float | None


@dataclass(slots=True, kw_only=True)
class LLMSession:
    settings: LLMSettings
    recorder: Recorder
    policy: HostPolicy
    environ: Mapping[str, str] | None = None
    calls: list[CallRecord] = field(default_factory=list)

    def chat(
        self,
        request: ChatRequest,
        *,
        target: Target | None,
        step: str,
        repeat: int = 0,
        seq: int | None = None,
        no_live_reason: str = "no LLM provider is configured",
        timeout: float | None = None,
    ) -> Reply:
        """Replay or call. Raises ``CassetteMiss``, ``NoLiveProvider`` (skip) or ``ProviderError``."""
        api = target.provider.api if target is not None else "openai"
        record = request.to_record(api)

        def live() -> Mapping[str, Any]:
            assert target is not None
            return chat(target, request, policy=self.policy, environ=self.environ, timeout=timeout).to_record()

        answer = self.recorder.call(
            kind="llm",
            request=record,
            step=step,
            repeat=repeat,
            seq=seq,
            live=live if target is not None else None,
            no_live_reason=no_live_reason,
        )
        response = ChatResponse.from_record(answer.response)
        price = self.settings.price(request.model)
        cost = price.cost(response.usage.input_tokens, response.usage.output_tokens) if price else None
        self.calls.append(
            CallRecord(
                step=step,
                kind="llm",
                source=answer.source,
                model=request.model,
                input_tokens=response.usage.input_tokens,
                output_tokens=response.usage.output_tokens,
                cost_usd=cost,
                latency_ms=response.latency_ms,
            )
        )
        return Reply(response=response, source=answer.source, key=answer.key, cost_usd=cost)

    def note_http(self, *, step: str, source: str, latency_ms: int) -> None:
        self.calls.append(CallRecord(step=step, kind="http", source=source, model="", latency_ms=latency_ms))


def summarise_calls(calls: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals of call records (as dicts, so they can come from xdist workers): the ``llm:`` line's numbers."""
    llm = [c for c in calls if c.get("kind") == "llm"]
    by_source = {s: sum(1 for c in llm if c.get("source") == s) for s in ("recorded", "scripted", "live")}
    costs = [c.get("cost_usd") for c in llm]
    return {
        "calls": len(llm),
        "by_source": by_source,
        "input_tokens": sum(int(c.get("input_tokens") or 0) for c in llm),
        "output_tokens": sum(int(c.get("output_tokens") or 0) for c in llm),
        "cost_usd": round(sum(c for c in costs if c is not None), 6),
        "unpriced_calls": sum(1 for c in costs if c is None and True),
    }
