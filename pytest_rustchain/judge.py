"""Judging candidates with a model: the prompt, the shuffled order, strict answer checks, one retry.

The model call itself is passed in (``Ask``), so the same logic serves live, recorded and scripted
answers; this module never talks to a network and never guesses a score.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "METHODS",
    "Ask",
    "JudgeError",
    "Judgement",
    "check_answer",
    "judge",
    "permutation",
]

METHODS = ("ruler", "rubric")
RAW_LIMIT = 2000
PREFIX_MIN = 200
"""A shared start of the candidates shorter than this is not worth sending separately."""

Message = dict[str, str]
Ask = Callable[[list[Message], str], str]
"""``ask(messages, purpose) -> answer text``; ``purpose`` names the call (``ruler``, ``retry`` ...) for recording."""

DEFAULT_RUBRIC = (
    "Score how well each candidate achieves the task: correct and complete beats partial, partial beats "
    "wrong, and a candidate whose checks failed cannot be better than one whose checks passed."
)

_SYSTEM = (
    "You are a strict evaluator. You score candidates against a rubric. Answer with JSON only, no prose "
    'around it, exactly in this shape: {"scores": [{"id": "<id>", "score": <number from 0 to 1>, '
    '"explanation": "<one sentence>"}]}. Give exactly one entry per candidate id you are shown, using '
    "exactly those ids, and a score that is a JSON number between 0 and 1."
)


class JudgeError(Exception):
    """The judge's answer broke the contract twice; ``raw`` is its last answer, trimmed."""

    def __init__(self, message: str, *, raw: str) -> None:
        super().__init__(message)
        self.message = message
        self.raw = raw


def _trim(text: str, limit: int = RAW_LIMIT) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + f"\n[... {len(text) - limit} chars omitted ...]\n" + text[-half:]


def permutation(n: int, seed: int) -> list[int]:
    """The order candidates are shown in: ``shown[j]`` is the index of the candidate shown at place j."""
    order = list(range(n))
    random.Random(seed).shuffle(order)  # noqa: S311 - an order for fairness, not a secret
    return order


def _strip_fence(text: str) -> str:
    body = text.strip()
    if body.startswith("```"):
        lines = body.splitlines()
        if len(lines) >= 2 and lines[-1].strip().startswith("```"):
            return "\n".join(lines[1:-1]).strip()
    return body


def check_answer(text: str, ids: Sequence[str]) -> dict[str, tuple[float, str]]:
    """Scores by id from a judge's answer; ValueError naming the first violation of the contract.

    Exactly ``len(ids)`` entries, exactly these ids, each score a JSON number in [0, 1]. Nothing is
    padded, clamped or guessed. A fenced code block around the JSON is accepted.
    """
    try:
        data = json.loads(_strip_fence(text))
    except ValueError as exc:
        raise ValueError(f"the answer is not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("scores"), list):
        raise ValueError('the answer is not an object with a "scores" list')
    entries = data["scores"]
    if len(entries) != len(ids):
        raise ValueError(f"expected exactly {len(ids)} scores (one per candidate), got {len(entries)}")
    out: dict[str, tuple[float, str]] = {}
    wanted = set(ids)
    for position, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise ValueError(f"score {position} is not an object with id, score and explanation")
        got_id = entry.get("id")
        if not isinstance(got_id, str) or got_id not in wanted:
            raise ValueError(f"score {position} has id {got_id!r}; the ids are {', '.join(ids)}")
        if got_id in out:
            raise ValueError(f"id {got_id!r} is scored twice")
        score = entry.get("score")
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise ValueError(f'the score of {got_id} is {score!r}, not a number (write 0.5, not "0.5")')
        if not 0 <= score <= 1 or score != score:
            raise ValueError(f"the score of {got_id} is {score!r}, outside [0, 1]")
        explanation = entry.get("explanation", "")
        out[got_id] = (float(score), explanation if isinstance(explanation, str) else str(explanation))
    return out


def _common_prefix(texts: Sequence[str]) -> str:
    """The shared start of every candidate, cut at a line end, when long enough to matter."""
    if len(texts) < 2:
        return ""
    prefix = os.path.commonprefix(list(texts))  # noqa: RUF071 - character-wise is what is meant here
    cut = prefix.rfind("\n") + 1
    prefix = prefix[:cut]
    return prefix if len(prefix) >= PREFIX_MIN else ""


def _facts_text(facts: Mapping[str, Any] | None) -> str:
    if not facts:
        return ""
    return "Checked facts: " + json.dumps(dict(facts), sort_keys=True, ensure_ascii=False)


def _prompt(task: str, rubric: str, shown: Sequence[tuple[str, str, Mapping[str, Any] | None]]) -> list[Message]:
    texts = [text for _, text, _ in shown]
    prefix = _common_prefix(texts)
    parts = []
    if task:
        parts.append(f"Task:\n{task}")
    parts.append(f"Rubric:\n{rubric}")
    if prefix:
        parts.append(f"Every candidate starts with this text (shown once):\n<<<\n{prefix}>>>")
    for cid, text, facts in shown:
        body = text[len(prefix) :] if prefix else text
        block = f"Candidate {cid}" + (" (continuing after the shared start)" if prefix else "") + f":\n<<<\n{body}\n>>>"
        fact_line = _facts_text(facts)
        if fact_line:
            block += "\n" + fact_line
        parts.append(block)
    ids = ", ".join(cid for cid, _, _ in shown)
    parts.append(f"Score every candidate ({ids}) from 0 to 1. Answer with the JSON object only.")
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


def _ask_checked(ask: Ask, messages: list[Message], ids: Sequence[str], purpose: str) -> dict[str, tuple[float, str]]:
    """One call; on a violation one retry that states it; then JudgeError with the raw answer."""
    answer = ask(messages, purpose)
    try:
        return check_answer(answer, ids)
    except ValueError as exc:
        violation = str(exc)
    retry = [
        *messages,
        {"role": "assistant", "content": answer},
        {
            "role": "user",
            "content": f"Your answer broke the required format: {violation}. Answer again with JSON only: "
            f'{{"scores": [...]}} with exactly {len(ids)} entries, ids {", ".join(ids)}, each score a number '
            "from 0 to 1.",
        },
    ]
    again = ask(retry, f"{purpose}-retry")
    try:
        return check_answer(again, ids)
    except ValueError as exc:
        message = (
            f"the judge's answer was invalid twice: first {violation}; then {exc}\n"
            f"last answer (trimmed):\n{_trim(again)}"
        )
        raise JudgeError(message, raw=_trim(again)) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Judgement:
    scores: tuple[float, ...]
    """In the candidates' own order, whatever order the judge saw."""
    explanations: tuple[str, ...]
    order_seed: int
    shown_order: tuple[int, ...]
    order_sensitivity: float | None = None
    """With ``swap_check``: the mean absolute score change when the order was reversed."""
    swapped_scores: tuple[float, ...] | None = None
    calls: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def best_index(self) -> int:
        return max(range(len(self.scores)), key=lambda i: (self.scores[i], -i))

    @property
    def mean(self) -> float:
        return sum(self.scores) / len(self.scores)


def judge(
    candidates: Sequence[str],
    *,
    ask: Ask,
    method: str = "ruler",
    rubric: str = "",
    task: str = "",
    facts: Sequence[Mapping[str, Any] | None] | None = None,
    seed: int,
    swap_check: bool = False,
) -> Judgement:
    """Score candidates: ``ruler`` ranks all of them in one call (at least two), ``rubric`` scores each alone."""
    if method not in METHODS:
        raise ValueError(f"unknown judge method {method!r}; use one of: {', '.join(METHODS)}")
    n = len(candidates)
    if n == 0 or (method == "ruler" and n < 2):
        raise ValueError(
            f"the {method} method needs {'at least two candidates' if method == 'ruler' else 'a candidate'}"
        )
    rubric = rubric.strip() or DEFAULT_RUBRIC
    facts_of = list(facts) if facts is not None else [None] * n
    if len(facts_of) != n:
        raise ValueError(f"{len(facts_of)} sets of facts for {n} candidates")
    order = permutation(n, seed)
    calls = 0

    def run(shown_order: Sequence[int], purpose: str) -> dict[int, tuple[float, str]]:
        nonlocal calls
        result: dict[int, tuple[float, str]] = {}
        if method == "ruler":
            ids = [f"c{place + 1}" for place in range(n)]
            shown = [(ids[place], candidates[index], facts_of[index]) for place, index in enumerate(shown_order)]
            calls += 1
            scored = _ask_checked(ask, _prompt(task, rubric, shown), ids, purpose)
            for place, index in enumerate(shown_order):
                result[index] = scored[ids[place]]
        else:
            for index in shown_order:
                calls += 1
                scored = _ask_checked(
                    ask, _prompt(task, rubric, [("c1", candidates[index], facts_of[index])]), ["c1"], purpose
                )
                result[index] = scored["c1"]
        return result

    first = run(order, method)
    scores = tuple(first[i][0] for i in range(n))
    explanations = tuple(first[i][1] for i in range(n))
    sensitivity: float | None = None
    swapped: tuple[float, ...] | None = None
    if swap_check:
        second = run(list(reversed(order)), f"{method}-swap")
        swapped = tuple(second[i][0] for i in range(n))
        sensitivity = sum(abs(a - b) for a, b in zip(scores, swapped, strict=True)) / n
    return Judgement(
        scores=scores,
        explanations=explanations,
        order_seed=seed,
        shown_order=tuple(order),
        order_sensitivity=sensitivity,
        swapped_scores=swapped,
        calls=calls,
    )
