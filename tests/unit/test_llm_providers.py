"""LLM providers and the bounded transport against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pytest_rustchain.llm.config import ConfigError, Provider, Target, parse_settings
from pytest_rustchain.llm.providers import ChatRequest, ProviderError, chat
from pytest_rustchain.llm.transport import HostBlockedError, HostPolicy, RetryPolicy, TransportError, send

LOOPBACK = HostPolicy()
TOOL = {"name": "add", "description": "Add two numbers", "parameters": {"type": "object", "properties": {"a": {}}}}


def target(server: HTTPServer, api: str = "openai", *, timeout: float = 10.0, key_env: str | None = None) -> Target:
    base = server.url_for("/v1").rstrip("/") if api == "openai" else server.url_for("").rstrip("/")
    provider = Provider(alias="local", api=api, base_url=base, timeout=timeout, key_env=key_env)
    return Target(provider=provider, model="m1")


def openai_answer(content: str = "4", **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, **extra}
    return {
        "model": "m1",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 2},
    }


def simple(prompt: str = "What is 2+2?", **kwargs: Any) -> ChatRequest:
    return ChatRequest(model="m1", messages=({"role": "user", "content": prompt},), **kwargs)


def test_openai_request_json_is_exact_and_answer_parsed(httpserver: HTTPServer) -> None:
    """An OpenAI-compatible server receives exactly the documented chat completions body, key as bearer."""
    expected = {
        "model": "m1",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}],
        "temperature": 0.1,
        "max_tokens": 50,
        "tools": [{"type": "function", "function": TOOL}],
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
    }
    httpserver.expect_request(
        "/v1/chat/completions", method="POST", json=expected, headers={"authorization": "Bearer key-123456"}
    ).respond_with_json(openai_answer("{}"))
    request = ChatRequest(
        model="m1",
        messages=({"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}),
        tools=(TOOL,),
        tool_choice="auto",
        response_format={"type": "json"},
        params={"temperature": 0.1, "max_tokens": 50},
    )
    answer = chat(target(httpserver, key_env="K"), request, policy=LOOPBACK, environ={"K": "key-123456"})
    assert answer.content == "{}"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (11, 2)
    assert answer.finish_reason == "stop"


def test_openai_tool_calls_are_parsed(httpserver: HTTPServer) -> None:
    """Tool calls in an OpenAI answer come back with their decoded arguments."""
    call = {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}}
    body = openai_answer("", tool_calls=[call])
    body["choices"][0]["finish_reason"] = "tool_calls"
    httpserver.expect_request("/v1/chat/completions").respond_with_json(body)
    answer = chat(target(httpserver), simple(tools=(TOOL,)), policy=LOOPBACK)
    assert answer.finish_reason == "tool_calls"
    assert [(t.name, dict(t.arguments)) for t in answer.tool_calls] == [("add", {"a": 1})]


def test_anthropic_request_json_is_exact_with_structured_output(httpserver: HTTPServer) -> None:
    """Anthropic gets the Messages body (system apart, forced tool for a schema) and the tool input is the answer."""
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    expected = {
        "model": "m1",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "What is 2+2?"}],
        "system": "Be brief.",
        "temperature": 0.0,
        "tools": [{"name": "respond", "description": "Give the answer in this shape.", "input_schema": schema}],
        "tool_choice": {"type": "tool", "name": "respond"},
    }
    httpserver.expect_request(
        "/v1/messages",
        method="POST",
        json=expected,
        headers={"x-api-key": "ant-secret-1", "anthropic-version": "2023-06-01"},
    ).respond_with_json(
        {
            "model": "m1",
            "content": [{"type": "tool_use", "id": "t1", "name": "respond", "input": {"n": 4}}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 20, "output_tokens": 5},
        }
    )
    request = ChatRequest(
        model="m1",
        messages=({"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}),
        response_format={"type": "json_schema", "schema": schema},
        params={"temperature": 0.0},
    )
    answer = chat(target(httpserver, "anthropic", key_env="A"), request, policy=LOOPBACK, environ={"A": "ant-secret-1"})
    assert json.loads(answer.content) == {"n": 4}
    assert answer.finish_reason == "stop"
    assert answer.usage.output_tokens == 5


def test_anthropic_tool_round_trip(httpserver: HTTPServer) -> None:
    """A tool call and its result travel as tool_use / tool_result blocks, and a tool_use answer is parsed."""
    history = (
        {"role": "user", "content": "add"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "t1", "name": "add", "arguments": {"a": 1}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "2"},
    )
    expected_messages = [
        {"role": "user", "content": "add"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "add", "input": {"a": 1}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "2"}]},
    ]
    httpserver.expect_request("/v1/messages", json={
        "model": "m1", "max_tokens": 1024, "messages": expected_messages,
        "tools": [{"name": "add", "description": "Add two numbers", "input_schema": TOOL["parameters"]}],
    }).respond_with_json(
        {"content": [{"type": "tool_use", "id": "t2", "name": "add", "input": {"a": 2}}], "stop_reason": "tool_use"}
    )  # fmt: skip
    answer = chat(
        target(httpserver, "anthropic"), ChatRequest(model="m1", messages=history, tools=(TOOL,)), policy=LOOPBACK
    )
    assert answer.finish_reason == "tool_calls"
    assert answer.tool_calls[0].arguments == {"a": 2}


def test_429_with_retry_after_then_200(httpserver: HTTPServer) -> None:
    """A rate-limited call waits as Retry-After says and succeeds on the next attempt."""
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(
        {"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "0"}
    )
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(openai_answer("ok"))
    assert chat(target(httpserver), simple(), policy=LOOPBACK).content == "ok"
    assert len(httpserver.log) == 2


def test_persistent_5xx_names_alias_model_status_and_message(httpserver: HTTPServer) -> None:
    """A server error that outlasts the retries is an error naming alias, model, status and its message."""
    httpserver.expect_request("/v1/chat/completions").respond_with_json(
        {"error": {"message": "model overloaded"}}, status=503, headers={"Retry-After": "0"}
    )
    with pytest.raises(ProviderError) as info:
        chat(target(httpserver), simple(), policy=LOOPBACK)
    message = str(info.value)
    assert "provider 'local'" in message and "model m1" in message
    assert "HTTP 503 after 3 attempts: model overloaded" in message
    assert "HINT:" in message


def test_truncated_json_is_a_clear_error(httpserver: HTTPServer) -> None:
    """A body cut in the middle of its JSON is reported as not a chat answer, with its start shown."""
    httpserver.expect_request("/v1/chat/completions").respond_with_data(
        '{"choices": [{"message": {"content": "hal', content_type="application/json"
    )
    with pytest.raises(ProviderError, match=r"not a openai chat answer .*JSONDecodeError"):
        chat(target(httpserver), simple(), policy=LOOPBACK)


def test_a_dripping_server_cannot_outlive_the_deadline(httpserver: HTTPServer) -> None:
    """A server sending one byte at a time is cut at the call's deadline, not after its last byte."""

    def drip(request: Request) -> Response:
        def body() -> Iterator[bytes]:
            for _ in range(120):
                yield b" "
                time.sleep(0.25)

        return Response(body(), status=200, content_type="application/json")

    httpserver.expect_request("/v1/chat/completions").respond_with_handler(drip)
    started = time.monotonic()
    with pytest.raises(ProviderError, match="within the 1 s deadline"):
        chat(target(httpserver, timeout=1.0), simple(), policy=LOOPBACK)
    assert time.monotonic() - started < 20  # the drip alone would take 30 s


def test_connection_refused_is_a_clear_error() -> None:
    """Nobody listening on the port: the error says so and hints at the provider line."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = Provider(alias="local", api="openai", base_url=f"http://127.0.0.1:{port}/v1", timeout=5)
    with pytest.raises(ProviderError) as info:
        chat(Target(provider=provider, model="m1"), simple(), policy=LOOPBACK)
    assert "cannot connect" in str(info.value)
    assert "HINT: is the server at" in str(info.value)


def test_redirects_are_not_followed(httpserver: HTTPServer) -> None:
    """A provider answering with a redirect is an error; the redirect target is never asked."""
    httpserver.expect_request("/v1/chat/completions").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/elsewhere")}
    )
    with pytest.raises(ProviderError, match="HTTP 302"):
        chat(target(httpserver), simple(), policy=LOOPBACK)
    assert [r.path for r, _ in httpserver.log] == ["/v1/chat/completions"]


def test_followed_redirects_are_checked_per_hop(httpserver: HTTPServer) -> None:
    """With redirects on, a hop to a metadata address is refused before connecting."""
    httpserver.expect_request("/go").respond_with_data(
        "", status=302, headers={"Location": "http://169.254.169.254/latest/meta-data"}
    )
    with pytest.raises(HostBlockedError, match="RC-NET-005"):
        send("GET", httpserver.url_for("/go"), policy=LOOPBACK, follow_redirects=True)


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://169.254.169.254/latest", "RC-NET-005"),
        ("http://metadata.google.internal/", "RC-NET-005"),
        ("http://[fe80::1]/", "RC-NET-005"),
        ("http://8.8.8.8/", "RC-NET-001"),
        ("http://10.1.2.3/", "RC-NET-007"),
        ("file:///etc/passwd", "RC-NET-006"),
    ],
)
def test_hosts_are_refused_before_connecting(url: str, rule: str) -> None:
    """Metadata, unlisted and non-http targets are refused with a rule id, before any connection."""
    with pytest.raises(HostBlockedError, match=rule):
        send("GET", url, policy=HostPolicy(), timeout=2)


def test_listed_hosts_pass_but_metadata_never() -> None:
    """mission_allow_hosts admits a host, but never a link-local address even when listed."""
    HostPolicy(allow_hosts=("192.0.2.0/24",)).check_name("192.0.2.7")
    with pytest.raises(HostBlockedError):
        HostPolicy(allow_hosts=("169.254.0.0/16",)).check_name("169.254.169.254")


def test_response_byte_cap(httpserver: HTTPServer) -> None:
    """An answer larger than the cap is cut and reported, not read whole."""
    httpserver.expect_request("/big").respond_with_data("x" * 5000)
    with pytest.raises(TransportError, match="larger than 1,000 bytes"):
        send("GET", httpserver.url_for("/big"), policy=LOOPBACK, max_bytes=1000)


def test_retry_policy_statuses(httpserver: HTTPServer) -> None:
    """Only the listed statuses are retried; the last response is returned with its attempt count."""
    httpserver.expect_request("/s").respond_with_data("busy", status=503, headers={"Retry-After": "0"})
    result = send("GET", httpserver.url_for("/s"), policy=LOOPBACK, retry=RetryPolicy(max_retries=2))
    assert (result.status, result.attempts) == (503, 3)
    result = send(
        "GET", httpserver.url_for("/s"), policy=LOOPBACK, retry=RetryPolicy(max_retries=2, statuses=frozenset())
    )
    assert result.attempts == 1


def test_missing_key_names_the_variable(httpserver: HTTPServer) -> None:
    """A provider with key_env whose variable is unset fails before sending, naming the variable."""
    with pytest.raises(ProviderError, match=r"\$MY_KEY is not set"):
        chat(target(httpserver, key_env="MY_KEY"), simple(), policy=LOOPBACK, environ={})
    assert not httpserver.log


def test_settings_parse_and_resolve() -> None:
    """ini lines become providers, roles and prices; built-in loopback aliases need no line."""
    settings = parse_settings(
        ["claude = anthropic https://api.anthropic.com key_env=ANTHROPIC_API_KEY timeout=30"],
        ["default = ollama:qwen2.5:7b", "judge = claude:claude-sonnet-4-5"],
        ["claude-sonnet-4-5 3.00 15.00"],
    )
    assert settings.resolve().label == "ollama:qwen2.5:7b"
    judge = settings.resolve(role="judge")
    assert (judge.provider.api, judge.provider.timeout, judge.model) == ("anthropic", 30.0, "claude-sonnet-4-5")
    assert settings.resolve(provider="shimmy", model="x").provider.base_url == "http://127.0.0.1:11435/v1"
    price = settings.price("claude-sonnet-4-5")
    assert price is not None and price.cost(1_000_000, 1_000_000) == 18.0
    assert settings.secret_values({"ANTHROPIC_API_KEY": "sk-ant-abcdef"}) == ["sk-ant-abcdef"]


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda s: s.resolve(provider="nope", model="m"), 'HINT: add "nope = openai'),
        (lambda s: s.resolve(role="critic"), 'HINT: add "critic = ALIAS:MODEL" to mission_llm_roles'),
        (lambda s: parse_settings(["x = grpc http://h"]), "API 'grpc' is not one of"),
        (lambda s: parse_settings(["x = openai http://h colour=red"]), "unknown option 'colour=red'"),
        (lambda s: parse_settings([], [], ["m one two"]), "write MODEL INPUT_USD OUTPUT_USD"),
    ],
)
def test_configuration_errors_have_hints(call: Any, fragment: str) -> None:
    """Unknown aliases and roles and malformed ini lines are errors that say which line to write."""
    with pytest.raises(ConfigError) as info:
        call(parse_settings())
    assert fragment in str(info.value)
