"""The dry run: every step of a mission judged on its raw parameters; nothing is created or run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_rustchain import plan
from pytest_rustchain.environment import allowed_environment
from pytest_rustchain.guard import Guard
from pytest_rustchain.model import Mission, Step
from pytest_rustchain.runner import RunSettings, followers, mission_policy, written_text
from pytest_rustchain.setups import fixture_uses
from pytest_rustchain.workspace import stand_in_workspace

__all__ = ["DryRow", "DryRun", "dry_run"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DryRow:
    """The verdict on one step as written."""

    label: str
    """The step id as reported (``next/<stem>/<id>`` for next missions)."""
    step: Step
    risk: int
    blocked: bool
    explanation: str
    rules: tuple[str, ...]
    depends_on: tuple[str, ...]
    """Declared and inferred dependencies (``id (why)``)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the report (crosses xdist)."""
        return {
            "step": self.label,
            "type": self.step.step_type,
            "risk": self.risk,
            "verdict": "BLOCKED" if self.blocked else "allowed",
            "rules": list(self.rules),
            "depends_on": list(self.depends_on),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class DryRun:
    policy_level: str
    rows: tuple[DryRow, ...]

    @property
    def blocked(self) -> tuple[DryRow, ...]:
        return tuple(r for r in self.rows if r.blocked)

    def message(self) -> str:
        """The mission's failure text when a step would be blocked, else empty."""
        blocked = self.blocked
        if not blocked:
            return ""
        head = f"{len(blocked)} of {len(self.rows)} steps would be blocked (policy {self.policy_level})"
        return "\n\n".join([head, *(r.explanation for r in blocked)])


def dry_run(mission: Mission, settings: RunSettings) -> DryRun:
    """Judge every step of ``mission`` and its next missions in run order, as the run would order them."""
    policy = mission_policy(settings.policy, mission.config.safety)
    allowed_env = allowed_environment(settings.source_env, settings.pass_env)
    rows: list[DryRow] = []
    # A setup file's steps are judged too, before the mission's, as the run would meet them.
    setups = [(f"setup/{use.key}/", use.setup) for use in fixture_uses(mission) if use.setup is not None]
    for prefix, member in [*setups, ("", mission), *followers(mission, "next/")]:
        # A stand-in path: the real workspace does not exist in a dry run and is never made.
        workspace = stand_in_workspace(member, settings.rootdir)
        guard = Guard(
            policy=policy,
            workspace=workspace,
            workspace_kind=member.config.workspace.kind,
            mission_path=member.display_path,
        )
        # What templates will render to is known before the run for these names; steps' outputs and
        # the timestamp are not.
        known: Mapping[str, Any] = {
            "python": settings.python,
            "workspace": str(workspace),
            "vars": {**member.vars, **settings.vars_override},
            "env": {**allowed_env, **member.env},
            "mission": {"name": member.name, "path": member.display_path, "stem": member.stem},
        }
        for step in plan.order(member.steps):
            verdict = guard.judge_raw(step, known)
            for rel, text in written_text(step, step.parameters, raw=True):
                guard.remember_written(rel, text)
            rows.append(
                DryRow(
                    label=prefix + step.id,
                    step=step,
                    risk=verdict.score,
                    blocked=verdict.blocked,
                    explanation=verdict.explanation,
                    rules=tuple(sorted({f.rule_id for f in verdict.verdict.findings})),
                    depends_on=(*step.depends_on, *(f"{d} ({why})" for d, why in step.inferred)),
                )
            )
    return DryRun(policy_level=policy.level, rows=tuple(rows))
