"""The shipped compiled checks of the mission schema: current, used, and agreeing with a fresh compile."""

from __future__ import annotations

from typing import Any

import fastjsonschema
import pytest

from pytest_rustchain import loader, schemagen
from pytest_rustchain._generated import mission_step, mission_top


def test_shipped_checks_match_the_schema() -> None:
    """The compiled checks in _generated/ were made from mission.schema.json as it is now."""
    current = schemagen.schema_sha256()
    for module in (mission_top, mission_step):
        assert current == module.SCHEMA_SHA256, (
            f"{module.__name__} was generated from another mission.schema.json\n"
            "HINT: run python -m pytest_rustchain.schemagen and commit pytest_rustchain/_generated/"
        )


def test_loader_uses_the_shipped_checks() -> None:
    """Loading a mission does not compile the top-level and step checks again."""
    assert loader._fast_check("top") is mission_top.validate
    assert loader._fast_check("step") is mission_step.validate


TOPS: list[dict[str, Any]] = [
    {"name": "m", "steps": [{"id": "a", "step_type": "noop"}]},
    {"name": "m", "steps": [], "unknown_key": 1},
    {"name": 3, "steps": []},
    {"name": "m", "config": {"timeout_seconds": "soon"}, "steps": []},
]
STEPS: list[dict[str, Any]] = [
    {"id": "a", "step_type": "noop"},
    {"id": "a", "step_type": "command", "parameters": {"command": "true"}, "expect": {"exit_code": 0}},
    {"id": "a", "step_type": "noop", "timeout_seconds": "long"},
    {"id": "", "step_type": "noop"},
    {"id": "a", "step_type": "noop", "depends_on": "b", "bogus": True},
]


def _verdict(check: Any, data: Any) -> bool:
    try:
        check(data)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


@pytest.mark.parametrize(("key", "data"), [("top", d) for d in TOPS] + [("step", d) for d in STEPS])
def test_shipped_check_agrees_with_a_fresh_compile(key: str, data: dict[str, Any]) -> None:
    """The shipped check and one compiled now from the schema accept and refuse the same documents."""
    shipped = mission_top.validate if key == "top" else mission_step.validate
    fresh = schemagen.compile_check(loader._subschema(key))
    assert _verdict(shipped, data) == _verdict(fresh, data)
