"""A mission's directories: the workspace (tmp, project or a copy), its own HOME and TMPDIR, kept or removed."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from pytest_rustchain.model import Mission

__all__ = ["KEEP_CHOICES", "Workspace", "create_workspace", "make_directories", "stand_in_workspace"]

KEEP_CHOICES = ("failed", "always", "never")


@dataclass(frozen=True, slots=True, kw_only=True)
class Workspace:
    """Where one mission (and its next missions) runs."""

    path: Path
    """The directory steps run in: the pytest rootdir for ``workspace: project``."""
    home: Path
    tmpdir: Path
    base: Path
    """The directory that holds ``home``, ``tmp`` and (unless ``project``) the workspace: what cleanup removes."""

    def cleanup(self, *, passed: bool, keep: str = "failed") -> bool:
        """Remove everything under ``base`` unless ``keep`` says to keep it; True when removed."""
        if keep == "always" or (keep == "failed" and not passed):
            return False
        shutil.rmtree(self.base, ignore_errors=True)
        return True


def create_workspace(
    mission: Mission,
    *,
    base: Path,
    rootdir: Path,
    workspace: Path | None = None,
    make: bool = True,
    base_is_real: bool = False,
) -> Workspace:
    """Make ``base/home``, ``base/tmp`` and the workspace the mission asks for; the workspace path
    returned is resolved (absolute, no symbolic links), as the safety checks compare paths with it.

    ``workspace`` puts a ``tmp`` or ``copy`` workspace at that directory instead of ``base/workspace``
    (the Python API's ``run_mission(workspace=...)``); ``project`` always runs in ``rootdir``.
    ``make=False`` only names the directories: ``make_directories`` makes them when a step needs them.
    ``base_is_real``: ``base`` is already resolved and new (a fresh name in pytest's resolved base
    temporary directory, holding nothing yet), so ``base/workspace`` needs no resolving: that costs a
    system call per path component, for every mission.
    """
    home, tmpdir = base / "home", base / "tmp"
    if mission.config.workspace.kind == "project":
        space = Workspace(path=rootdir, home=home, tmpdir=tmpdir, base=base)
    else:
        path = workspace if workspace is not None else base / "workspace"
        space = Workspace(path=path, home=home, tmpdir=tmpdir, base=base)
    if make:
        make_directories(mission, space)
    if mission.config.workspace.kind == "project" or (base_is_real and workspace is None):
        return space
    return replace(space, path=space.path.resolve())


def make_directories(mission: Mission, space: Workspace) -> None:
    """Make the directories of ``space`` that do not exist yet (and seed a ``copy`` workspace)."""
    space.home.mkdir(parents=True, exist_ok=True)
    space.tmpdir.mkdir(exist_ok=True)
    spec = mission.config.workspace
    if spec.kind == "project":
        return
    space.path.mkdir(parents=True, exist_ok=True)
    if spec.kind == "copy" and spec.copy_from is not None:
        ignore = shutil.ignore_patterns(*spec.exclude) if spec.exclude else None
        shutil.copytree(spec.copy_from, space.path, symlinks=True, dirs_exist_ok=True, ignore=ignore)


def stand_in_workspace(mission: Mission, rootdir: Path) -> Path:
    """The workspace path a dry run judges steps against: nothing is created there."""
    if mission.config.workspace.kind == "project":
        return rootdir
    return Path("/mission-workspace") / mission.stem
