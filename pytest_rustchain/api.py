"""The Python API: load and run a mission without a pytest session."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_rustchain import loader
from pytest_rustchain.model import Mission, MissionResult
from pytest_rustchain.runner import ChainRun, RunSettings, run_steps

__all__ = ["load_mission", "run_mission"]


def load_mission(path: str | Path, *, compat: bool = False, rootdir: str | Path | None = None) -> Mission:
    """Load and check a mission file; raises ``MissionFormatError`` with a clean message."""
    file = Path(path).resolve()
    root = Path(rootdir).resolve() if rootdir is not None else Path.cwd()
    try:
        display = str(file.relative_to(root))
    except ValueError:
        display = str(file)
    return loader.load_mission(file, display_path=display, options=loader.LoadOptions(compat=compat, rootdir=root))


def run_mission(
    mission: str | Path | Mission,
    *,
    workspace: str | Path | None = None,
    vars: Mapping[str, Any] | None = None,
    compat: bool = False,
    rootdir: str | Path | None = None,
) -> MissionResult:
    """Run a mission in ``workspace`` (a fresh temporary directory when omitted) and return its result."""
    loaded = mission if isinstance(mission, Mission) else load_mission(mission, compat=compat, rootdir=rootdir)
    root = Path(rootdir).resolve() if rootdir is not None else Path.cwd()
    settings = RunSettings(rootdir=root, vars_override=dict(vars or {}))
    if workspace is None:
        with tempfile.TemporaryDirectory(prefix="mission-") as tmp:
            return _run(loaded, Path(tmp), settings)
    return _run(loaded, Path(workspace), settings)


def _run(mission: Mission, base: Path, settings: RunSettings) -> MissionResult:
    base.mkdir(parents=True, exist_ok=True)
    workspace = base / "workspace" if any(base.iterdir()) else base
    workspace.mkdir(exist_ok=True)
    support = Path(tempfile.mkdtemp(prefix="mission-home-"))
    home, tmpdir = support / "home", support / "tmp"
    home.mkdir()
    tmpdir.mkdir()
    try:
        return run_steps(ChainRun(mission, workspace=workspace, home=home, tmpdir=tmpdir, settings=settings))
    finally:
        shutil.rmtree(support, ignore_errors=True)
