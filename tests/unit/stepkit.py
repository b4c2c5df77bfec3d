"""Helpers for unit tests of step types: a context and a run that validates parameters first."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema

from pytest_rustchain.steps.base import Outputs, StepContext, registry


def make_ctx(ws: Path, *, cwd: Path | None = None, max_file_bytes: int = 50 * 1024 * 1024) -> StepContext:
    return StepContext(
        step_id="step",
        workspace=ws,
        cwd=cwd or ws,
        env={},
        timeout=30.0,
        mission_path=ws.parent / "m.mission.yaml",
        rootdir=ws.parent,
        max_file_bytes=max_file_bytes,
    )


def run(step: str, ctx: StepContext, *, check_schema: bool = True, **params: Any) -> Outputs:
    """Run a step type as the runner does: parameters validated by its schema first."""
    step_type = registry()[step]
    if check_schema:
        jsonschema.Draft202012Validator(step_type.schema).validate(params)
    return step_type.run(params, ctx)


def schema_accepts(step: str, params: Mapping[str, Any]) -> bool:
    return bool(jsonschema.Draft202012Validator(registry()[step].schema).is_valid(params))
