"""The plugin's own hooks: other plugins and ``conftest.py`` files add step types and tools."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    # Annotations only: the hooks are declared at pytest start-up, before any step module is needed.
    from pytest_rustchain.steps.base import StepContext, StepType

hookspec = pluggy.HookspecMarker("pytest")

#: A tool: called with the step's ``parameters`` and its context; returns the step's outputs.
Tool = Callable[[Mapping[str, Any], "StepContext"], Mapping[str, Any]]


@hookspec
def pytest_rustchain_step_types() -> Sequence[StepType]:
    """Return step types to register (``StepType(name=..., schema=..., run=...)``).

    Called once per process at configuration; a name that is already taken is an error.
    """
    raise AssertionError("a hook specification is never called")


@hookspec
def pytest_rustchain_tools() -> Mapping[str, Tool]:
    """Return tools for ``step_type: tool`` steps, by name.

    A tool gets the step's ``parameters`` (rendered) and its ``StepContext``, and returns the outputs.
    It runs inside the pytest process, as trusted project code: conftest.py is the project's own.
    """
    raise AssertionError("a hook specification is never called")
