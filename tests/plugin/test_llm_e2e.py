"""llm, http and chain steps through pytest: live calls to a local server, record, replay, reports."""

from __future__ import annotations

import json
import socket
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pytest_httpserver import HTTPServer

from pytest_rustchain.llm.cassette import load_cassette

SCHEMA = Path(__file__).parent.parent.parent / "pytest_rustchain" / "schema" / "report.schema.json"
CANARY = "canary-5up3r-s3cr3t-771"


def openai_answer(content: str) -> dict[str, Any]:
    return {
        "model": "m1",
        "choices": [{"message": {"content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 4},
    }


def configure(pytester: pytest.Pytester, server: HTTPServer | None, *extra: str, key: bool = False) -> None:
    lines = ["[pytest]", "addopts = -p no:cacheprovider"]
    if server is not None:
        base = server.url_for("/v1").rstrip("/")
        lines += [
            "mission_llm_providers =",
            f"    local = openai {base}" + (" key_env=CANARY_API_KEY" if key else ""),
            "mission_llm_roles = default = local:m1",
            "mission_llm_prices = m1 1.00 2.00",
        ]
    lines += list(extra)
    pytester.makeini("\n".join(lines) + "\n")


def mission(pytester: pytest.Pytester, name: str, text: str) -> None:
    pytester.path.joinpath(f"{name}.mission.yaml").write_text(textwrap.dedent(text))


ASK = """\
    name: ask
    steps:
      - id: ask
        step_type: llm
        parameters:
          prompt: "What is 2+2? Answer with the number."
        expect:
          contains: "4"
      - id: save
        step_type: create_file
        parameters:
          path: answer.txt
          content: "{{ steps.ask.content }}"
"""


@pytest.fixture
def own_server() -> Any:
    """A server this test may stop (the shared httpserver fixture must keep running)."""
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    if server.is_running():
        server.stop()


def test_record_live_then_replay_with_the_server_stopped(pytester: pytest.Pytester, own_server: HTTPServer) -> None:
    """The first run calls the server and records; with the server gone, none mode replays the same result."""
    own_server.expect_request("/v1/chat/completions").respond_with_json(openai_answer("4"))
    configure(pytester, own_server)
    mission(pytester, "ask", ASK)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*SUBPASSED*ask*", "llm:      1 calls (0 recorded, 0 scripted, 1 live), 16 tokens, $0.00"]
    )
    cassette = load_cassette(pytester.path / "cassettes" / "ask.cassette.yaml")
    assert cassette is not None and cassette.origin == "recorded"
    own_server.stop()
    result = pytester.runpytest("-v", "--mission-record-mode=none", "--mission-report=r.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["llm:      1 calls (1 recorded, 0 scripted, 0 live), 16 tokens, $0.00"])
    doc = json.loads((pytester.path / "r.json").read_text())
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    assert doc["llm"]["by_source"] == {"live": 0, "recorded": 1, "scripted": 0}
    step = doc["missions"][0]["steps"][0]
    assert step["outputs"]["source"] == "recorded"


def test_none_mode_opens_no_socket(
    pytester: pytest.Pytester, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --mission-record-mode=none a replayed mission connects to nothing, even with a provider configured."""
    httpserver.expect_request("/v1/chat/completions").respond_with_json(openai_answer("4"))
    configure(pytester, httpserver)
    mission(pytester, "ask", ASK)
    pytester.runpytest().assert_outcomes(passed=1)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("socket opened in none mode")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    result = pytester.runpytest("--mission-record-mode=none")
    result.assert_outcomes(passed=1)
    mission(pytester, "ask", ASK.replace("2+2", "3+3"))
    result = pytester.runpytest("--mission-record-mode=none")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ['*first difference: messages[[]0[]].content: recorded "What is 2+2?*" now "What is 3+3?*', "*HINT:*"]
    )


def test_no_provider_no_recording_is_subskipped_and_not_counted(pytester: pytest.Pytester) -> None:
    """Without a provider or a cassette, the llm step and what depends on it are skipped, not counted."""
    configure(pytester, None)
    mission(pytester, "ask", ASK)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        ["*SUBSKIPPED*no LLM provider is configured*", "steps:    0/0 passed (n/a), 2 skipped steps not counted"]
    )


def test_canary_secret_reaches_no_artifact(
    pytester: pytest.Pytester, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider key, sent and echoed back, is absent from the cassette, reports, JUnit and terminal."""
    monkeypatch.setenv("CANARY_API_KEY", CANARY)
    httpserver.expect_request("/v1/chat/completions", headers={"authorization": f"Bearer {CANARY}"}).respond_with_json(
        openai_answer(f"4 (your key is {CANARY})")
    )
    configure(pytester, httpserver, "mission_pass_env = CANARY_API_KEY", key=True)
    mission(pytester, "ask", ASK.replace("Answer with the number.", "Key {{ env.CANARY_API_KEY }}."))
    result = pytester.runpytest(
        "-v", "--mission-report=r.json", "--mission-summary=s.md", "--junitxml=j.xml", "--mission-keep-workspace=never"
    )
    result.assert_outcomes(passed=1)
    artifacts = {
        "terminal": result.stdout.str() + result.stderr.str(),
        **{
            p.name: p.read_text()
            for p in pytester.path.rglob("*")
            if p.is_file() and p.suffix in (".yaml", ".json", ".md", ".xml")
        },
    }
    assert "ask.cassette.yaml" in artifacts
    for name, text in artifacts.items():
        assert CANARY not in text, name
    assert "***" in artifacts["ask.cassette.yaml"]


def test_validate_retry_reports_first_try_rate(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    """A module fixed on the second attempt passes, shows as not first-try, and the table says so."""
    bad = "```python\ndef add(a, b)\n    return a + b\n```"
    good = "```python\ndef add(a, b):\n    return a + b\n```"
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(openai_answer(bad))
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(openai_answer(good))
    configure(pytester, httpserver)
    mission(
        pytester,
        "gen",
        """\
        name: gen
        steps:
          - id: gen
            step_type: llm
            parameters:
              prompt: Write add(a, b).
              extract: {code_block: python}
              output_file: calc.py
              validate: {command: "{{ python }} -m py_compile calc.py"}
              max_attempts: 2
          - id: use
            step_type: command
            parameters: {command: "{{ python }} -c 'import calc; assert calc.add(2, 3) == 5'"}
        """,
    )
    result = pytester.runpytest("-v", "--junitxml=j.xml")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["step type * steps * rate*first try*", "llm * 1/1 * 100.0% * 0.0%*"])
    junit = (pytester.path / "j.xml").read_text()
    assert 'name="llm_calls" value="2"' in junit
    assert 'name="llm_sources" value="recorded=0 scripted=0 live=2"' in junit


def test_http_step_status_and_blocked_host(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    """An http step checks its status and header; a metadata URL is blocked before connecting."""
    httpserver.expect_request("/health").respond_with_json({"ok": True}, headers={"X-Version": "1.2"})
    configure(pytester, None)
    mission(
        pytester,
        "api",
        f"""\
        name: api
        config: {{fail_fast: false}}
        steps:
          - id: health
            step_type: http
            parameters: {{url: "{httpserver.url_for("/health")}"}}
            expect:
              status: 200
              header: {{name: x-version, matches: "^1\\\\."}}
              json_schema: {{type: object, required: [ok]}}
          - id: metadata
            step_type: http
            parameters: {{url: "http://169.254.169.254/latest/meta-data"}}
        """,
    )
    result = pytester.runpytest("-v")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*SUBPASSED*health*", "*RC-NET-005*"])


def test_nested_chain_steps_are_subtests(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    """A nested chain runs its steps as subtests chain/name, in order, sharing one conversation."""
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(openai_answer("an outline"))
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(openai_answer("a draft"))
    configure(pytester, httpserver)
    mission(
        pytester,
        "chain",
        """\
        name: chain
        steps:
          - id: write
            step_type: chain
            parameters:
              conversation: true
              steps:
                - {step_name: outline, step_type: llm, parameters: {prompt: Outline it.}}
                - {step_name: draft, step_type: llm, parameters: {prompt: Draft it.}}
                - step_name: save
                  step_type: create_file
                  parameters: {path: draft.txt, content: "{{ steps['write/draft'].content }}"}
          - id: after
            step_type: noop
            parameters: {message: "{{ steps.write.steps.draft.content }}"}
        """,
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*SUBPASSED*write/outline*", "*SUBPASSED*write/draft*", "*SUBPASSED*write/save*", "*SUBPASSED*write*"]
    )
    second = json.loads(httpserver.log[1][0].get_data())
    assert [m["content"] for m in second["messages"]] == ["Outline it.", "an outline", "Draft it."]


def test_unknown_alias_is_a_clean_error(pytester: pytest.Pytester) -> None:
    """A step naming an alias nobody configured fails with a HINT naming the ini line."""
    configure(pytester, None)
    mission(
        pytester,
        "m",
        "name: m\nsteps:\n  - {id: a, step_type: llm, parameters: {prompt: hi, provider: nope, model: x}}\n",
    )
    result = pytester.runpytest()
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["*unknown LLM provider alias 'nope'*", '*HINT: add "nope = openai*mission_llm_providers*']
    )


def test_replay_under_xdist_gives_the_same_numbers(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    """Two missions replayed on two workers report the same llm line and sources as a serial run."""
    httpserver.expect_request("/v1/chat/completions").respond_with_json(openai_answer("4"))
    configure(pytester, httpserver)
    mission(pytester, "one", ASK)
    mission(pytester, "two", ASK.replace("name: ask", "name: two"))
    pytester.runpytest().assert_outcomes(passed=2)
    line = "llm:      2 calls (2 recorded, 0 scripted, 0 live), 32 tokens, $0.00"
    serial = pytester.runpytest("--mission-record-mode=none")
    serial.stdout.fnmatch_lines([line])
    parallel = pytester.runpytest("-n", "2", "--mission-record-mode=none", "--junitxml=j.xml")
    parallel.assert_outcomes(passed=2)
    parallel.stdout.fnmatch_lines([line])
    assert (pytester.path / "j.xml").read_text().count('name="llm_sources" value="recorded=1 scripted=0 live=0"') == 2


def test_compat_response_variable(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    """In RustChain compatibility mode an llm answer is also the template variable <id>_response."""
    httpserver.expect_request("/v1/chat/completions").respond_with_json(openai_answer("four"))
    configure(pytester, httpserver)
    mission(
        pytester,
        "m",
        """\
        name: m
        steps:
          - {id: ask, step_type: llm, parameters: {prompt: "2+2 in words?"}}
          - id: show
            step_type: command
            depends_on: [ask]
            parameters: {command: echo, args: ["{{ ask_response }}"]}
            expect: {stdout_contains: four}
        """,
    )
    pytester.runpytest("--mission-compat=rustchain").assert_outcomes(passed=1)


def test_repeats_record_and_replay_their_own_answers(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    """Two repeats record two answers in one cassette; replay gives each repeat its own; a third repeat misses."""
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(openai_answer("4"))
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(openai_answer("four"))
    configure(pytester, httpserver)
    mission(pytester, "ask", ASK.replace('contains: "4"', 'matches: "4|four"'))
    pytester.runpytest("--mission-repeat", "2").assert_outcomes(passed=1)
    cassette = load_cassette(pytester.path / "cassettes" / "ask.cassette.yaml")
    assert cassette is not None
    assert [(i.repeat, i.response["content"]) for i in cassette.interactions] == [(0, "4"), (1, "four")]
    result = pytester.runpytest("--mission-repeat", "2", "--mission-record-mode=none")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*2 calls (2 recorded, 0 scripted, 0 live)*"])
    result = pytester.runpytest("--mission-repeat", "3", "--mission-record-mode=none")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*the cassette holds repeats 0, 1 for this step, not repeat 2*"])
