"""The ``agent`` step type: a model works towards an objective by calling tools, one recorded call a turn.

Every tool call is an action the model proposes, so it is untrusted input and goes through the same
machinery as a step written by hand:

1. the tool must be one the step offers (``tools``), and its arguments must match the step type's
   parameter schema (the one the loader checks written steps against); otherwise an error goes back
   to the model and the call counts as ``invalid``;
2. the arguments are never template-rendered;
3. ``tool_policy`` may narrow what is allowed (a stricter ``level``, the programs a ``command`` may
   run); it never widens the mission's policy;
4. the runner's safety check judges the call under the mission policy (narrowed): a blocked call is
   **rejected** (the model reads ``BLOCKED RC-...`` with the reason and may try something else), and a
   call with a critical finding **terminates** the step at once; neither runs;
5. an approved call runs through the runner (containment, sandbox, timeout), and its capped, masked
   result goes back to the model.

The loop ends when the model answers without calling a tool, when ``stop_when`` passes, or at a limit
(``max_iterations``, ``max_tool_calls``, ``max_total_tokens``, ``max_cost_usd``, the step's timeout),
which fails the step naming the limit.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any, Final

from pytest_rustchain.errors import StepError, StepSkipped, UnsafeStepError
from pytest_rustchain.levels import LEVELS
from pytest_rustchain.llm.cassette import CassetteError, CassetteMiss, NoLiveProvider
from pytest_rustchain.llm.config import ConfigError, Target
from pytest_rustchain.llm.providers import ChatRequest, ProviderError
from pytest_rustchain.llm.runtime import LLMRuntime, runtime_of
from pytest_rustchain.steps.base import Outputs, StepContext, StepType, canonical_name, register, registry

__all__ = ["AGENT_SCHEMA", "RUSTCHAIN_TOOL_NAMES", "agent_expectations", "tool_name"]

_CRITICAL: Final = 100
_DEFAULT_TOOLS: Final = ("list_directory", "read_file", "create_file", "edit_file", "command")
_DEFAULT_SYSTEM: Final = (
    "You are an agent working in a project directory. Use the tools to reach the objective. Paths are "
    "relative to the project directory. Every tool call is checked by a safety policy; a call that is "
    "BLOCKED did not run. When the objective is reached, answer without calling a tool."
)

#: RustChain's tool names and their step types here.
RUSTCHAIN_TOOL_NAMES: Final[dict[str, str]] = {
    "file_create": "create_file",
    "file_write": "create_file",
    "write_file": "create_file",
    "file_read": "read_file",
    "file_edit": "edit_file",
    "file_list": "list_directory",
    "list_files": "list_directory",
    "shell": "command",
    "execute_command": "command",
    "run_command": "command",
    "json_yaml_loader": "parse_yaml",
}
# Step types an agent may not be offered: they would nest models inside the model's own loop.
_NOT_TOOLS: Final = frozenset({"agent", "llm", "chain", "judge", "noop", "tool"})

_LIMIT: Final = {"type": "integer", "minimum": 1}
AGENT_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "anyOf": [{"required": ["objective"]}, {"required": ["task"]}],
    "properties": {
        "objective": {"type": "string", "minLength": 1},
        "task": {"type": "string", "minLength": 1},
        "name": {"type": "string"},
        "system": {"type": "string"},
        "provider": {"type": "string", "minLength": 1},
        "model": {"type": "string", "minLength": 1},
        "role": {"type": "string", "minLength": 1},
        "temperature": {"type": "number", "minimum": 0},
        "max_tokens": {"type": "integer", "minimum": 1},
        "seed": {"type": "integer"},
        "tools": {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True},
        "tool_policy": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "level": {"enum": sorted(LEVELS)},
                "command": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "programs": {"type": "array", "items": {"type": "string", "minLength": 1}},
                        "shell": {"type": "boolean"},
                    },
                },
            },
        },
        "max_iterations": {"type": "integer", "minimum": 1, "maximum": 200},
        "max_tool_calls": _LIMIT,
        "max_total_tokens": _LIMIT,
        "max_cost_usd": {"type": "number", "exclusiveMinimum": 0},
        "max_result_chars": {"type": "integer", "minimum": 200, "maximum": 100000},
        "stop_when": {
            "type": "object",
            "additionalProperties": False,
            "required": ["command"],
            "properties": {"command": {"type": "string", "minLength": 1}},
        },
        "context_file": {"type": "string", "minLength": 1},
    },
}


def tool_name(name: str) -> str:
    """The step type a tool name means (``file_create`` -> ``create_file``); unknown names unchanged."""
    mapped = RUSTCHAIN_TOOL_NAMES.get(name)
    if mapped is not None:
        return mapped
    return canonical_name(name) or name


def _offered_tools(names: list[str]) -> dict[str, dict[str, Any]]:
    """Tool name -> {step_type, tool, schema} for the names a mission lists; unknown names are an error."""
    from pytest_rustchain.steps.tool import tools as registered_tools
    from pytest_rustchain.steps.tool import unknown_tool_hint

    offered: dict[str, dict[str, Any]] = {}
    types = registry()
    for raw in names:
        name = tool_name(raw)
        if name in types and name not in _NOT_TOOLS:
            offered[name] = {"step_type": name, "schema": dict(types[name].schema)}
        elif raw in registered_tools():
            offered[raw] = {"step_type": "tool", "tool": raw, "schema": {"type": "object"}}
        elif name in _NOT_TOOLS:
            raise StepError(f"'{raw}' cannot be an agent tool: it would run a model or nothing inside the agent")
        else:
            usable = sorted(n for n in types if n not in _NOT_TOOLS)
            raise StepError(
                f"unknown agent tool '{raw}'\n"
                f"HINT: agent tools are step types ({', '.join(usable)}) or registered tools; "
                f"{unknown_tool_hint(raw)}"
            )
    return offered


def _tool_specs(offered: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
    specs = []
    for name, info in offered.items():
        schema = dict(info["schema"])
        schema.pop("$schema", None)
        kind = "step type" if info["step_type"] != "tool" else "tool"
        specs.append({"name": name, "description": f"The {name} {kind} of pytest-rustchain missions.",
                      "parameters": schema})  # fmt: skip
    return tuple(specs)


def _program_of(args: Mapping[str, Any]) -> str:
    command = str(args.get("command", ""))
    if args.get("args") is None and not args.get("shell"):
        try:
            parts = shlex.split(command)
        except ValueError:
            parts = command.split()
        command = parts[0] if parts else ""
    return PurePosixPath(command).name


def _narrowed(policy: Mapping[str, Any], step_type: str, args: Mapping[str, Any]) -> str | None:
    """Why ``tool_policy`` refuses this call, or None."""
    command_rules = policy.get("command")
    if step_type == "command" and isinstance(command_rules, Mapping):
        if args.get("shell") and not command_rules.get("shell", False):
            return "tool_policy: shell: true is not allowed for this agent (tool_policy.command.shell)"
        programs = command_rules.get("programs")
        if programs is not None:
            program = _program_of(args)
            if program not in programs:
                return (
                    f"tool_policy: program '{program}' is not one of the programs this agent may run "
                    f"({', '.join(programs)})"
                )
    return None


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - limit} characters cut ...]\n{text[-half:]}"


def _result_text(step_type: str, outputs: Mapping[str, Any], limit: int) -> str:
    if step_type in ("command", "compile_code", "run_tests", "lint_code", "format_code"):
        parts = [f"exit code {outputs.get('exit_code')}"]
        for stream in ("stdout", "stderr"):
            text = str(outputs.get(stream) or "")
            if text:
                parts.append(f"{stream}:\n{text}")
        return _cap("\n".join(parts), limit)
    if step_type == "read_file":
        return _cap(str(outputs.get("content", "")), limit)
    try:
        text = json.dumps(dict(outputs), default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = str(dict(outputs))
    return _cap(text, limit)


def _target(params: Mapping[str, Any], runtime: LLMRuntime) -> Target | None:
    settings = runtime.session.settings
    provider = params.get("provider")
    role = params.get("role") or ("agent" if "agent" in settings.roles else None)
    try:
        return settings.resolve(provider=provider, model=params.get("model"), role=role)
    except ConfigError:
        if provider is None and params.get("role") is None and not settings.roles:
            return None  # nothing configured: replay only, else skip
        raise


class _Loop:
    """One agent run: the conversation, the counters and the log of tool calls."""

    def __init__(self, params: Mapping[str, Any], ctx: StepContext, runtime: LLMRuntime) -> None:
        self.params = params
        self.ctx = ctx
        self.runtime = runtime
        self.started = time.monotonic()
        self.offered = _offered_tools(list(params.get("tools") or _DEFAULT_TOOLS))
        self.specs = _tool_specs(self.offered)
        self.policy: Mapping[str, Any] = params.get("tool_policy") or {}
        self.level = self.policy.get("level")
        self.limit_chars = int(params.get("max_result_chars", 4000))
        self.calls: list[dict[str, Any]] = []
        self.iterations = 0
        self.usage = {"input_tokens": 0, "output_tokens": 0}
        self.costs: list[float | None] = []
        self.sources: list[str] = []
        self.content = ""
        self.stopped_by = ""

    # -- bookkeeping ---------------------------------------------------------------------------

    def outputs(self) -> dict[str, Any]:
        blocked = sum(1 for c in self.calls if c["verdict"] in ("reject", "terminate"))
        distinct = sorted(set(self.sources))
        out: dict[str, Any] = {
            "content": self.content,
            "output": self.content,
            "iterations": self.iterations,
            "tool_calls": list(self.calls),
            "tool_call_count": len(self.calls),
            "blocked_actions": blocked,
            "invalid_calls": sum(1 for c in self.calls if c["verdict"] == "invalid"),
            "usage": dict(self.usage),
            "cost_usd": None if not self.costs or None in self.costs else round(sum(c or 0 for c in self.costs), 6),
            "source": "+".join(distinct),
            "stopped_by": self.stopped_by,
        }
        if self.content.strip().startswith("{"):
            try:
                data = json.loads(self.content)
            except json.JSONDecodeError:
                data = None
            if isinstance(data, dict):
                out["json"] = data
                for key, value in data.items():
                    out.setdefault(str(key), value)
        return out

    def fail(self, message: str) -> StepError:
        return StepError(message, outputs=self.outputs())

    def _check_limits(self) -> None:
        total = self.usage["input_tokens"] + self.usage["output_tokens"]
        limit = self.params.get("max_total_tokens")
        if limit is not None and total > int(limit):
            raise self.fail(f"the agent used {total} tokens, over max_total_tokens ({limit})")
        limit_cost = self.params.get("max_cost_usd")
        if limit_cost is not None:
            if None in self.costs:
                raise self.fail(
                    "max_cost_usd is set but the price of the model is unknown\n"
                    'HINT: add "MODEL INPUT_USD OUTPUT_USD" to mission_llm_prices'
                )
            spent = sum(c or 0 for c in self.costs)
            if spent > float(limit_cost):
                raise self.fail(f"the agent spent ${spent:.6f}, over max_cost_usd (${limit_cost})")
        if time.monotonic() - self.started > self.ctx.timeout:
            raise self.fail(f"the agent ran past the step's timeout ({self.ctx.timeout:g} s)")

    # -- the loop --------------------------------------------------------------------------------

    def first_messages(self) -> list[dict[str, Any]]:
        objective = str(self.params.get("objective") or self.params.get("task"))
        context_file = self.params.get("context_file")
        if context_file:
            try:
                text = str(self.runtime.run_step("read_file", {"path": context_file}).get("content", ""))
            except (StepError, UnsafeStepError) as exc:
                raise StepError(f"context_file {context_file}: {exc}") from None
            objective += f"\n\nContext ({context_file}):\n{_cap(text, self.limit_chars * 4)}"
        return [
            {"role": "system", "content": str(self.params.get("system") or _DEFAULT_SYSTEM)},
            {"role": "user", "content": objective},
        ]

    def run(self) -> Outputs:
        target = _target(self.params, self.runtime)
        model = target.model if target is not None else str(self.params.get("model") or "default")
        sampling = {k: self.params[k] for k in ("temperature", "max_tokens", "seed") if k in self.params}
        messages = self.first_messages()
        max_iterations = int(self.params.get("max_iterations", 10))
        max_calls = self.params.get("max_tool_calls")
        no_provider = "no LLM provider is configured (mission_llm_providers / mission_llm_roles)"
        while True:
            if self.iterations >= max_iterations:
                raise self.fail(
                    f"the agent reached max_iterations ({max_iterations}) without a final answer\n"
                    "HINT: raise max_iterations, or set stop_when to end the loop when the work is done"
                )
            self.iterations += 1
            request = ChatRequest(model=model, messages=tuple(messages), tools=self.specs, tool_choice="auto",
                                  params=sampling)  # fmt: skip
            try:
                reply = self.runtime.session.chat(
                    request,
                    target=target,
                    step=self.ctx.step_id,
                    repeat=self.runtime.repeat,
                    no_live_reason=no_provider,
                )
            except NoLiveProvider as exc:
                raise StepSkipped(str(exc)) from None
            except (CassetteMiss, CassetteError, ProviderError) as exc:
                raise self.fail(f"turn {self.iterations}: {exc}") from None
            response = reply.response
            self.usage["input_tokens"] += response.usage.input_tokens
            self.usage["output_tokens"] += response.usage.output_tokens
            self.costs.append(reply.cost_usd)
            self.sources.append(reply.source)
            self.content = response.content
            self._check_limits()
            if not response.tool_calls:
                self.stopped_by = "answer"
                return self.outputs()
            messages.append(
                {"role": "assistant", "content": response.content,
                 "tool_calls": [t.to_dict() for t in response.tool_calls]}
            )  # fmt: skip
            for call in response.tool_calls:
                if max_calls is not None and len(self.calls) >= int(max_calls):
                    raise self.fail(f"the agent asked for more than max_tool_calls ({max_calls}) tool calls")
                result = self.tool_call(call.name, dict(call.arguments))
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
            self._check_limits()
            if self.stop_when_passes():
                self.stopped_by = "stop_when"
                return self.outputs()

    def stop_when_passes(self) -> bool:
        stop = self.params.get("stop_when")
        if not stop:
            return False
        try:
            outputs = self.runtime.run_step("command", {"command": stop["command"]})
        except UnsafeStepError as exc:
            raise self.fail(f"stop_when was blocked by the safety policy:\n{exc.explanation}") from None
        except StepError:
            return False
        return bool(outputs.get("exit_code", 0) == 0)

    def tool_call(self, name: str, args: dict[str, Any]) -> str:
        """Judge and run one call; the text that goes back to the model."""
        index = len(self.calls) + 1
        entry: dict[str, Any] = {"index": index, "id": f"{self.ctx.step_id}/{index}:{name}", "name": name,
                                 "arguments": args, "verdict": "approve", "status": "passed", "rules": [],
                                 "risk": 0, "message": "", "duration": 0.0}  # fmt: skip
        self.calls.append(entry)
        started = time.monotonic()
        try:
            return self._tool_call(entry, name, args)
        finally:
            entry["duration"] = round(time.monotonic() - started, 4)
            entry["arguments"] = self.runtime.masker.value(args)

    def _invalid(self, entry: dict[str, Any], message: str) -> str:
        entry.update(verdict="invalid", status="invalid", message=message)
        return f"ERROR: {message}"

    def _tool_call(self, entry: dict[str, Any], name: str, args: dict[str, Any]) -> str:
        info = self.offered.get(name) or self.offered.get(tool_name(name))
        if info is None:
            return self._invalid(entry, f"unknown tool '{name}'; the tools are: {', '.join(self.offered)}")
        step_type = str(info["step_type"])
        entry["step_type"] = step_type if step_type != "tool" else f"tool:{info['tool']}"
        if "_unparsed" in args and len(args) == 1:
            return self._invalid(entry, f"the arguments of {name} are not valid JSON: {str(args['_unparsed'])[:200]}")
        import jsonschema  # loaded only when an agent calls a tool

        errors = sorted(jsonschema.Draft202012Validator(info["schema"]).iter_errors(args), key=lambda e: list(e.path))
        if errors:
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in errors[0].absolute_path)
            return self._invalid(entry, f"invalid arguments for {name}{where}: {errors[0].message}")
        refused = _narrowed(self.policy, step_type, args)
        if refused is not None:
            entry.update(verdict="reject", status="blocked", message=refused, rules=["tool_policy"])
            return f"BLOCKED {refused}\nHINT: use one of the allowed programs, or reach the objective another way"
        params = {"tool": info["tool"], "parameters": args} if step_type == "tool" else args
        try:
            outputs = self.runtime.run_step(step_type, params, level=self.level)
        except UnsafeStepError as exc:
            score = int(getattr(exc, "score", 0) or 0)
            entry.update(risk=score, rules=list(getattr(exc, "rule_ids", ()) or ()))
            explanation = self.runtime.masker.text(exc.explanation)
            if score >= _CRITICAL:
                entry.update(verdict="terminate", status="blocked", message=explanation)
                raise self.fail(
                    f"the agent was stopped: tool call {entry['id']} has a critical finding and did not run\n"
                    f"{explanation}"
                ) from None
            entry.update(verdict="reject", status="blocked", message=explanation)
            return _cap(explanation, self.limit_chars)
        except StepError as exc:
            outputs = dict(exc.outputs)
            entry.update(status="failed", message=self.runtime.masker.text(exc.message.splitlines()[0]))
            detail = _result_text(step_type, outputs, self.limit_chars) if outputs else ""
            return self.runtime.masker.text(_cap(f"FAILED: {exc.message}\n{detail}".rstrip(), self.limit_chars))
        return self.runtime.masker.text(_result_text(step_type, outputs, self.limit_chars))


def _run(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
    runtime = runtime_of(ctx.extras)
    try:
        loop = _Loop(params, ctx, runtime)
    except ConfigError as exc:
        raise StepError(str(exc)) from None
    try:
        return loop.run()
    except ConfigError as exc:
        raise StepError(str(exc), outputs=loop.outputs()) from None


# -- expect ------------------------------------------------------------------------------------


def _names(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [tool_name(str(v)) for v in items]


def _called(outputs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in outputs.get("tool_calls") or () if isinstance(c, Mapping)]


def _call_type(call: Mapping[str, Any]) -> str:
    return tool_name(str(call.get("name", "")))


def agent_expectations(expect: Mapping[str, Any], outputs: Mapping[str, Any]) -> list[str]:
    """The agent-only ``expect`` keys; each problem is one message."""
    problems: list[str] = []
    calls = _called(outputs)
    ran = [c for c in calls if c.get("verdict") == "approve"]
    ran_names = [_call_type(c) for c in ran]
    seen = ", ".join(ran_names) or "none"
    if "tool_called" in expect:
        missing = [n for n in _names(expect["tool_called"]) if n not in ran_names]
        if missing:
            problems.append(f"expect.tool_called: {', '.join(missing)} never ran (tool calls that ran: {seen})")
    if "tool_not_called" in expect:
        present = [n for n in _names(expect["tool_not_called"]) if n in ran_names]
        if present:
            problems.append(f"expect.tool_not_called: {', '.join(present)} ran")
    if "tool_sequence" in expect:
        spec = expect["tool_sequence"]
        exact = isinstance(spec, Mapping) and bool(spec.get("exact"))
        wanted = _names(spec.get("tools") if isinstance(spec, Mapping) else spec)
        if exact:
            if ran_names != wanted:
                problems.append(f"expect.tool_sequence: expected exactly {', '.join(wanted)}; ran {seen}")
        else:
            it = iter(ran_names)
            if not all(any(n == w for n in it) for w in wanted):
                problems.append(f"expect.tool_sequence: expected {', '.join(wanted)} in this order; ran {seen}")
    if "tool_args" in expect:
        for want in expect["tool_args"] if isinstance(expect["tool_args"], list) else [expect["tool_args"]]:
            name = tool_name(str(want.get("tool", "")))
            args = want.get("args") or {}
            if not any(_call_type(c) == name and _partial_match(args, c.get("arguments") or {}) for c in ran):
                problems.append(f"expect.tool_args: no {name} call ran with arguments including {json.dumps(args)}")
    if "blocked_actions" in expect and int(outputs.get("blocked_actions") or 0) != int(expect["blocked_actions"]):
        blocked = [f"{c.get('id')} ({', '.join(c.get('rules') or ()) or c.get('verdict')})" for c in calls
                   if c.get("verdict") in ("reject", "terminate")]  # fmt: skip
        problems.append(
            f"expect.blocked_actions: {outputs.get('blocked_actions')} blocked (expected {expect['blocked_actions']})"
            + (f": {'; '.join(blocked)}" if blocked else "")
        )
    if "max_iterations" in expect and int(outputs.get("iterations") or 0) > int(expect["max_iterations"]):
        problems.append(f"expect.max_iterations: {outputs.get('iterations')} turns, limit {expect['max_iterations']}")
    if "matches" in expect and not re.search(str(expect["matches"]), str(outputs.get("content") or ""), re.MULTILINE):
        problems.append(f"expect.matches: the final answer does not match {expect['matches']!r}")
    if "contains" in expect and str(expect["contains"]) not in str(outputs.get("content") or ""):
        problems.append(f"expect.contains: the final answer does not contain {expect['contains']!r}")
    return problems


def _partial_match(want: Any, got: Any) -> bool:
    if isinstance(want, Mapping):
        return isinstance(got, Mapping) and all(k in got and _partial_match(v, got[k]) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(got, list) and len(want) == len(got) and all(map(_partial_match, want, got))
    return bool(want == got or (isinstance(want, str) and isinstance(got, str) and want in got))


AGENT_EXPECT_KEYS: Final = frozenset(
    {"tool_called", "tool_not_called", "tool_sequence", "tool_args", "blocked_actions", "max_iterations", "matches",
     "contains"}
)  # fmt: skip

register(
    StepType(
        name="agent",
        schema=AGENT_SCHEMA,
        run=_run,
        aliases=("Agent",),
        family="agent",
        expect_keys=AGENT_EXPECT_KEYS,
        check_expect=agent_expectations,
    )
)
