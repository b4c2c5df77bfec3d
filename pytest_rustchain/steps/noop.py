"""The ``noop`` step: runs nothing and passes (a step others depend on, or one that marks a point in a mission)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_rustchain.steps.base import Outputs, StepContext, StepType, register


def _noop(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
    return {"message": str(params.get("message", ""))}


register(
    StepType(
        name="noop",
        schema={"type": "object", "additionalProperties": False, "properties": {"message": {"type": "string"}}},
        run=_noop,
        family="other",
    )
)
