"""The judge's contract: strict answers, one retry stating the violation, shuffled order mapped back."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import pytest

from pytest_rustchain import judge


class Script:
    """A judge that answers from a list, recording what it was asked."""

    def __init__(self, answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[list[dict[str, str]], str]] = []

    def __call__(self, messages: list[dict[str, str]], purpose: str) -> str:
        self.asked.append((messages, purpose))
        return self.answers.pop(0)


def _answer(scores: dict[str, object]) -> str:
    return json.dumps({"scores": [{"id": k, "score": v, "explanation": f"about {k}"} for k, v in scores.items()]})


def _shown_texts(messages: list[dict[str, str]]) -> list[str]:
    return re.findall(r"Candidate c\d+:\n<<<\n(.*?)\n>>>", messages[-1]["content"], re.S)


def test_shuffled_order_is_mapped_back() -> None:
    """Scores come back in the candidates' own order whatever order the judge saw them in."""
    candidates = ["alpha", "beta", "gamma", "delta"]
    seed = next(s for s in range(100) if judge.permutation(4, s) != [0, 1, 2, 3])
    order = judge.permutation(4, seed)
    # The judge gives each place a score that identifies the candidate shown there.
    value = {"alpha": 0.1, "beta": 0.2, "gamma": 0.3, "delta": 0.4}
    answer = _answer({f"c{place + 1}": value[candidates[index]] for place, index in enumerate(order)})
    script = Script([answer])
    result = judge.judge(candidates, ask=script, seed=seed)
    assert result.scores == (0.1, 0.2, 0.3, 0.4)
    assert result.best_index == 3
    assert _shown_texts(script.asked[0][0]) == [candidates[i] for i in order]
    assert result.order_seed == seed


def test_malformed_then_valid_answer_is_accepted_after_one_retry() -> None:
    """A malformed first answer gets one retry that states the violation; a valid second answer is used."""
    script = Script(["Sure! Here are the scores: c1 is great", _answer({"c1": 1, "c2": 0.25})])
    result = judge.judge(["a", "b"], ask=script, seed=0)
    assert sorted(result.scores) == [0.25, 1.0]
    retry = script.asked[1]
    assert retry[1] == "ruler-retry"
    assert "the answer is not JSON" in retry[0][-1]["content"]
    assert retry[0][-2] == {"role": "assistant", "content": "Sure! Here are the scores: c1 is great"}


def test_wrong_count_twice_fails_with_the_raw_answer() -> None:
    """A judge that gives the wrong number of scores twice fails clearly, quoting both violations and its answer."""
    script = Script([_answer({"c1": 0.5}), _answer({"c1": 0.5, "c2": 0.5, "c3": 0.1})])
    with pytest.raises(judge.JudgeError) as info:
        judge.judge(["a", "b"], ask=script, seed=1)
    message = info.value.message
    assert "expected exactly 2 scores (one per candidate), got 1" in message
    assert "expected exactly 2 scores (one per candidate), got 3" in message
    assert '"c3"' in info.value.raw


@pytest.mark.parametrize(
    ("score", "violation"),
    [
        (7, "the score of c1 is 7, outside [0, 1]"),
        ("0.5", "the score of c1 is '0.5', not a number"),
        (True, "the score of c1 is True, not a number"),
        (-0.1, "outside [0, 1]"),
    ],
)
def test_scores_outside_the_contract_are_rejected(score: object, violation: str) -> None:
    """A score of 7, a string "0.5" or a boolean is a violation, never clamped or converted."""
    with pytest.raises(ValueError, match=re.escape(violation)):
        judge.check_answer(_answer({"c1": score, "c2": 0.5}), ["c1", "c2"])


def test_unknown_and_duplicate_ids_are_rejected() -> None:
    """Ids must be exactly the ones given: an unknown id or one scored twice is a violation."""
    with pytest.raises(ValueError, match="has id 'c9'"):
        judge.check_answer(_answer({"c1": 0.5, "c9": 0.5}), ["c1", "c2"])
    doubled = json.dumps({"scores": [{"id": "c1", "score": 0.5}, {"id": "c1", "score": 0.4}]})
    with pytest.raises(ValueError, match="scored twice"):
        judge.check_answer(doubled, ["c1", "c2"])


def test_fenced_json_is_accepted() -> None:
    """An answer wrapped in a ```json fence is read as its JSON."""
    text = "```json\n" + _answer({"c1": 0.5}) + "\n```"
    assert judge.check_answer(text, ["c1"]) == {"c1": (0.5, "about c1")}


def test_rubric_scores_each_candidate_alone() -> None:
    """The rubric method asks once per candidate, each with the single id c1."""
    script = Script([_answer({"c1": 0.9}), _answer({"c1": 0.3})])
    result = judge.judge(["x", "y"], ask=script, method="rubric", seed=0)
    assert len(script.asked) == 2
    assert sorted(result.scores) == [0.3, 0.9]


def test_swap_check_reports_order_sensitivity() -> None:
    """With swap_check the judge is asked again in reverse order and the score change is reported."""
    first = _answer({"c1": 1.0, "c2": 0.0})
    second = _answer({"c1": 1.0, "c2": 0.0})  # the judge prefers whatever comes first
    result = judge.judge(["a", "b"], ask=Script([first, second]), seed=0, swap_check=True)
    assert result.order_sensitivity == 1.0
    assert result.calls == 2


def test_common_prefix_is_sent_once() -> None:
    """Candidates that share a long start have it sent once, each candidate with only its remainder."""
    shared = "def solve(values):\n" + "    # a long shared preamble line\n" * 10
    script = Script([_answer({"c1": 0.5, "c2": 0.5})])
    judge.judge([shared + "    return 1\n", shared + "    return 2\n"], ask=script, seed=0)
    prompt = script.asked[0][0][-1]["content"]
    assert prompt.count("a long shared preamble line") == 10
    assert "return 1" in prompt
    assert "return 2" in prompt


def test_ruler_needs_two_candidates() -> None:
    """Relative ranking of a single candidate is refused with a clear message."""
    with pytest.raises(ValueError, match="at least two candidates"):
        judge.judge(["only"], ask=Script([]), seed=0)
