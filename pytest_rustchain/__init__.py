"""pytest-rustchain: run RustChain-style mission files as pytest tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "Mission",
    "MissionError",
    "MissionFormatError",
    "MissionResult",
    "StepResult",
    "StepStatus",
    "load_mission",
    "run_mission",
]

if TYPE_CHECKING:
    from pytest_rustchain.api import load_mission, run_mission
    from pytest_rustchain.errors import MissionError, MissionFormatError
    from pytest_rustchain.model import Mission, MissionResult, StepResult, StepStatus

# pytest imports the plugin in every run of every project that has it installed; the loader, the
# template engine and the shell parser are imported when a mission is first needed, not before.
_WHERE = {
    "load_mission": "pytest_rustchain.api",
    "run_mission": "pytest_rustchain.api",
    "MissionError": "pytest_rustchain.errors",
    "MissionFormatError": "pytest_rustchain.errors",
    "Mission": "pytest_rustchain.model",
    "MissionResult": "pytest_rustchain.model",
    "StepResult": "pytest_rustchain.model",
    "StepStatus": "pytest_rustchain.model",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_rustchain' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
