"""pytest-rustchain: run RustChain-style mission files as pytest tests.

PYTEST_DONT_REWRITE: the package's asserts are internal invariants, not tests.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType
from typing import TYPE_CHECKING, Any

__all__ = [
    "Mission",
    "MissionError",
    "MissionFormatError",
    "MissionResult",
    "MissionStatus",
    "Outputs",
    "PathUse",
    "SetupFailed",
    "SkipKind",
    "StepContext",
    "StepError",
    "StepResult",
    "StepStatus",
    "StepType",
    "Substeps",
    "__version__",
    "load_mission",
    "run_mission",
]

if TYPE_CHECKING:
    from pytest_rustchain.api import load_mission, run_mission
    from pytest_rustchain.errors import MissionError, MissionFormatError, SetupFailed, StepError
    from pytest_rustchain.model import Mission, MissionResult, MissionStatus, SkipKind, StepResult, StepStatus
    from pytest_rustchain.steps.base import Outputs, PathUse, StepContext, StepType, Substeps

    __version__: str

# pytest imports the plugin in every run of every project that has it installed; the loader, the
# template engine and the shell parser are imported when a mission is first needed, not before.
_WHERE = {
    "load_mission": "pytest_rustchain.api",
    "run_mission": "pytest_rustchain.api",
    "MissionError": "pytest_rustchain.errors",
    "MissionFormatError": "pytest_rustchain.errors",
    "StepError": "pytest_rustchain.errors",
    "SetupFailed": "pytest_rustchain.errors",
    "Mission": "pytest_rustchain.model",
    "MissionResult": "pytest_rustchain.model",
    "MissionStatus": "pytest_rustchain.model",
    "SkipKind": "pytest_rustchain.model",
    "StepResult": "pytest_rustchain.model",
    "StepStatus": "pytest_rustchain.model",
    # The extension API: what a step type in a plugin or conftest.py needs.
    "Outputs": "pytest_rustchain.steps.base",
    "PathUse": "pytest_rustchain.steps.base",
    "StepContext": "pytest_rustchain.steps.base",
    "StepType": "pytest_rustchain.steps.base",
    "Substeps": "pytest_rustchain.steps.base",
}


def _lazy_attributes(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) that imports ``where[name]`` when ``name`` is first asked for:
    the package and its subpackages keep their public names without loading everything up front."""

    def lookup(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        import importlib

        return getattr(importlib.import_module(module), name)

    return lookup


_exported = _lazy_attributes("pytest_rustchain", _WHERE)


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib import metadata

        try:
            return metadata.version("pytest-rustchain")
        except metadata.PackageNotFoundError:  # run from a checkout that was never installed
            return "0+unknown"
    return _exported(name)


class _PlainImports:
    """Finds the package's own modules with Python's path finder, ahead of pytest's assertion rewriter.

    pytest rewrites every module of a distribution that provides a pytest11 plugin: it parses and
    compiles each one itself, and caches the result only where it may write bytecode (not with
    PYTHONDONTWRITEBYTECODE=1 or a read-only site-packages), which costs about a quarter of a second
    per run for this package. Its asserts need no rewriting, so its modules load from the ordinary
    bytecode cache, exactly as outside pytest.
    """

    rustchain_plain_imports = True

    @staticmethod
    def find_spec(name: str, path: Sequence[str] | None = None, target: ModuleType | None = None) -> ModuleSpec | None:
        if not name.startswith("pytest_rustchain."):
            return None
        return PathFinder.find_spec(name, path, target)


if not any(getattr(finder, "rustchain_plain_imports", False) for finder in sys.meta_path):
    sys.meta_path.insert(0, _PlainImports())
