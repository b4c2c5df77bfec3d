"""Shared setups: a setup file's steps run once per process (a pytest session, or one xdist worker), and
the missions that name it in ``fixtures:`` reach its directory and outputs as ``fixtures.<name>``."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pytest_rustchain import plan
from pytest_rustchain.errors import SetupFailed
from pytest_rustchain.model import FixtureUse, Mission, MissionResult, Step, StepStatus
from pytest_rustchain.runner import ChainRun, RunSettings, followers, run_steps
from pytest_rustchain.workspace import create_workspace

__all__ = ["SetupCache", "SetupFailed", "fixture_uses", "mission_steps", "template_value", "with_fixtures"]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Outcome:
    value: Mapping[str, Any]
    failure: str
    """The failure text when a step failed or was blocked, else empty."""
    failed_step: str


def template_value(value: Any) -> Any:
    """A fixture's value as templates see it: paths as text, mappings and sequences walked, other
    objects as their ``str()``."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): template_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [template_value(v) for v in value]
    return str(value)


def fixture_uses(mission: Mission) -> list[FixtureUse]:
    """The ``fixtures:`` of a mission and of its next missions, each key once (the first wins)."""
    seen: dict[str, FixtureUse] = {}
    for _, member in [("", mission), *followers(mission, "next/")]:
        for use in member.fixtures:
            seen.setdefault(use.key, use)
    return list(seen.values())


def mission_steps(mission: Mission) -> Iterator[tuple[str, Step]]:
    """Every step of a mission and its next missions in run order, with its reported id."""
    for prefix, member in [("", mission), *followers(mission, "next/")]:
        for step in plan.order(member.steps):
            yield prefix + step.id, step


class SetupCache:
    """Each setup file runs at most once per cache; its value, or its failure, is kept for every later
    mission. The pytest plugin keeps one cache per session, so once per xdist worker."""

    def __init__(self) -> None:
        self._done: dict[Path, _Outcome] = {}

    @property
    def runs(self) -> int:
        return len(self._done)

    def get(self, use: FixtureUse, *, make_base: Callable[[str], Path], settings: RunSettings) -> Mapping[str, Any]:
        """The setup's value: ``workspace`` (its directory, kept for the session), ``status`` and
        ``steps.<id>.<output>``. Raises ``SetupFailed`` naming the setup file and its failed step."""
        setup = use.setup
        assert setup is not None
        outcome = self._done.get(setup.path)
        if outcome is None:
            outcome = self._done[setup.path] = _run(setup, make_base(f"setup-{use.key}"), settings)
        if outcome.failure:
            message = (
                f"setup {setup.display_path} (fixtures: at {use.source}:{use.line}) failed, "
                f"so no step of this mission ran\n{outcome.failure}\n"
                "  HINT: fix the setup file; it runs once per session (and per xdist worker), and every "
                "mission that names it fails with this message"
            )
            raise SetupFailed(message, reason=f"setup {setup.display_path} failed at step '{outcome.failed_step}'")
        return outcome.value


def _run(setup: Mission, base: Path, settings: RunSettings) -> _Outcome:
    """Run the setup's steps in its own directory, through the same checks and sandbox as any mission."""
    space = create_workspace(setup, base=base, rootdir=settings.rootdir)
    result = run_steps(ChainRun(setup, workspace=space.path, home=space.home, tmpdir=space.tmpdir, settings=settings))
    value = {
        "workspace": str(space.path),
        "status": result.status.value,
        "steps": {sid: template_value(dict(r.outputs)) for sid, r in result.steps.items()},
    }
    if result.passed:
        return _Outcome(value=value, failure="", failed_step="")
    return _Outcome(value=value, failure=_failure_text(result), failed_step=_first_failed(result))


def _first_failed(result: MissionResult) -> str:
    for step_id, step in result.steps.items():
        if step.status in (StepStatus.FAILED, StepStatus.BLOCKED):
            return step_id
    return next(iter(result.steps), "")


def _failure_text(result: MissionResult) -> str:
    """The first failed step's own text (it names the step, its file and line, and the directory)."""
    bad = [r for r in result.steps.values() if r.status in (StepStatus.FAILED, StepStatus.BLOCKED)]
    text = bad[0].reason if bad else result.message or f"the setup ended {result.status.value}"
    return "\n".join(f"  {line}" for line in text.splitlines())


def with_fixtures(settings: RunSettings, mission: Mission, values: Mapping[str, Any]) -> RunSettings:
    """``settings`` with the mission's fixture values, and the paths the sandbox keeps readable for them:
    each setup file's directory (never paths its steps printed: a mission file wrote them) and the
    existing paths in each pytest fixture's value (a conftest.py wrote those)."""
    paths: dict[Path, None] = {}
    for use in fixture_uses(mission):
        value = values.get(use.key)
        if use.setup is not None and isinstance(value, Mapping):
            paths.update(dict.fromkeys(existing_paths(value.get("workspace"))))
        elif use.setup is None:
            paths.update(dict.fromkeys(existing_paths(value)))
    return replace(settings, fixtures=dict(values), fixture_paths=tuple(paths))


def existing_paths(value: Any) -> Iterator[Path]:
    """The existing absolute paths among a pytest fixture's template value (its paths, and those in its
    mappings and lists): what the sandbox keeps readable for the missions that name it."""
    if isinstance(value, str):
        if value.startswith("/") and "\n" not in value and len(value) < 4096:
            path = Path(value)
            with contextlib.suppress(OSError):
                if path.exists():
                    yield path
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from existing_paths(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from existing_paths(item)
