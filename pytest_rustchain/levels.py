"""Safety policy levels and the configured policy; kept light, since pytest start-up reads them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_rustchain.model import Mission

__all__ = ["LEVELS", "Policy", "check_safety_level", "parse_allow_rule"]

LEVELS: dict[str, int] = {"permissive": 100, "standard": 70, "strict": 40}
"""Policy level -> the risk score at which a step is blocked."""


def parse_allow_rule(entry: str) -> tuple[str, str | None]:
    """``RC-FS-001@missions/x.mission.yaml::cleanup`` -> (rule id, scope); no ``@`` -> no scope."""
    rule_id, sep, scope = entry.strip().partition("@")
    return rule_id.strip(), (scope.strip() or None) if sep else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """The effective policy: a level and the allow-lists from the pytest configuration."""

    level: str = "standard"
    allow_commands: frozenset[str] = frozenset()
    allow_rules: tuple[tuple[str, str | None], ...] = ()
    allow_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            known = ", ".join(LEVELS)
            raise ValueError(f"unknown safety level {self.level!r}; known: {known}")

    @property
    def threshold(self) -> int:
        return LEVELS[self.level]

    def at_least(self, floor: str | None) -> Policy:
        """This policy, raised to ``floor`` (``MISSION_SAFETY_FLOOR``) when it is looser."""
        if not floor:
            return self
        if floor not in LEVELS:
            known = ", ".join(LEVELS)
            raise ValueError(f"unknown safety floor {floor!r}; known: {known}")
        if LEVELS[floor] < self.threshold:
            return Policy(
                level=floor,
                allow_commands=self.allow_commands,
                allow_rules=self.allow_rules,
                allow_hosts=self.allow_hosts,
            )
        return self


def check_safety_level(mission: Mission, policy: Policy) -> None:
    """A mission (or one of its next missions) may only tighten safety: raise when it loosens it."""
    from pytest_rustchain.errors import MissionFormatError

    pending = [mission]
    while pending:
        member = pending.pop(0)
        level = member.config.safety
        if level is not None and LEVELS[level] > policy.threshold:
            raise MissionFormatError(
                f"config.safety: {level} is looser than the configured policy {policy.level}",
                path=member.display_path,
                hint="a mission may only tighten the safety level; loosen it in the pytest configuration instead",
            )
        pending[:0] = member.next_missions
