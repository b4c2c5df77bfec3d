"""The ``judge`` step type: a model scores candidates (``ruler``: ranked together; ``rubric``: each alone).

The judge's answer is checked strictly (``pytest_rustchain.judge``): exactly one score per candidate,
exactly the ids given, numbers in [0, 1]; one retry states the violation, then the step fails with the
raw answer. The order the judge sees is shuffled with a seed that is recorded in the outputs and
derived from the step and repeat when not given, so a replay asks exactly what was recorded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from pytest_rustchain import judge
from pytest_rustchain.errors import StepError, StepSkipped
from pytest_rustchain.llm.cassette import CassetteError, CassetteMiss, NoLiveProvider
from pytest_rustchain.llm.config import ConfigError
from pytest_rustchain.llm.providers import ChatRequest, ProviderError
from pytest_rustchain.llm.runtime import runtime_of
from pytest_rustchain.steps.base import Outputs, StepContext, StepType, register

__all__ = ["JUDGE_SCHEMA", "default_seed", "judge_expectations"]

JUDGE_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["candidates"],
    "properties": {
        "candidates": {
            "oneOf": [
                {"type": "array", "minItems": 1, "maxItems": 50},
                {"type": "string", "minLength": 1, "description": "one template giving a list"},
            ]
        },
        "method": {"enum": list(judge.METHODS)},
        "rubric": {"type": "string"},
        "task": {"type": "string"},
        "role": {"type": "string", "minLength": 1},
        "provider": {"type": "string", "minLength": 1},
        "model": {"type": "string", "minLength": 1},
        "temperature": {"type": "number", "minimum": 0},
        "seed": {"type": "integer"},
        "swap_check": {"type": "boolean"},
    },
}
JUDGE_EXPECT_KEYS: Final = frozenset({"min_score", "min_mean_score"})


def default_seed(step_id: str, repeat: int) -> int:
    """A seed fixed by the step and repeat, so every replay shows the judge the same order."""
    return int(hashlib.sha256(f"{step_id}/{repeat}".encode()).hexdigest()[:8], 16)


def _text(candidate: Any) -> str:
    return candidate if isinstance(candidate, str) else json.dumps(candidate, ensure_ascii=False, sort_keys=True)


def _run(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
    runtime = runtime_of(ctx.extras)
    session = runtime.session
    method = str(params.get("method", "ruler"))
    given = params["candidates"]
    if not isinstance(given, list) or not given:
        raise StepError(
            f"candidates must be a non-empty list, got {type(given).__name__} {str(given)[:80]!r}\n"
            '  HINT: name a list output, e.g. candidates: "{{ steps.generate.samples }}"'
        )
    candidates = [_text(c) for c in given]
    if method == "ruler" and len(candidates) < 2:
        raise StepError(
            f"method ruler ranks candidates against each other and needs at least two; got {len(candidates)}\n"
            "  HINT: use method: rubric to score a single candidate"
        )
    role = params.get("role") or (None if params.get("provider") else "judge")
    try:
        target = session.settings.resolve(provider=params.get("provider"), model=params.get("model"), role=role)
    except ConfigError as exc:
        if params.get("provider") is None and not session.settings.roles:
            target = None  # nothing configured: a recording may still answer
        else:
            raise StepError(str(exc)) from None
    model = target.model if target is not None else str(params.get("model") or role or "judge")
    seed = int(params["seed"]) if "seed" in params else default_seed(ctx.step_id, runtime.repeat)
    sources: list[str] = []
    usage = {"input_tokens": 0, "output_tokens": 0}
    no_provider = "no judge model is configured (mission_llm_roles: judge = provider:model)"

    def ask(messages: list[dict[str, str]], purpose: str) -> str:
        request = ChatRequest(
            model=model,
            messages=tuple(messages),
            response_format={"type": "json"},
            params={"temperature": params.get("temperature", 0)},
        )
        try:
            reply = session.chat(request, target=target, step=ctx.step_id, repeat=runtime.repeat,
                                 no_live_reason=no_provider)  # fmt: skip
        except NoLiveProvider as exc:
            raise StepSkipped(str(exc)) from None
        except (CassetteMiss, CassetteError, ProviderError) as exc:
            raise StepError(str(exc)) from None
        sources.append(reply.source)
        usage["input_tokens"] += reply.response.usage.input_tokens
        usage["output_tokens"] += reply.response.usage.output_tokens
        return reply.response.content

    try:
        result = judge.judge(
            candidates,
            ask=ask,
            method=method,
            rubric=str(params.get("rubric", "")),
            task=str(params.get("task", "")),
            seed=seed,
            swap_check=bool(params.get("swap_check", False)),
        )
    except judge.JudgeError as exc:
        raise StepError(exc.message, outputs={"order_seed": seed, "raw_answer": exc.raw, "model": model}) from None
    tested = {c.model for c in session.calls if c.kind == "llm" and c.step != ctx.step_id}
    outputs: dict[str, Any] = {
        "scores": list(result.scores),
        "explanations": list(result.explanations),
        "best_index": result.best_index,
        "best": given[result.best_index],
        "mean_score": result.mean,
        "order_seed": seed,
        "shown_order": list(result.shown_order),
        "source": sorted(set(sources))[0] if len(set(sources)) == 1 else "+".join(sorted(set(sources))),
        "model": model,
        "usage": usage,
        "calls": result.calls,
    }
    if result.order_sensitivity is not None:
        outputs["order_sensitivity"] = result.order_sensitivity
        outputs["swapped_scores"] = list(result.swapped_scores or ())
    if model in tested:
        outputs["warning"] = f"the judge model {model} is also a model under test in this mission"
    return outputs


def judge_expectations(expect: Mapping[str, Any], outputs: Mapping[str, Any]) -> list[str]:
    """``expect: {min_score, min_mean_score}`` on a judge's scores."""
    problems: list[str] = []
    scores = [float(s) for s in outputs.get("scores") or ()]
    if "min_score" in expect and scores and max(scores) < float(expect["min_score"]):
        problems.append(f"expect.min_score: the best score is {max(scores):.3f}, below {float(expect['min_score']):g}")
    if "min_mean_score" in expect and scores:
        mean = sum(scores) / len(scores)
        if mean < float(expect["min_mean_score"]):
            problems.append(
                f"expect.min_mean_score: the mean score is {mean:.3f}, below {float(expect['min_mean_score']):g}"
            )
    return problems


register(
    StepType(
        name="judge",
        schema=JUDGE_SCHEMA,
        run=_run,
        aliases=("Judge",),
        family="llm",
        expect_keys=JUDGE_EXPECT_KEYS,
        check_expect=judge_expectations,
    )
)
