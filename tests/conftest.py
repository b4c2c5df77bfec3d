"""Shared fixtures of the test suite."""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture
def write_mission(pytester: pytest.Pytester):  # type: ignore[no-untyped-def]
    """Write ``name.mission.yaml`` into the pytester directory from dedented YAML text."""

    def write(name: str, text: str) -> None:
        pytester.path.joinpath(f"{name}.mission.yaml").write_text(textwrap.dedent(text), encoding="utf-8")

    return write
