"""Opt-in smoke test against a real OpenAI-compatible server: MISSION_LIVE_LLM_URL and MISSION_LIVE_LLM_MODEL."""

from __future__ import annotations

import os

import pytest

from pytest_rustchain.llm.config import Provider, Target
from pytest_rustchain.llm.providers import ChatRequest, chat
from pytest_rustchain.llm.transport import HostPolicy

URL = os.environ.get("MISSION_LIVE_LLM_URL", "")
MODEL = os.environ.get("MISSION_LIVE_LLM_MODEL", "")


@pytest.mark.live
@pytest.mark.skipif(not (URL and MODEL), reason="set MISSION_LIVE_LLM_URL and MISSION_LIVE_LLM_MODEL to run")
def test_a_real_server_answers() -> None:
    """A real model at MISSION_LIVE_LLM_URL (e.g. http://127.0.0.1:11434/v1) answers a short prompt."""
    provider = Provider(alias="live", api="openai", base_url=URL.rstrip("/"), timeout=120)
    request = ChatRequest(model=MODEL, messages=({"role": "user", "content": "Say OK."},), params={"max_tokens": 10})
    host = URL.split("//", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    answer = chat(Target(provider=provider, model=MODEL), request, policy=HostPolicy(allow_hosts=(host,)))
    assert answer.content.strip()
