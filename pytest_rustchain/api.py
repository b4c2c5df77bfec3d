"""The Python API: load and run a mission without a pytest session."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_rustchain import loader
from pytest_rustchain.matrix import select
from pytest_rustchain.model import FixtureUse, Mission, MissionResult
from pytest_rustchain.runner import ChainRun, RunSettings, run_steps
from pytest_rustchain.setups import SetupCache, SetupFailed, fixture_uses, template_value, with_fixtures
from pytest_rustchain.workspace import create_workspace

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
    fixtures: Mapping[str, Any] | None = None,
    matrix: Mapping[str, Any] | None = None,
) -> MissionResult:
    """Run a mission in ``workspace`` (a fresh temporary directory when omitted) and return its result.

    The mission's HOME and TMPDIR live in a temporary directory that is removed afterwards;
    ``workspace: project`` missions run in ``rootdir``, ``{copy: dir}`` ones start from a copy.
    ``fixtures`` gives the values of the pytest fixtures the mission names in ``fixtures:``; its setup
    files run first, in the same temporary directory. Raises ``MissionFormatError`` when the mission
    loosens the safety policy, ``SetupFailed`` when a fixture is missing or a setup file fails.
    A mission with a ``matrix:`` runs the one combination ``matrix`` names (``{"python": "3.12"}``).
    """
    loaded = mission if isinstance(mission, Mission) else load_mission(mission, compat=compat, rootdir=rootdir)
    root = Path(rootdir).resolve() if rootdir is not None else Path.cwd()
    combination = select(loaded.matrix, matrix, path=loaded.display_path)
    settings = RunSettings(
        rootdir=root,
        vars_override=dict(vars or {}),
        matrix=dict(combination.values) if combination is not None else {},
        matrix_id=combination.id if combination is not None else "",
    )
    with tempfile.TemporaryDirectory(prefix="mission-") as tmp:
        uses = fixture_uses(loaded)
        if uses:
            settings = with_fixtures(settings, loaded, _fixtures(uses, dict(fixtures or {}), Path(tmp), settings))
        target = None if workspace is None else Path(workspace)
        if target is not None and target.is_dir() and any(target.iterdir()):
            target = target / "workspace"  # never run in a directory that already holds files
        space = create_workspace(loaded, base=Path(tmp), rootdir=root, workspace=target)
        chain = ChainRun(loaded, workspace=space.path, home=space.home, tmpdir=space.tmpdir, settings=settings)
        return run_steps(chain)


def _fixtures(uses: Sequence[FixtureUse], given: dict[str, Any], tmp: Path, settings: RunSettings) -> dict[str, Any]:
    cache = SetupCache()
    values: dict[str, Any] = {}
    for use in uses:
        if use.setup is not None:

            def make_base(name: str) -> Path:
                return tmp / name

            values[use.key] = cache.get(use, make_base=make_base, settings=settings)
        elif use.fixture in given:
            values[use.key] = template_value(given[use.fixture])
        else:
            where = f"{use.source}:{use.line}"
            raise SetupFailed(
                f"fixture '{use.fixture}' ({where}) has no value outside pytest\n"
                f"  HINT: pass it: run_mission(..., fixtures={{'{use.fixture}': value}})",
                reason=f"fixture '{use.fixture}' has no value",
            )
    return values
