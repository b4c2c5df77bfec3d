"""The ``tool`` step type: calls a tool that a plugin or ``conftest.py`` registered."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pytest_rustchain.errors import StepError
from pytest_rustchain.steps.base import Outputs, StepContext, StepType, closest, register

__all__ = ["register_tool", "tools", "unknown_tool_hint", "unregister_tool"]

ToolFunc = Callable[[Mapping[str, Any], StepContext], Mapping[str, Any]]

_TOOLS: dict[str, ToolFunc] = {}


def register_tool(name: str, func: ToolFunc) -> None:
    _TOOLS[name] = func


def unregister_tool(name: str) -> None:
    _TOOLS.pop(name, None)


def tools() -> Mapping[str, ToolFunc]:
    return _TOOLS


def unknown_tool_hint(name: str) -> str:
    known = sorted(_TOOLS)
    match = closest(name, known)
    if not known:
        return "no tools are registered; add one with the pytest_rustchain_tools hook in conftest.py"
    return (f"did you mean '{match}'? " if match else "") + f"registered tools: {', '.join(known)}"


def _run(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
    name = params["tool"]
    func = _TOOLS.get(name)
    if func is None:
        raise StepError(f"unknown tool '{name}'\nHINT: {unknown_tool_hint(name)}")
    try:
        result = func(dict(params.get("parameters", {})), ctx)
    except StepError:
        raise
    except Exception as exc:
        raise StepError(f"tool '{name}' raised {type(exc).__name__}: {exc}") from None
    if not isinstance(result, Mapping):
        raise StepError(f"tool '{name}' returned {type(result).__name__}, not a mapping of outputs")
    return dict(result)


register(
    StepType(
        name="tool",
        schema={
            "type": "object",
            "additionalProperties": False,
            "required": ["tool"],
            "properties": {
                "tool": {"type": "string", "minLength": 1},
                "parameters": {"type": "object"},
            },
        },
        run=_run,
        family="tools",
    )
)
