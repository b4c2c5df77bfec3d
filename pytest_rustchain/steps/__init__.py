"""Step types: the registry and every built-in family (importing this registers them)."""

from __future__ import annotations

from pytest_rustchain.steps import agent, code, command, data, files, http, judge, llm, tool
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
