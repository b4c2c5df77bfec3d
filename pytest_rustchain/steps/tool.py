"""The ``tool`` step type: calls a tool that a plugin or ``conftest.py`` registered."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from typing import Any

from pytest_rustchain.errors import StepError
from pytest_rustchain.steps.base import Outputs, StepContext, StepType, closest, register

__all__ = ["INTERNAL_TOOLS", "register_tool", "tools", "unknown_tool_hint", "unregister_tool"]

ToolFunc = Callable[[Mapping[str, Any], StepContext], Mapping[str, Any]]

_TOOLS: dict[str, ToolFunc] = {}

#: RustChain tools that only make sense inside RustChain's own runtime, with the reason.
INTERNAL_TOOLS: dict[str, str] = {
    "github_spec_kit": "it drives GitHub's Spec Kit CLI through RustChain's agent runtime, which has no "
    "equivalent here; run the `specify` CLI with a command step instead",
    "wait_for_parallel": "it waits for RustChain's concurrent agents; steps here run one at a time and "
    "missions run in parallel with pytest-xdist, so there is nothing to wait for",
}


def _run_as(step_type: str, params: Mapping[str, Any], ctx: StepContext) -> Mapping[str, Any]:
    # The runner's run_step applies the same safety check, containment and timeout as a written step.
    from pytest_rustchain.llm.runtime import runtime_of  # runtime lives with the LLM layer

    return runtime_of(ctx.extras).run_step(step_type, params)


def _path_param(params: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(params)
    if "file_path" in out and "path" not in out:
        out["path"] = out.pop("file_path")
    return out


def _csv_loader(params: Mapping[str, Any], ctx: StepContext) -> Mapping[str, Any]:
    p = _path_param(params)
    unknown = set(p) - {"path", "delimiter", "has_headers"}
    if unknown:
        raise StepError(
            f"csv_loader: unknown parameters {', '.join(sorted(unknown))} (known: path, delimiter, has_headers)"
        )
    text = str(_run_as("read_file", {"path": p["path"]}, ctx).get("content", ""))
    rows = list(csv.reader(io.StringIO(text), delimiter=str(p.get("delimiter", ","))))
    if p.get("has_headers", True) and rows:
        headers, body = rows[0], rows[1:]
        records: list[Any] = [dict(zip(headers, row, strict=False)) for row in body]
    else:
        headers, records = [], rows
    return {"path": p["path"], "headers": headers, "rows": records, "count": len(records)}


def _file_read(params: Mapping[str, Any], ctx: StepContext) -> Mapping[str, Any]:
    return _run_as("read_file", _path_param(params), ctx)


def _create_file(params: Mapping[str, Any], ctx: StepContext) -> Mapping[str, Any]:
    return _run_as("create_file", _path_param(params), ctx)


def _http(params: Mapping[str, Any], ctx: StepContext) -> Mapping[str, Any]:
    return _run_as("http", params, ctx)


BUILTIN_TOOLS: dict[str, ToolFunc] = {
    "csv_loader": _csv_loader,
    "file_read": _file_read,
    "create_file": _create_file,
    "http": _http,
}
_TOOLS.update(BUILTIN_TOOLS)


def register_tool(name: str, func: ToolFunc) -> None:
    _TOOLS[name] = func


def unregister_tool(name: str) -> None:
    _TOOLS.pop(name, None)


def tools() -> Mapping[str, ToolFunc]:
    return _TOOLS


def unknown_tool_hint(name: str) -> str:
    if name in INTERNAL_TOOLS:
        return f"'{name}' is a RustChain-internal tool and is not available: {INTERNAL_TOOLS[name]}"
    known = sorted(_TOOLS)
    match = closest(name, known)
    if not known:
        return "no tools are registered; add one with the pytest_rustchain_tools hook in conftest.py"
    return (
        f"did you mean '{match}'? " if match else ""
    ) + f"registered tools: {', '.join(known)}; add one with the pytest_rustchain_tools hook in conftest.py"


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
