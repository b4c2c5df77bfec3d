"""Step types: the registry and every built-in family (each module is imported when a mission first
uses one of its types: ``registry()["llm"]`` imports ``steps.llm``)."""

from __future__ import annotations

from typing import Any

from pytest_rustchain.steps.base import (
    Outputs,
    StepContext,
    StepType,
    Substeps,
    canonical_name,
    closest,
    register,
    registry,
)

__all__ = [
    "Outputs",
    "StepContext",
    "StepType",
    "Substeps",
    "agent",
    "canonical_name",
    "closest",
    "code",
    "command",
    "data",
    "files",
    "http",
    "judge",
    "llm",
    "register",
    "registry",
    "tool",
]

_FAMILIES = frozenset({"agent", "code", "command", "data", "files", "http", "judge", "llm", "tool"})


def __getattr__(name: str) -> Any:
    if name in _FAMILIES:
        import importlib

        return importlib.import_module(f"pytest_rustchain.steps.{name}")
    raise AttributeError(f"module 'pytest_rustchain.steps' has no attribute {name!r}")
