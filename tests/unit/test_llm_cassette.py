"""Cassettes: record, replay, modes, misses, scrubbing and hostile files."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_httpserver import HTTPServer

from pytest_rustchain.llm.cassette import (
    CassetteError,
    CassetteMiss,
    NoLiveProvider,
    Normaliser,
    Recorder,
    load_cassette,
    request_key,
)
from pytest_rustchain.llm.config import Provider, Target, parse_settings
from pytest_rustchain.llm.providers import ChatRequest
from pytest_rustchain.llm.session import LLMSession, summarise_calls
from pytest_rustchain.llm.transport import HostPolicy
from pytest_rustchain.masking import Masker

CANARY = "canary-9f8e7d6c5b4a"


def request(prompt: str = "What is 2+2?") -> dict[str, Any]:
    return ChatRequest(model="m1", messages=({"role": "user", "content": prompt},)).to_record("openai")


def recorder(path: Path, mode: str, **kwargs: Any) -> Recorder:
    return Recorder(path=path, mode=mode, masker=Masker(secrets=(CANARY,)), **kwargs)


def answer(text: str) -> Any:
    return lambda: {"content": text, "finish_reason": "stop", "usage": {"input_tokens": 3, "output_tokens": 1}}


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_record_then_replay_with_the_server_stopped(tmp_path: Path) -> None:
    """A live answer recorded in once mode replays, labelled recorded, after the server is gone."""
    httpserver = HTTPServer(host="127.0.0.1", port=0)  # its own server: this test stops it
    httpserver.start()
    httpserver.expect_request("/v1/chat/completions").respond_with_json(
        {"choices": [{"message": {"content": "4"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 5}}
    )
    provider = Provider(alias="local", api="openai", base_url=httpserver.url_for("/v1").rstrip("/"))
    target = Target(provider=provider, model="m1")
    path = tmp_path / "m.cassette.yaml"
    chat_request = ChatRequest(model="m1", messages=({"role": "user", "content": "2+2?"},))
    session = LLMSession(settings=parse_settings(), recorder=recorder(path, "once"), policy=HostPolicy())
    assert session.chat(chat_request, target=target, step="ask").source == "live"
    assert session.recorder.save()
    httpserver.stop()
    replay = LLMSession(settings=parse_settings(), recorder=recorder(path, "none"), policy=HostPolicy())
    reply = replay.chat(chat_request, target=target, step="ask")
    assert (reply.response.content, reply.source, reply.response.usage.input_tokens) == ("4", "recorded", 5)
    assert summarise_calls([c.to_dict() for c in replay.calls])["by_source"]["recorded"] == 1


def test_none_mode_opens_no_socket(tmp_path: Path, no_sockets: None) -> None:
    """In none mode a replay works and a miss fails without the live call ever being attempted."""
    path = tmp_path / "m.cassette.yaml"
    rec = recorder(path, "once")
    rec.call(kind="llm", request=request(), step="ask", live=answer("4"))
    rec.save()

    def live() -> dict[str, Any]:
        raise AssertionError("live call in none mode")

    replay = recorder(path, "none")
    assert replay.call(kind="llm", request=request(), step="ask", live=live).response["content"] == "4"
    with pytest.raises(CassetteMiss):
        replay.call(kind="llm", request=request("other"), step="ask", live=live)


def test_none_mode_without_a_cassette_hints_how_to_record(tmp_path: Path) -> None:
    """No cassette in none mode is a failure that says how to record one."""
    with pytest.raises(CassetteMiss, match="HINT: record one with a provider configured"):
        recorder(tmp_path / "x.cassette.yaml", "none").call(kind="llm", request=request(), step="s", live=None)


def test_once_without_provider_or_recording_is_a_skip(tmp_path: Path) -> None:
    """No provider and no recording is NoLiveProvider (a skip), naming the missing cassette."""
    with pytest.raises(NoLiveProvider, match="does not exist"):
        recorder(tmp_path / "x.cassette.yaml", "once").call(kind="llm", request=request(), step="s", live=None)


def test_a_miss_names_the_first_differing_field(tmp_path: Path) -> None:
    """A changed prompt misses with the nearest recording and the first field that differs."""
    path = tmp_path / "m.cassette.yaml"
    rec = recorder(path, "once")
    rec.call(kind="llm", request=request("What is 2+2?"), step="ask", live=answer("4"))
    rec.save()
    with pytest.raises(CassetteMiss) as info:
        recorder(path, "once").call(kind="llm", request=request("What is 3+3?"), step="ask", live=answer("6"))
    message = str(info.value)
    assert "nearest recording: step 'ask' call 0" in message
    assert 'first difference: messages[0].content: recorded "What is 2+2?" now "What is 3+3?"' in message
    assert "HINT:" in message


def test_repeats_and_identical_calls_replay_their_own_answers(tmp_path: Path) -> None:
    """The same prompt in two repeats, and twice in one repeat, replays four distinct recorded answers."""
    path = tmp_path / "m.cassette.yaml"
    rec = recorder(path, "once")
    for r in (0, 1):
        for n in (0, 1):
            rec.call(kind="llm", request=request(), step="ask", repeat=r, live=answer(f"r{r}n{n}"))
    rec.save()
    replay = recorder(path, "none")
    got = [replay.call(kind="llm", request=request(), step="ask", repeat=r, live=None).response["content"]
           for r in (0, 1) for _ in (0, 1)]  # fmt: skip
    assert got == ["r0n0", "r0n1", "r1n0", "r1n1"]
    with pytest.raises(CassetteMiss, match="holds repeats 0, 1 for this step, not repeat 2"):
        replay.call(kind="llm", request=request(), step="ask", repeat=2, live=None)


def test_new_episodes_appends_and_all_overwrites(tmp_path: Path) -> None:
    """new_episodes keeps old recordings and adds new ones; all rewrites the file from this run only."""
    path = tmp_path / "m.cassette.yaml"
    rec = recorder(path, "once")
    rec.call(kind="llm", request=request("a"), step="s", live=answer("A"))
    rec.save()
    rec = recorder(path, "new_episodes")
    assert rec.call(kind="llm", request=request("a"), step="s", live=None).source == "recorded"
    assert rec.call(kind="llm", request=request("b"), step="s", live=answer("B")).source == "live"
    rec.save()
    cassette = load_cassette(path)
    assert cassette is not None and len(cassette.interactions) == 2
    rec = recorder(path, "all")
    assert rec.call(kind="llm", request=request("b"), step="s", live=answer("B2")).source == "live"
    rec.save()
    cassette = load_cassette(path)
    assert cassette is not None and [i.response["content"] for i in cassette.interactions] == ["B2"]


def test_prune_drops_unused_recordings(tmp_path: Path) -> None:
    """--mission-cassette-prune keeps only what the run asked for."""
    path = tmp_path / "m.cassette.yaml"
    rec = recorder(path, "once")
    rec.call(kind="llm", request=request("a"), step="s", live=answer("A"))
    rec.call(kind="llm", request=request("b"), step="s", live=answer("B"))
    rec.save()
    rec = recorder(path, "none", prune=True)
    rec.call(kind="llm", request=request("a"), step="s", live=None)
    assert [i.request["messages"][0]["content"] for i in rec.unused()] == ["b"]
    assert rec.save()
    cassette = load_cassette(path)
    assert cassette is not None and len(cassette.interactions) == 1


def test_canary_secret_never_reaches_the_cassette(tmp_path: Path) -> None:
    """A secret in the prompt and the answer is masked in the file, and the key is computed after masking."""
    path = tmp_path / "m.cassette.yaml"
    rec = recorder(path, "once")
    rec.call(kind="llm", request=request(f"use {CANARY}"), step="s", live=answer(f"ok {CANARY}\nline two"))
    rec.save()
    text = path.read_text()
    assert CANARY not in text
    assert "use ***" in text
    assert "|-" in text or "|\n" in text  # multi-line answers are literal blocks
    masked = request("use ***")
    assert request_key(masked) in text


def test_token_shapes_left_after_masking_refuse_the_write(tmp_path: Path) -> None:
    """A key-shaped string nobody declared as secret stops the write with a clear error; no file appears."""
    path = tmp_path / "m.cassette.yaml"
    rec = recorder(path, "once")
    rec.call(kind="llm", request=request("hi"), step="s", live=answer("sk-ant-REALLOOKINGKEY1234567890"))
    with pytest.raises(CassetteError, match=r"response.content still holds what looks like an OpenAI/Anthropic"):
        rec.save()
    assert not path.exists()
    assert not list(tmp_path.iterdir())


def test_normalised_values_keep_keys_stable(tmp_path: Path) -> None:
    """The workspace path in a prompt is replaced by a placeholder, so another run's path still matches."""
    path = tmp_path / "m.cassette.yaml"
    rec = recorder(path, "once", normaliser=Normaliser.of({"<workspace>": "/tmp/run1/ws"}))
    rec.call(kind="llm", request=request("read /tmp/run1/ws/a.py"), step="s", live=answer("ok"))
    rec.save()
    replay = recorder(path, "none", normaliser=Normaliser.of({"<workspace>": "/tmp/run2/ws"}))
    assert replay.call(kind="llm", request=request("read /tmp/run2/ws/a.py"), step="s", live=None).source == "recorded"


HOSTILE = {
    "alias bomb": "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdef", "bcdefg", strict=True)),
    "deep nesting": "x: " + "[" * 5000 + "]" * 5000 + "\n",
    "python tag": "!!python/object/apply:os.system ['true']\n",
    "wrong shape": "version: 1\norigin: recorded\ninteractions: [{kind: llm}]\n",
    "bad origin": "version: 1\norigin: trusted\ninteractions: []\n",
    "not yaml": "version: 1\norigin: [\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_cassettes_are_refused_cleanly(tmp_path: Path, name: str) -> None:
    """A cassette from a pull request that is a bomb, too deep, tagged or malformed is a clean error."""
    path = tmp_path / "m.cassette.yaml"
    path.write_text(HOSTILE[name])
    with pytest.raises(CassetteError) as info:
        recorder(path, "none").call(kind="llm", request=request(), step="s", live=None)
    assert "m.cassette.yaml" in str(info.value)
    assert "Traceback" not in str(info.value)


def test_scripted_cassette_answers_are_labelled_scripted(tmp_path: Path) -> None:
    """A hand-written cassette replays with source scripted."""
    path = tmp_path / "m.cassette.yaml"
    record = request()
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "origin": "scripted",
                "interactions": [
                    {"kind": "llm", "key": request_key(record), "repeat": 0, "seq": 0, "step": "ask",
                     "request": record, "response": {"content": "4"}},
                ],
            }
        )
    )  # fmt: skip
    assert recorder(path, "none").call(kind="llm", request=record, step="ask", live=None).source == "scripted"
