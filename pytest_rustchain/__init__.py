"""pytest-rustchain: run RustChain-style mission files as pytest tests."""

from __future__ import annotations

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

from pytest_rustchain.api import load_mission, run_mission
from pytest_rustchain.errors import MissionError, MissionFormatError
from pytest_rustchain.model import Mission, MissionResult, StepResult, StepStatus
