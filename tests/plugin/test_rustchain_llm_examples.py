"""RustChain's LLM, chain and HTTP examples run offline from scripted cassettes, in both modes."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent.parent / "fixtures" / "rustchain"
EXAMPLES = ["examples_llm_demo", "examples_chain_demo", "examples_api_integration", "src_cli_templates_llm_mission"]


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any network connection fails the test: the examples must replay, not call."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def setup(pytester: pytest.Pytester) -> None:
    for name in EXAMPLES:
        shutil.copy(FIXTURES / f"{name}.yaml", pytester.path / f"{name}.yaml")
    shutil.copytree(FIXTURES / "cassettes", pytester.path / "cassettes")
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\nmission_llm_roles = default = ollama:llama3.2\n")


@pytest.mark.parametrize("mode", ["strict", "rustchain"])
def test_llm_chain_and_http_examples_replay_offline(pytester: pytest.Pytester, mode: str, offline: None) -> None:
    """Each example replays its scripted answers with no socket opened; every answer is labelled scripted."""
    setup(pytester)
    result = pytester.runpytest(
        *(f"{n}.yaml" for n in EXAMPLES), f"--mission-compat={mode}", "--mission-record-mode=none", "-v", "-W", "ignore"
    )
    out = result.stdout.str()
    for name in ["examples_llm_demo", "examples_chain_demo", "examples_api_integration"]:
        assert f"{name}.yaml::{name} PASSED" in out, name
    if mode == "rustchain":
        assert "src_cli_templates_llm_mission.yaml::src_cli_templates_llm_mission PASSED" in out
        result.stdout.fnmatch_lines(["llm:      4 calls (0 recorded, 4 scripted, 0 live), *"])
    else:
        # Strict mode: RustChain's `{{name}}` placeholder is an undefined template name, a clean failure.
        result.stdout.fnmatch_lines(
            [
                "*SUBFAILED[[]llm_task[]]*",
                "*parameters: prompt: 'name' is undefined*",
                "llm:      3 calls (0 recorded, 3 scripted, 0 live), *",
            ]
        )
    assert "Traceback" not in out


@pytest.mark.parametrize("step_type", ["Safety", "Policy", "Audit"])
def test_rustchain_internal_step_types_say_why(pytester: pytest.Pytester, step_type: str) -> None:
    """RustChain's Safety, Policy and Audit step types are refused with what replaces them here."""
    pytester.path.joinpath("m.mission.yaml").write_text(
        f"name: m\nsteps:\n  - {{id: a, step_type: {step_type}, parameters: {{}}}}\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"*step type '{step_type}' is RustChain-internal and not available:*", "*HINT:*"])
