"""Aggregation of mission results across workers, the terminal section, the gate and report files."""

from __future__ import annotations

import pytest


def add_options(parser: pytest.Parser) -> None:
    """Register the reporting options (in the ``rustchain`` group)."""


def configure(config: pytest.Config) -> None:
    """Create and register the reporter (controller and workers)."""


def unconfigure(config: pytest.Config) -> None:
    """Unregister the reporter."""
