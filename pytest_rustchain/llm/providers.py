"""Chat providers: OpenAI-compatible chat completions and Anthropic Messages, over the bounded transport.

One neutral shape for both wire APIs:

- :class:`ChatRequest` (model, messages, tools, tool choice, response format, sampling parameters).
  Messages are plain mappings ``{"role": "system"|"user"|"assistant"|"tool", "content": str}``; an
  assistant turn that called tools carries ``"tool_calls": [{"id", "name", "arguments": {...}}]`` and a
  tool result is ``{"role": "tool", "tool_call_id": ..., "content": str}``. Tools are
  ``{"name", "description", "parameters": <JSON Schema>}``.
- :class:`ChatResponse` (content, tool calls, finish reason, usage, model, latency). Finish reasons
  use OpenAI's names on both APIs: ``stop``, ``length``, ``tool_calls``, ``content_filter``.

:func:`chat` makes one live call, with retries on 408/409/429/5xx/529 honouring ``Retry-After``, all
inside the provider's deadline. Structured output: OpenAI gets ``response_format`` (``json_object`` or
``json_schema``); Anthropic, which has no such field, gets a forced tool whose input schema is the
response schema, and the tool's input becomes the answer's content. Either way the caller validates
the answer locally too. Errors (:class:`ProviderError`) name the alias, model, HTTP status and the
provider's own message. The agent loop builds on the same call: send the history with ``tools``, read
``tool_calls``, append the results as ``tool`` messages, call again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pytest_rustchain.errors import MissionError
from pytest_rustchain.llm.config import Target
from pytest_rustchain.llm.transport import RETRY_STATUSES, HostPolicy, RetryPolicy, TransportError, send

__all__ = [
    "ChatRequest",
    "ChatResponse",
    "ProviderError",
    "ToolCall",
    "Usage",
    "anthropic_body",
    "chat",
    "openai_body",
]

ANTHROPIC_VERSION: Final = "2023-06-01"
_STRUCTURED_TOOL: Final = "respond"
_DEFAULT_ANTHROPIC_MAX_TOKENS: Final = 1024
_SAMPLING: Final = ("temperature", "top_p", "max_tokens", "seed", "stop")


class ProviderError(MissionError):
    """A provider call failed after its retries; the message names alias, model, status and reason."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        self.message = message
        self.status = status
        self.retryable = retryable
        super().__init__(message)


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    id: str
    name: str
    arguments: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": dict(self.arguments)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRequest:
    """One call, independent of the wire API; ``to_record`` is what a cassette keys and stores."""

    model: str
    messages: tuple[Mapping[str, Any], ...]
    tools: tuple[Mapping[str, Any], ...] = ()
    tool_choice: str | None = None
    """``auto``, ``required``, ``none`` or a tool name."""
    response_format: Mapping[str, Any] | None = None
    """None (text), ``{"type": "json"}`` or ``{"type": "json_schema", "schema": {...}}``."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Sampling parameters: temperature, top_p, max_tokens, seed, stop (only those set)."""

    def to_record(self, api: str) -> dict[str, Any]:
        record: dict[str, Any] = {"api": api, "model": self.model, "messages": [dict(m) for m in self.messages]}
        if self.tools:
            record["tools"] = [dict(t) for t in self.tools]
        if self.tool_choice is not None:
            record["tool_choice"] = self.tool_choice
        if self.response_format is not None:
            record["response_format"] = dict(self.response_format)
        params = {k: self.params[k] for k in _SAMPLING if self.params.get(k) is not None}
        if params:
            record["parameters"] = params
        return record


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatResponse:
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    latency_ms: int = 0

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "content": self.content,
            "finish_reason": self.finish_reason,
            "usage": self.usage.to_dict(),
            "model": self.model,
            "latency_ms": self.latency_ms,
        }
        if self.tool_calls:
            record["tool_calls"] = [t.to_dict() for t in self.tool_calls]
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ChatResponse:
        usage = record.get("usage") or {}
        return cls(
            content=str(record.get("content") or ""),
            tool_calls=tuple(
                ToolCall(id=str(t.get("id", "")), name=str(t["name"]), arguments=dict(t.get("arguments") or {}))
                for t in record.get("tool_calls") or ()
            ),
            finish_reason=str(record.get("finish_reason") or "stop"),
            usage=Usage(
                input_tokens=int(usage.get("input_tokens") or 0), output_tokens=int(usage.get("output_tokens") or 0)
            ),
            model=str(record.get("model") or ""),
            latency_ms=int(record.get("latency_ms") or 0),
        )


# ---------------------------------------------------------------------------------------------
# OpenAI chat completions


def openai_body(request: ChatRequest, *, max_tokens_field: str | None = None) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for m in request.messages:
        role = m["role"]
        if role == "assistant" and m.get("tool_calls"):
            messages.append(
                {
                    "role": "assistant",
                    "content": m.get("content") or None,
                    "tool_calls": [
                        {
                            "id": t["id"],
                            "type": "function",
                            "function": {"name": t["name"], "arguments": json.dumps(t["arguments"])},
                        }
                        for t in m["tool_calls"]
                    ],
                }
            )
        elif role == "tool":
            messages.append({"role": "tool", "tool_call_id": m["tool_call_id"], "content": m["content"]})
        else:
            messages.append({"role": role, "content": m["content"]})
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    p = request.params
    for key in ("temperature", "top_p", "seed", "stop"):
        if p.get(key) is not None:
            body[key] = p[key]
    if p.get("max_tokens") is not None:
        body[max_tokens_field or "max_tokens"] = p["max_tokens"]
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    "description": t.get("description", ""),
                    "parameters": t.get("parameters") or {"type": "object"},
                },
            }
            for t in request.tools
        ]
    if request.tool_choice is not None:
        if request.tool_choice in ("auto", "required", "none"):
            body["tool_choice"] = request.tool_choice
        else:
            body["tool_choice"] = {"type": "function", "function": {"name": request.tool_choice}}
    fmt = request.response_format
    if fmt is not None:
        if fmt.get("type") == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": fmt.get("name", "answer"), "schema": fmt["schema"], "strict": False},
            }
        elif fmt.get("type") == "json":
            body["response_format"] = {"type": "json_object"}
    return body


def _openai_parse(data: Any) -> ChatResponse:
    choice = data["choices"][0]
    message = choice.get("message") or {}
    calls = []
    for t in message.get("tool_calls") or ():
        fn = t.get("function") or {}
        raw = fn.get("arguments") or "{}"
        try:
            args = json.loads(raw) if isinstance(raw, str) else dict(raw)
        except json.JSONDecodeError:
            args = {"_unparsed": raw}
        calls.append(ToolCall(id=str(t.get("id", "")), name=str(fn.get("name", "")), arguments=args))
    usage = data.get("usage") or {}
    return ChatResponse(
        content=message.get("content") or "",
        tool_calls=tuple(calls),
        finish_reason=str(choice.get("finish_reason") or "stop"),
        usage=Usage(
            input_tokens=int(usage.get("prompt_tokens") or 0), output_tokens=int(usage.get("completion_tokens") or 0)
        ),
        model=str(data.get("model") or ""),
    )


# ---------------------------------------------------------------------------------------------
# Anthropic Messages

_ANTHROPIC_FINISH: Final = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def anthropic_body(request: ChatRequest) -> dict[str, Any]:
    system = [m["content"] for m in request.messages if m["role"] == "system"]
    messages: list[dict[str, Any]] = []
    for m in request.messages:
        role = m["role"]
        if role == "system":
            continue
        if role == "assistant" and m.get("tool_calls"):
            blocks: list[dict[str, Any]] = []
            if m.get("content"):
                blocks.append({"type": "text", "text": m["content"]})
            blocks += [
                {"type": "tool_use", "id": t["id"], "name": t["name"], "input": dict(t["arguments"])}
                for t in m["tool_calls"]
            ]
            messages.append({"role": "assistant", "content": blocks})
        elif role == "tool":
            block = {"type": "tool_result", "tool_use_id": m["tool_call_id"], "content": m["content"]}
            if messages and messages[-1]["role"] == "user" and isinstance(messages[-1]["content"], list):
                messages[-1]["content"].append(block)  # consecutive results share one user turn
            else:
                messages.append({"role": "user", "content": [block]})
        else:
            messages.append({"role": role, "content": m["content"]})
    p = request.params
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": p.get("max_tokens") or _DEFAULT_ANTHROPIC_MAX_TOKENS,
        "messages": messages,
    }
    if system:
        body["system"] = "\n\n".join(system)
    for key in ("temperature", "top_p"):
        if p.get(key) is not None:
            body[key] = p[key]
    if p.get("stop") is not None:
        stop = p["stop"]
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    tools = [
        {
            "name": t["name"],
            "description": t.get("description", ""),
            "input_schema": t.get("parameters") or {"type": "object"},
        }
        for t in request.tools
    ]
    fmt = request.response_format
    if fmt is not None and fmt.get("type") == "json_schema":
        tools.append(
            {"name": _STRUCTURED_TOOL, "description": "Give the answer in this shape.", "input_schema": fmt["schema"]}
        )
        body["tool_choice"] = {"type": "tool", "name": _STRUCTURED_TOOL}
    elif request.tool_choice is not None:
        choice = request.tool_choice
        body["tool_choice"] = (
            {"type": "auto"}
            if choice == "auto"
            else {"type": "any"}
            if choice == "required"
            else {"type": "none"}
            if choice == "none"
            else {"type": "tool", "name": choice}
        )
    if tools:
        body["tools"] = tools
    return body


def _anthropic_parse(data: Any, *, structured: bool) -> ChatResponse:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in data.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            if structured and block.get("name") == _STRUCTURED_TOOL:
                texts.append(json.dumps(block.get("input") or {}, ensure_ascii=False))
            else:
                calls.append(
                    ToolCall(
                        id=str(block.get("id", "")), name=str(block.get("name", "")), arguments=block.get("input") or {}
                    )
                )
    stop = str(data.get("stop_reason") or "end_turn")
    finish = _ANTHROPIC_FINISH.get(stop, stop)
    if structured and finish == "tool_calls" and not calls:
        finish = "stop"
    usage = data.get("usage") or {}
    return ChatResponse(
        content="".join(texts),
        tool_calls=tuple(calls),
        finish_reason=finish,
        usage=Usage(
            input_tokens=int(usage.get("input_tokens") or 0), output_tokens=int(usage.get("output_tokens") or 0)
        ),
        model=str(data.get("model") or ""),
    )


# ---------------------------------------------------------------------------------------------
# The call


def _provider_message(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text[:300] or "(empty body)"
    if isinstance(data, Mapping):
        err = data.get("error")
        if isinstance(err, Mapping) and err.get("message"):
            return str(err["message"])[:300]
        if isinstance(err, str):
            return err[:300]
        if data.get("message"):
            return str(data["message"])[:300]
    return text[:300]


def _hint(status: int | None, target: Target) -> str:
    p = target.provider
    if status in (401, 403):
        return f"check the key in ${p.key_env}" if p.key_env else f"add key_env=VAR to the '{p.alias}' provider line"
    if status == 404:
        return f"check that model '{target.model}' exists at {p.base_url}"
    if status is None:
        return f"is the server at {p.base_url} running? (the '{p.alias}' line in mission_llm_providers)"
    return "try again later, or raise timeout= on the provider line"


def chat(
    target: Target,
    request: ChatRequest,
    *,
    policy: HostPolicy,
    environ: Mapping[str, str] | None = None,
    retry: RetryPolicy | None = None,
    timeout: float | None = None,
) -> ChatResponse:
    """Call ``target`` live once (with retries) and return its answer, or raise :class:`ProviderError`.

    The call ends within the provider's ``timeout`` (or ``timeout`` here, when shorter: the time left
    to the calling step), retries included."""
    p = target.provider
    who = f"provider '{p.alias}' ({p.api}, model {target.model})"
    key = p.key(environ)
    if p.key_env and key is None:
        raise ProviderError(
            f"{who}: ${p.key_env} is not set\nHINT: export {p.key_env}=... (it is read at run time and masked)"
        )
    headers = {"content-type": "application/json", "accept": "application/json"}
    structured = False
    if p.api == "anthropic":
        url = p.base_url + "/v1/messages"
        body = anthropic_body(request)
        structured = request.response_format is not None and request.response_format.get("type") == "json_schema"
        headers["anthropic-version"] = ANTHROPIC_VERSION
        if key:
            headers["x-api-key"] = key
    else:
        url = p.base_url + "/chat/completions"
        body = openai_body(request, max_tokens_field=p.max_tokens_field)
        if key:
            headers["authorization"] = f"Bearer {key}"
    try:
        exchange = send(
            "POST",
            url,
            headers=headers,
            content=json.dumps(body).encode(),
            timeout=p.timeout if timeout is None else max(0.001, min(p.timeout, timeout)),
            max_bytes=8 * 1024 * 1024,
            policy=policy,
            retry=retry or RetryPolicy(statuses=RETRY_STATUSES),
        )
    except TransportError as exc:
        raise ProviderError(f"{who}: {exc.message}\nHINT: {_hint(None, target)}", status=exc.status) from None
    if not 200 <= exchange.status < 300:
        tries = f" after {exchange.attempts} attempts" if exchange.attempts > 1 else ""
        raise ProviderError(
            f"{who} answered HTTP {exchange.status}{tries}: {_provider_message(exchange.body)}\n"
            f"HINT: {_hint(exchange.status, target)}",
            status=exchange.status,
            retryable=exchange.status in RETRY_STATUSES,
        )
    try:
        data = json.loads(exchange.body)
        parsed = _anthropic_parse(data, structured=structured) if p.api == "anthropic" else _openai_parse(data)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError, AttributeError) as exc:
        head = exchange.body[:200].decode("utf-8", errors="replace")
        raise ProviderError(
            f"{who} answered HTTP {exchange.status} with a body that is not a {p.api} chat answer "
            f"({type(exc).__name__}: {exc}): {head!r}\nHINT: check that '{p.alias}' speaks the {p.api} API",
            status=exchange.status,
        ) from None
    return ChatResponse(
        content=parsed.content,
        tool_calls=parsed.tool_calls,
        finish_reason=parsed.finish_reason,
        usage=parsed.usage,
        model=parsed.model or target.model,
        latency_ms=exchange.latency_ms,
    )


def messages_for(
    prompt: str, system: str | None = None, history: Sequence[Mapping[str, Any]] = ()
) -> tuple[Mapping[str, Any], ...]:
    """The message list of a plain prompt: optional system, an earlier history, then the user turn."""
    out: list[Mapping[str, Any]] = []
    if system and not any(m["role"] == "system" for m in history):
        out.append({"role": "system", "content": system})
    out.extend(history)
    out.append({"role": "user", "content": prompt})
    return tuple(out)
