"""The ``llm`` step type: one prompt, an answer from a provider or a cassette, validated and retried.

Parameters follow RustChain (``prompt``, ``provider``, ``model``, ``temperature``, ``max_tokens``) and
add ``system``, ``role``, ``response_format``, ``extract``, ``output_file``, ``validate`` with
``max_attempts`` and ``feedback``, ``conversation`` and ``samples``. With ``validate``, a failed check
feeds the validator's error (its masked tail) back to the model and asks again, up to
``max_attempts``; a step that passed only after such a retry reports ``first_try_passed: false``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from pytest_rustchain.errors import StepError, StepSkipped, UnsafeStepError
from pytest_rustchain.llm.cassette import CassetteError, CassetteMiss, NoLiveProvider
from pytest_rustchain.llm.config import ConfigError, Target
from pytest_rustchain.llm.providers import ChatRequest, ProviderError
from pytest_rustchain.llm.runtime import LLMRuntime, runtime_of
from pytest_rustchain.steps.base import Outputs, StepContext, StepType, register

__all__ = ["DEFAULT_FEEDBACK", "LLM_SCHEMA", "extract_code_block", "llm_expectations", "parse_json_answer"]

DEFAULT_FEEDBACK: Final = (
    "Your previous answer did not pass validation (attempt {{ attempt }}).\n"
    "The error was:\n{{ error }}\n"
    "Give the complete corrected answer, in the same format as before."
)
_ERROR_TAIL_LINES: Final = 30
_ERROR_TAIL_CHARS: Final = 4000
_FENCE: Final = re.compile(r"^```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)

_SCHEMA_OBJ: Final = {"type": "object"}
LLM_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["prompt"],
    "properties": {
        "prompt": {"type": "string", "minLength": 1},
        "system": {"type": "string"},
        "provider": {"type": "string", "minLength": 1},
        "model": {"type": "string", "minLength": 1},
        "role": {"type": "string", "minLength": 1},
        "temperature": {"type": "number", "minimum": 0},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "max_tokens": {"type": "integer", "minimum": 1},
        "seed": {"type": "integer"},
        "stop": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "response_format": {
            "oneOf": [
                {"enum": ["text", "json"]},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["json_schema"],
                    "properties": {"json_schema": _SCHEMA_OBJ},
                },
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["schema_file"],
                    "properties": {"schema_file": {"type": "string", "minLength": 1}},
                },
            ]
        },
        "extract": {
            "oneOf": [
                {"enum": ["code_block"]},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["code_block"],
                    "properties": {"code_block": {"type": "string"}},
                },
            ]
        },
        "output_file": {"type": "string", "minLength": 1},
        "validate": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": False,
            "properties": {
                "command": {
                    "oneOf": [
                        {"type": "string", "minLength": 1},
                        {
                            "type": "object",
                            "required": ["command"],
                            "additionalProperties": False,
                            "properties": {
                                "command": {"type": "string", "minLength": 1},
                                "args": {"type": "array", "items": {"type": ["string", "number"]}},
                                "shell": {"type": "boolean"},
                                "working_dir": {"type": "string"},
                            },
                        },
                    ]
                },
                "json_schema": _SCHEMA_OBJ,
                "regex": {"type": "string", "minLength": 1},
                "run_tests": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"path": {"type": "string"}, "language": {"type": "string"}},
                },
            },
        },
        "max_attempts": {"type": "integer", "minimum": 1, "maximum": 20},
        "feedback": {"type": "string", "minLength": 1},
        "conversation": {"type": "string", "minLength": 1},
        "samples": {"type": "integer", "minimum": 1, "maximum": 50},
    },
}


def extract_code_block(text: str, language: str | None = None) -> str | None:
    """The first fenced block (with ``language``, the first one tagged so); None when there is none."""
    for match in _FENCE.finditer(text):
        tag = match.group(1).lower()
        if language is None or tag == language.lower() or (not tag and language is None):
            return match.group(2)
    return None


def parse_json_answer(text: str) -> Any:
    """The JSON in an answer: the whole text, or the first fenced block when the model wrapped it."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        block = extract_code_block(text)
        if block is None:
            raise
        return json.loads(block)


def _tail(text: str) -> str:
    lines = text.rstrip().splitlines()[-_ERROR_TAIL_LINES:]
    out = "\n".join(lines)
    return out[-_ERROR_TAIL_CHARS:]


def _target(params: Mapping[str, Any], runtime: LLMRuntime) -> Target | None:
    settings = runtime.session.settings
    provider = params.get("provider")
    role = params.get("role")
    try:
        return settings.resolve(provider=provider, model=params.get("model"), role=role)
    except ConfigError:
        if provider is None and role is None and not settings.roles:
            return None  # nothing configured at all: skip unless a recording answers
        raise


def _schema_of(params: Mapping[str, Any], ctx: StepContext) -> Mapping[str, Any] | None:
    fmt = params.get("response_format")
    if isinstance(fmt, Mapping) and "json_schema" in fmt:
        return dict(fmt["json_schema"])
    if isinstance(fmt, Mapping) and "schema_file" in fmt:
        path = Path(fmt["schema_file"])
        base = ctx.mission_path.parent
        full = (base / path).resolve()
        try:
            full.relative_to(ctx.rootdir.resolve())
        except ValueError:
            raise StepError(f"response_format.schema_file {path} is outside the project") from None
        try:
            return dict(json.loads(full.read_text("utf-8")))
        except (OSError, ValueError) as exc:
            raise StepError(f"response_format.schema_file {path}: {exc}") from None
    return None


def _response_format(params: Mapping[str, Any], schema: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if schema is not None:
        return {"type": "json_schema", "schema": dict(schema)}
    if params.get("response_format") == "json":
        return {"type": "json"}
    return None


def _validate_schema(data: Any, schema: Mapping[str, Any], what: str) -> str | None:
    import jsonschema  # loaded only when an answer is checked against a schema

    errors = sorted(jsonschema.Draft202012Validator(dict(schema)).iter_errors(data), key=lambda e: list(e.path))
    if not errors:
        return None
    first = errors[0]
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first.absolute_path)
    return f"{what} does not match its JSON Schema at {where}: {first.message}"


def _run_validation(
    validate: Mapping[str, Any], answer: str, data: Any, runtime: LLMRuntime
) -> tuple[str | None, dict[str, Any]]:
    """None when the answer passes; else the error text to show (and feed back). Also the details."""
    if "regex" in validate:
        if re.search(validate["regex"], answer, re.MULTILINE):
            return None, {}
        return f"the answer does not match the regular expression {validate['regex']!r}", {}
    if "json_schema" in validate:
        if data is None:
            try:
                data = parse_json_answer(answer)
            except json.JSONDecodeError as exc:
                return f"the answer is not JSON: {exc}", {}
        return _validate_schema(data, validate["json_schema"], "the answer"), {}
    if "command" in validate:
        spec = validate["command"]
        params = {"command": spec} if isinstance(spec, str) else dict(spec)
        step_type = "command"
    else:
        params = dict(validate["run_tests"] or {})
        step_type = "run_tests"
    try:
        outputs = dict(runtime.run_step(step_type, params))
    except UnsafeStepError:
        raise
    except StepError as exc:
        outputs = dict(exc.outputs)
        text = "\n".join(str(outputs.get(k) or "") for k in ("stderr", "stdout")).strip() or exc.message
        return f"{exc.message.splitlines()[0]}\n{_tail(text)}", {"exit_code": outputs.get("exit_code")}
    code = outputs.get("exit_code", 0)
    if code not in (0, None):
        text = "\n".join(str(outputs.get(k) or "") for k in ("stderr", "stdout")).strip()
        return f"exit code {code}\n{_tail(text)}", {"exit_code": code}
    return None, {"exit_code": code}


def _render_feedback(template: str, error: str, attempt: int) -> str:
    from pytest_rustchain.templating import render_string  # the sandboxed engine, as for every template

    return render_string(template, {"error": error, "attempt": attempt}, strict=True)


def _check_answer(
    content: str,
    params: Mapping[str, Any],
    schema: Mapping[str, Any] | None,
    runtime: LLMRuntime,
    finish_reason: str,
) -> tuple[str, Any, str | None, dict[str, Any]]:
    """(final text, parsed JSON or None, error or None, validation details) of one answer."""
    if not content.strip():
        why = " (finish reason: length; raise max_tokens)" if finish_reason == "length" else ""
        return content, None, f"the answer was empty{why}", {}
    data: Any = None
    if params.get("response_format") not in (None, "text"):
        try:
            data = parse_json_answer(content)
        except json.JSONDecodeError as exc:
            return content, None, f"the answer is not JSON ({exc})", {}
        if schema is not None:
            problem = _validate_schema(data, schema, "the answer")
            if problem:
                return content, data, problem, {}
    text = content
    extract = params.get("extract")
    if extract is not None:
        language = extract.get("code_block") if isinstance(extract, Mapping) else None
        block = extract_code_block(content, language or None)
        if block is None:
            tagged = f" tagged {language}" if language else ""
            return content, data, f"the answer has no fenced code block{tagged} (```...```)", {}
        text = block
    if params.get("output_file"):
        runtime.run_step("create_file", {"path": params["output_file"], "content": text, "overwrite": True})
    validate = params.get("validate")
    if validate:
        problem, details = _run_validation(validate, text, data, runtime)
        if problem:
            return text, data, problem, details
        return text, data, None, details
    return text, data, None, {}


def _run(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
    runtime = runtime_of(ctx.extras)
    session = runtime.session
    try:
        target = _target(params, runtime)
    except ConfigError as exc:
        raise StepError(str(exc)) from None
    schema = _schema_of(params, ctx)
    sampling = {k: params[k] for k in ("temperature", "top_p", "max_tokens", "seed", "stop") if k in params}
    conversation = params.get("conversation")
    history = runtime.conversations.setdefault(conversation, []) if conversation else []
    messages: list[dict[str, Any]] = []
    if params.get("system"):
        messages.append({"role": "system", "content": params["system"]})
    messages.extend(history)
    messages.append({"role": "user", "content": params["prompt"]})
    max_attempts = int(params.get("max_attempts", 1))
    feedback = params.get("feedback", DEFAULT_FEEDBACK)
    model = target.model if target is not None else str(params.get("model") or params.get("role") or "default")
    totals = {"input_tokens": 0, "output_tokens": 0}
    costs: list[float | None] = []
    latency = 0
    sources: list[str] = []
    keys: list[str] = []
    attempt_log: list[dict[str, Any]] = []
    outputs: dict[str, Any] = {}
    problem: str | None = None
    no_provider = "no LLM provider is configured (mission_llm_providers / mission_llm_roles)"

    def ask(msgs: list[dict[str, Any]]) -> Any:
        request = ChatRequest(
            model=model,
            messages=tuple(msgs),
            response_format=_response_format(params, schema),
            params=sampling,
        )
        try:
            reply = session.chat(
                request, target=target, step=ctx.step_id, repeat=runtime.repeat, no_live_reason=no_provider,
                timeout=deadline - time.monotonic(),
            )  # fmt: skip
        except NoLiveProvider as exc:
            raise StepSkipped(str(exc)) from None
        except (CassetteMiss, CassetteError, ProviderError) as exc:
            raise StepError(str(exc), outputs=_partial()) from None
        totals["input_tokens"] += reply.response.usage.input_tokens
        totals["output_tokens"] += reply.response.usage.output_tokens
        costs.append(reply.cost_usd)
        nonlocal latency
        latency += reply.response.latency_ms
        sources.append(reply.source)
        keys.append(reply.key)
        return reply

    def _partial() -> dict[str, Any]:
        return {
            "attempts": len(attempt_log),
            "usage": dict(totals),
            "cost_usd": None if not costs or None in costs else round(sum(c for c in costs if c is not None), 6),
            "latency_ms": latency,
            "source": _source(sources),
            "model": model,
            "cassette_key": keys[0] if keys else None,
        }

    reply = None
    deadline = time.monotonic() + ctx.timeout  # every call and attempt together stay within the step's timeout
    for attempt in range(1, max_attempts + 1):
        reply = ask(messages)
        content = reply.response.content
        try:
            text, data, problem, details = _check_answer(content, params, schema, runtime, reply.response.finish_reason)
        except UnsafeStepError as exc:
            raise StepError(
                f"validation was blocked by the safety policy:\n{exc.explanation}", outputs=_partial()
            ) from None
        except StepError as exc:
            raise StepError(exc.message, outputs={**_partial(), "content": content}) from None
        attempt_log.append({"attempt": attempt, "passed": problem is None, "error": problem or "", **details})
        outputs = {"content": text, "output": text, "raw_content": content}
        if data is not None:
            outputs["json"] = data
            if schema is not None and isinstance(data, Mapping):
                for key, value in data.items():
                    outputs.setdefault(str(key), value)
        if problem is None:
            break
        if attempt < max_attempts:
            messages = [
                *messages,
                {"role": "assistant", "content": content},
                {"role": "user", "content": _render_feedback(feedback, runtime.masker.text(problem), attempt)},
            ]
    assert reply is not None
    samples = [outputs.get("content", "")]
    for _ in range(int(params.get("samples", 1)) - 1):
        samples.append(ask(messages).response.content)
    if conversation:
        history.extend([messages[-1], {"role": "assistant", "content": reply.response.content}])
    outputs.update(_partial())
    outputs.update(
        {
            "attempts": len(attempt_log),
            "first_try_passed": bool(attempt_log and attempt_log[0]["passed"]),
            "finish_reason": reply.response.finish_reason,
            "samples": samples,
            "validation": attempt_log,
        }
    )
    if problem is not None:
        tries = f" after {len(attempt_log)} attempts" if len(attempt_log) > 1 else ""
        raise StepError(f"the answer failed validation{tries}: {problem}", outputs=outputs)
    return outputs


def _source(sources: list[str]) -> str:
    if not sources:
        return ""
    distinct = sorted(set(sources))
    return distinct[0] if len(distinct) == 1 else "+".join(distinct)


# -- expect ----------------------------------------------------------------------------------------


def llm_expectations(expect: Mapping[str, Any], outputs: Mapping[str, Any]) -> list[str]:
    """The ``llm``-only ``expect`` keys; each problem is one message."""
    problems: list[str] = []
    content = str(outputs.get("content") or "")
    if "contains" in expect and str(expect["contains"]) not in content:
        problems.append(f"expect.contains: the answer does not contain {expect['contains']!r}")
    if "not_contains" in expect and str(expect["not_contains"]) in content:
        problems.append(f"expect.not_contains: the answer contains {expect['not_contains']!r}")
    if "matches" in expect and not re.search(str(expect["matches"]), content, re.MULTILINE):
        problems.append(f"expect.matches: the answer does not match {expect['matches']!r}")
    if "finish_reason" in expect and outputs.get("finish_reason") != expect["finish_reason"]:
        problems.append(
            f"expect.finish_reason: expected {expect['finish_reason']!r}, got {outputs.get('finish_reason')!r}"
        )
    usage = outputs.get("usage") or {}
    if "max_output_tokens" in expect and int(usage.get("output_tokens") or 0) > int(expect["max_output_tokens"]):
        problems.append(
            f"expect.max_output_tokens: {usage.get('output_tokens')} output tokens, limit {expect['max_output_tokens']}"
        )
    if "max_cost_usd" in expect:
        cost = outputs.get("cost_usd")
        if cost is None:
            problems.append(
                f"expect.max_cost_usd: the price of model '{outputs.get('model')}' is unknown\n"
                f'HINT: add "{outputs.get("model")} INPUT_USD OUTPUT_USD" to mission_llm_prices'
            )
        elif float(cost) > float(expect["max_cost_usd"]):
            problems.append(f"expect.max_cost_usd: the calls cost ${cost:.6f}, limit ${expect['max_cost_usd']}")
    if "max_latency_ms" in expect and int(outputs.get("latency_ms") or 0) > int(expect["max_latency_ms"]):
        replayed = " (the recorded latency: this answer was replayed)" if outputs.get("source") != "live" else ""
        problems.append(
            f"expect.max_latency_ms: {outputs.get('latency_ms')} ms{replayed}, limit {expect['max_latency_ms']} ms"
        )
    if expect.get("first_try") is True and not outputs.get("first_try_passed"):
        problems.append(f"expect.first_try: the answer passed only on attempt {outputs.get('attempts')}")
    return problems


LLM_EXPECT_KEYS: Final = frozenset(
    {"contains", "not_contains", "matches", "finish_reason", "max_output_tokens", "max_cost_usd", "max_latency_ms",
     "first_try"}
)  # fmt: skip

register(
    StepType(
        name="llm",
        schema=LLM_SCHEMA,
        run=_run,
        aliases=("Llm", "LLM"),
        family="llm",
        paths={"output_file": "write"},
        expect_keys=LLM_EXPECT_KEYS,
        check_expect=llm_expectations,
    )
)


# -- chain -----------------------------------------------------------------------------------------

_NESTED_STEP: Final = {
    "type": "object",
    "additionalProperties": False,
    "required": ["step_type"],
    "properties": {
        "step_name": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_-]{0,63}$"},
        "id": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_-]{0,63}$"},
        "name": {"type": "string"},
        "step_type": {"type": "string", "minLength": 1},
        "parameters": {"type": "object"},
        "timeout_seconds": {"type": "integer", "minimum": 1},
        "expect": {"type": "object"},
    },
}
_PROMPT_KEYS: Final = {k: v for k, v in LLM_SCHEMA["properties"].items() if k not in ("conversation",)}
CHAIN_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **_PROMPT_KEYS,
        "type": {"enum": ["sequential", "parallel", "conditional"]},
        "steps": {"type": "array", "minItems": 1, "items": _NESTED_STEP},
        "conversation": {"oneOf": [{"type": "boolean"}, {"type": "string", "minLength": 1}]},
        "nested_steps": {"type": "array", "items": {"type": "string"}},
    },
    "oneOf": [{"required": ["prompt"]}, {"required": ["steps"]}, {"required": ["nested_steps"]}],
}


def _chain(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
    """Prompt form: one ``llm`` call. Nested form: the loader turned the nested steps into steps of
    their own (``chain/step``), which ran before this one; the chain gathers their outputs."""
    if "prompt" in params:
        llm_params = {k: v for k, v in params.items() if k in LLM_SCHEMA["properties"] and k != "conversation"}
        if isinstance(params.get("conversation"), str):
            llm_params["conversation"] = params["conversation"]
        return _run(llm_params, ctx)
    runtime = runtime_of(ctx.extras)
    nested = list(params.get("nested_steps") or ())
    if not nested:
        raise StepError("a nested chain must be expanded by the loader before it runs (internal error)")
    results: dict[str, Any] = {}
    last: Mapping[str, Any] = {}
    for step_id in nested:
        outputs = runtime.outputs_of(step_id)
        if outputs is None:
            raise StepError(f"nested step '{step_id}' did not pass, so the chain stops there")
        results[step_id.split("/", 1)[1]] = dict(outputs)
        last = outputs
    return {**dict(last), "steps": results}


register(
    StepType(
        name="chain",
        schema=CHAIN_SCHEMA,
        run=_chain,
        aliases=("Chain",),
        family="llm",
        expect_keys=LLM_EXPECT_KEYS,
        check_expect=llm_expectations,
    )
)
