"""Shared fixtures of the test suite."""

from __future__ import annotations

import textwrap
from pathlib import Path

# The plugin imports its loader, runner and shell parser only when a mission is handled, Jinja only
# for real templates, jsonschema only for invalid files, httpx at the first HTTP exchange, regex at
# the first mission pattern, ctypes at the first command step and each step type's module when a mission
# first uses it. pytester's in-process runs drop modules
# first imported inside them, PyYAML's and tree-sitter's compiled parts cannot be imported twice in
# one process, and a second copy of Jinja or jsonschema next to the first one's objects misbehaves;
# importing them here, once, keeps every run on the same modules.
import jinja2.sandbox  # noqa: F401
import jsonschema  # noqa: F401
import jsonschema_specifications  # type: ignore[import-untyped,unused-ignore]  # noqa: F401
import pytest
import referencing  # noqa: F401
import regex  # noqa: F401

import pytest_rustchain.api
import pytest_rustchain.confine
import pytest_rustchain.guard
import pytest_rustchain.jinjaenv
import pytest_rustchain.llm._wire
import pytest_rustchain.missioncache
import pytest_rustchain.plugin
import pytest_rustchain.steps.agent
import pytest_rustchain.steps.code
import pytest_rustchain.steps.command
import pytest_rustchain.steps.data
import pytest_rustchain.steps.files
import pytest_rustchain.steps.http
import pytest_rustchain.steps.judge
import pytest_rustchain.steps.llm
import pytest_rustchain.steps.noop
import pytest_rustchain.steps.tool
import pytest_rustchain.userregex  # noqa: F401

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _terminal_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytester runs lay their output out for 80 columns, whatever terminal runs the suite, and as
    outside CI: with CI or BUILD_NUMBER set, pytest stops shortening its summary lines."""
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("LINES", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)


@pytest.fixture
def write_mission(pytester: pytest.Pytester):  # type: ignore[no-untyped-def]
    """Write ``name.mission.yaml`` into the pytester directory from dedented YAML text."""

    def write(name: str, text: str) -> None:
        pytester.path.joinpath(f"{name}.mission.yaml").write_text(textwrap.dedent(text), encoding="utf-8")

    return write


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A fresh mission workspace (resolved, as the runner gives it to steps)."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    return workspace.resolve()
