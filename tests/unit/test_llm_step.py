"""The llm and http step types against a real OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from stepkit import make_ctx

from pytest_rustchain.errors import StepError, StepSkipped
from pytest_rustchain.llm.cassette import Recorder
from pytest_rustchain.llm.config import parse_settings
from pytest_rustchain.llm.runtime import RUNTIME_KEY, LLMRuntime
from pytest_rustchain.llm.session import LLMSession
from pytest_rustchain.llm.transport import HostPolicy
from pytest_rustchain.masking import Masker
from pytest_rustchain.steps.base import StepContext, registry
from pytest_rustchain.steps.llm import extract_code_block, llm_expectations

SECRET = "s3cr3t-value-42"


def answer(content: str, *, out: int = 3) -> dict[str, Any]:
    return {
        "model": "m1",
        "choices": [{"message": {"content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": out},
    }


def make_runtime(server: HTTPServer | None, tmp_path: Path, mode: str = "once") -> LLMRuntime:
    providers = [f"local = openai {server.url_for('/v1').rstrip('/')}"] if server else []
    roles = ["default = local:m1"] if server else []
    settings = parse_settings(providers, roles, ["m1 1.0 2.0"])
    masker = Masker(secrets=(SECRET,))
    recorder = Recorder(path=tmp_path / "m.cassette.yaml", mode=mode, masker=masker)
    session = LLMSession(settings=settings, recorder=recorder, policy=HostPolicy())

    def run_step(step_type: str, params: Mapping[str, Any], /, *, level: str | None = None) -> Mapping[str, Any]:
        return registry()[step_type].run(params, ctx_for(tmp_path, None))

    return LLMRuntime(session=session, run_step=run_step, masker=masker)


def ctx_for(tmp_path: Path, runtime: LLMRuntime | None) -> StepContext:
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    base = make_ctx(ws.resolve())
    extras = {RUNTIME_KEY: runtime, "python": sys.executable} if runtime else {"python": sys.executable}
    return StepContext(
        step_id="gen", workspace=base.workspace, cwd=base.cwd, env={"PATH": "/usr/bin:/bin"}, timeout=30,
        mission_path=base.mission_path, rootdir=base.rootdir, extras=extras,
    )  # fmt: skip


def run_llm(runtime: LLMRuntime, tmp_path: Path, **params: Any) -> dict[str, Any]:
    return dict(registry()["llm"].run(params, ctx_for(tmp_path, runtime)))


def test_validate_and_retry_feeds_the_masked_error_back(httpserver: HTTPServer, tmp_path: Path) -> None:
    """A generated module that does not compile is retried with the compiler's error; the secret stays masked."""
    bad = "```python\ndef add(a, b)  # " + SECRET + "\n    return a + b\n```"
    good = "```python\ndef add(a, b):\n    return a + b\n```"
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(answer(bad))
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(answer(good))
    runtime = make_runtime(httpserver, tmp_path)
    out = run_llm(
        runtime, tmp_path, prompt="Write add()", extract={"code_block": "python"}, output_file="calc.py",
        validate={"command": {"command": sys.executable, "args": ["-m", "py_compile", "calc.py"]}}, max_attempts=2,
    )  # fmt: skip
    assert out["attempts"] == 2 and out["first_try_passed"] is False
    assert (tmp_path / "ws" / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    second = json.loads(httpserver.log[1][0].get_data())
    feedback = second["messages"][-1]["content"]
    assert "SyntaxError" in feedback and "attempt 1" in feedback
    assert SECRET not in feedback and "***" in feedback
    assert second["messages"][-2] == {"role": "assistant", "content": bad}
    assert out["usage"] == {"input_tokens": 20, "output_tokens": 6}
    assert out["cost_usd"] == pytest.approx((20 * 1.0 + 6 * 2.0) / 1e6)
    assert out["source"] == "live"


def test_validation_still_failing_after_max_attempts_fails(httpserver: HTTPServer, tmp_path: Path) -> None:
    """An answer that never passes its regex fails the step, naming the attempts and the last error."""
    httpserver.expect_request("/v1/chat/completions").respond_with_json(answer("maybe"))
    with pytest.raises(StepError, match=r"failed validation after 3 attempts: the answer does not match") as info:
        run_llm(
            make_runtime(httpserver, tmp_path), tmp_path, prompt="yes?", validate={"regex": "^yes$"}, max_attempts=3
        )
    assert info.value.outputs["attempts"] == 3


def test_json_schema_answer_becomes_outputs(httpserver: HTTPServer, tmp_path: Path) -> None:
    """A JSON Schema answer is validated locally and its top-level keys become outputs."""
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    httpserver.expect_request("/v1/chat/completions").respond_with_json(answer('{"n": 4}'))
    out = run_llm(make_runtime(httpserver, tmp_path), tmp_path, prompt="2+2", response_format={"json_schema": schema})
    assert out["json"] == {"n": 4} and out["n"] == 4
    body = json.loads(httpserver.log[0][0].get_data())
    assert body["response_format"]["type"] == "json_schema"


def test_schema_violation_fails(httpserver: HTTPServer, tmp_path: Path) -> None:
    """An answer that breaks the schema fails even though the server was asked to enforce it."""
    schema = {"type": "object", "required": ["n"]}
    httpserver.expect_request("/v1/chat/completions").respond_with_json(answer('{"m": 1}'))
    with pytest.raises(StepError, match=r"does not match its JSON Schema at \$: 'n' is a required property"):
        run_llm(make_runtime(httpserver, tmp_path), tmp_path, prompt="x", response_format={"json_schema": schema})


def test_conversation_shares_history(httpserver: HTTPServer, tmp_path: Path) -> None:
    """Two steps naming one conversation send the first exchange along with the second prompt."""
    httpserver.expect_request("/v1/chat/completions").respond_with_json(answer("first"))
    runtime = make_runtime(httpserver, tmp_path)
    run_llm(runtime, tmp_path, prompt="one", conversation="c")
    run_llm(runtime, tmp_path, prompt="two", conversation="c")
    body = json.loads(httpserver.log[1][0].get_data())
    assert [m["content"] for m in body["messages"]] == ["one", "first", "two"]


def test_samples_ask_n_times(httpserver: HTTPServer, tmp_path: Path) -> None:
    """samples: 3 makes three calls and returns three answers."""
    for text in ("a", "b", "c"):
        httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(answer(text))
    out = run_llm(make_runtime(httpserver, tmp_path), tmp_path, prompt="x", samples=3)
    assert out["samples"] == ["a", "b", "c"]


def test_no_provider_and_no_recording_is_a_skip(tmp_path: Path) -> None:
    """Without any provider configured and without a cassette the step is skipped with the reason."""
    with pytest.raises(StepSkipped, match="no LLM provider is configured"):
        run_llm(make_runtime(None, tmp_path), tmp_path, prompt="hi")


def test_empty_answer_fails(httpserver: HTTPServer, tmp_path: Path) -> None:
    """An empty answer is a failure, not a pass."""
    httpserver.expect_request("/v1/chat/completions").respond_with_json(answer(""))
    with pytest.raises(StepError, match="the answer was empty"):
        run_llm(make_runtime(httpserver, tmp_path), tmp_path, prompt="hi")


def test_extract_code_block_by_language() -> None:
    """The first fenced block tagged with the language is taken; without a language, the first block."""
    text = "intro\n```text\nnot code\n```\n```python\nx = 1\n```\n"
    assert extract_code_block(text, "python") == "x = 1\n"
    assert extract_code_block(text) == "not code\n"
    assert extract_code_block("no fence") is None


def test_llm_expect_keys() -> None:
    """contains, matches, first_try and an unknown price are each reported."""
    outputs = {"content": "DONE 4", "first_try_passed": False, "attempts": 2, "cost_usd": None, "model": "m"}
    problems = llm_expectations({"contains": "4", "matches": "^DONE", "first_try": True, "max_cost_usd": 0.1}, outputs)
    assert len(problems) == 2
    assert "mission_llm_prices" in problems[0]
    assert "passed only on attempt 2" in problems[1]


def run_http(runtime: LLMRuntime, tmp_path: Path, **params: Any) -> dict[str, Any]:
    return dict(registry()["http"].run(params, ctx_for(tmp_path, runtime)))


def test_http_step_posts_json_and_checks_status(httpserver: HTTPServer, tmp_path: Path) -> None:
    """The http step sends its JSON body, parses a JSON answer and accepts a listed status."""
    httpserver.expect_request("/items", method="POST", json={"a": 1}).respond_with_json({"id": 7}, status=201)
    out = run_http(make_runtime(None, tmp_path), tmp_path, url=httpserver.url_for("/items"), method="POST",
                   json={"a": 1}, expected_status=[200, 201])  # fmt: skip
    assert (out["status"], out["json"], out["source"]) == (201, {"id": 7}, "live")


def test_http_unexpected_status_fails_with_the_body(httpserver: HTTPServer, tmp_path: Path) -> None:
    """A status outside expected_status fails the step and shows the start of the body."""
    httpserver.expect_request("/missing").respond_with_data("no such thing", status=404)
    with pytest.raises(StepError, match=r"answered HTTP 404, expected any 2xx\nno such thing"):
        run_http(make_runtime(None, tmp_path), tmp_path, url=httpserver.url_for("/missing"))


def test_http_blocked_host_never_connects(tmp_path: Path) -> None:
    """A metadata address is blocked with its rule id before any connection."""
    with pytest.raises(StepError, match="BLOCKED RC-NET-005"):
        run_http(make_runtime(None, tmp_path), tmp_path, url="http://169.254.169.254/latest/meta-data")


def test_http_record_then_replay_offline(httpserver: HTTPServer, tmp_path: Path) -> None:
    """record: true stores the exchange (without the Authorization header); none mode replays it."""
    httpserver.expect_request("/v").respond_with_json({"v": 1})
    url = httpserver.url_for("/v")
    first = make_runtime(None, tmp_path)
    out = run_http(first, tmp_path, url=url, record=True, headers={"Authorization": "Bearer abc"})
    assert out["source"] == "live"
    first.session.recorder.save()
    text = (tmp_path / "m.cassette.yaml").read_text()
    assert "Bearer" not in text
    replay = make_runtime(None, tmp_path, mode="none")
    out = run_http(replay, tmp_path, url=url, headers={"Authorization": "Bearer abc"})
    assert (out["source"], out["json"]) == ("recorded", {"v": 1})


def test_builtin_csv_loader_tool(tmp_path: Path) -> None:
    """RustChain's csv_loader tool reads a workspace CSV through read_file, headers as keys."""
    runtime = make_runtime(None, tmp_path)
    ctx = ctx_for(tmp_path, runtime)
    (ctx.workspace / "sales.csv").write_text("region,total\nnorth,10\nsouth,20\n")
    out = registry()["tool"].run({"tool": "csv_loader", "parameters": {"file_path": "sales.csv"}}, ctx)
    assert out["count"] == 2 and out["rows"][1] == {"region": "south", "total": "20"}


def test_internal_tools_explain_why() -> None:
    """A RustChain-internal tool is refused with the reason it cannot work here."""
    from pytest_rustchain.steps.tool import unknown_tool_hint

    assert "RustChain-internal" in unknown_tool_hint("wait_for_parallel")
