"""Black-box tests of the judge step against a real HTTP server on 127.0.0.1 speaking the OpenAI protocol."""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

MISSION = """
name: Rank three answers
steps:
  - id: rank
    step_type: judge
    parameters:
      method: ruler
      rubric: The most complete answer wins.
      candidates: [alpha, beta, gamma]
"""


def _configure(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    pytester.makeini(
        textwrap.dedent(
            f"""
            [pytest]
            mission_llm_providers =
                local = openai {httpserver.url_for("/v1")}
            mission_llm_roles =
                judge = local:judge-model
            """
        )
    )
    pytester.makefile(".mission.yaml", rank=MISSION)


def _answer(content: str) -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "model": "judge-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5},
    }


def _scores(pairs: dict[str, object]) -> str:
    return json.dumps({"scores": [{"id": k, "score": v, "explanation": "e"} for k, v in pairs.items()]})


def _by_text(request: Request) -> Response:
    """Scores each shown candidate by its own text, wherever the shuffle put it."""
    value = {"alpha": 0.1, "beta": 0.5, "gamma": 0.9}
    prompt = request.get_json()["messages"][-1]["content"]
    shown = re.findall(r"Candidate (c\d+):\n<<<\n(.*?)\n>>>", prompt, re.S)
    return Response(
        json.dumps(_answer(_scores({cid: value[text] for cid, text in shown}))), content_type="application/json"
    )


def _report(pytester: pytest.Pytester) -> dict[str, Any]:
    data = json.loads((pytester.path / "r.json").read_text())
    step = data["missions"][0]["steps"][0]
    assert isinstance(step, dict)
    return step


def test_shuffled_order_is_mapped_back_and_replayed(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    """Scores come back in the candidates' order whatever order the judge saw, with the seed recorded;
    a replay without any server gives the same scores."""
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(_by_text)
    _configure(pytester, httpserver)
    result = pytester.runpytest("-p", "no:cacheprovider", "--mission-report=r.json")
    assert result.ret == 0
    outputs = _report(pytester)["outputs"]
    assert outputs["scores"] == [0.1, 0.5, 0.9]
    assert outputs["best_index"] == 2
    assert outputs["best"] == "gamma"
    assert isinstance(outputs["order_seed"], int)
    httpserver.clear()
    replay = pytester.runpytest("-p", "no:cacheprovider", "--mission-record-mode=none", "--mission-report=r.json")
    assert replay.ret == 0
    assert _report(pytester)["outputs"]["scores"] == [0.1, 0.5, 0.9]


def test_malformed_then_valid_answer(pytester: pytest.Pytester, httpserver: HTTPServer) -> None:
    """A judge answer that is not JSON gets one retry stating why; the valid second answer is used."""
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(_answer("I think c2 is best."))
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(
        _answer(_scores({"c1": 0.2, "c2": 0.4, "c3": 0.6}))
    )
    _configure(pytester, httpserver)
    result = pytester.runpytest("-p", "no:cacheprovider", "--mission-report=r.json")
    assert result.ret == 0
    assert sorted(_report(pytester)["outputs"]["scores"]) == [0.2, 0.4, 0.6]
    retry = httpserver.log[1][0].get_json()["messages"]
    assert "the answer is not JSON" in retry[-1]["content"]


@pytest.mark.parametrize(
    ("first", "second", "text"),
    [
        ({"c1": 0.5}, {"c1": 0.5, "c2": 0.5}, "expected exactly 3 scores (one per candidate), got 2"),
        ({"c1": 7, "c2": 0.1, "c3": 0.2}, {"c1": 7, "c2": 0.1, "c3": 0.2}, "the score of c1 is 7, outside [0, 1]"),
        (
            {"c1": "0.5", "c2": 0.1, "c3": 0.2},
            {"c1": "0.5", "c2": 0.1, "c3": 0.2},
            "the score of c1 is '0.5', not a number",
        ),
    ],
    ids=["wrong-count", "seven", "string"],
)
def test_invalid_twice_fails_clearly(
    pytester: pytest.Pytester, httpserver: HTTPServer, first: dict[str, object], second: dict[str, object], text: str
) -> None:
    """A judge that breaks the contract twice fails the step, naming the violation and showing its answer."""
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(_answer(_scores(first)))
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(_answer(_scores(second)))
    _configure(pytester, httpserver)
    result = pytester.runpytest("-p", "no:cacheprovider", "-v")
    assert result.ret == 1
    pattern = text.replace("[", "[[]")
    result.stdout.fnmatch_lines([f"*the judge's answer was invalid twice*{pattern}*", "*last answer (trimmed):*"])
