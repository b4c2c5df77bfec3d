"""Policy levels, allow-lists and the verdict that decides whether a step is blocked."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

from pytest_rustchain.levels import LEVELS, Policy, parse_allow_rule
from pytest_rustchain.safety.catalog import RULES
from pytest_rustchain.safety.findings import Finding, Severity, risk_score

__all__ = ["LEVELS", "Policy", "Verdict", "explain", "parse_allow_rule", "verdict"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What the policy decided for one step."""

    blocked: bool
    score: int
    level: str
    threshold: int
    findings: tuple[Finding, ...]
    """Findings that count, most severe first."""
    waived: tuple[Finding, ...] = ()
    """Findings an allow-list entry removed; reported, never counted."""

    @property
    def severity(self) -> Severity:
        return Severity.of_score(self.score)


def _command_allowed(finding: Finding, allow_commands: frozenset[str]) -> bool:
    from pytest_rustchain.safety.rules import WAIVABLE_BY_COMMAND

    if finding.rule_id not in WAIVABLE_BY_COMMAND or finding.severity >= Severity.CRITICAL:
        return False
    subject = finding.subject
    if not subject:
        return False
    return subject in allow_commands or posixpath.basename(subject) in allow_commands


def _rule_allowed(finding: Finding, policy: Policy, step_key: str | None) -> bool:
    for rule_id, scope in policy.allow_rules:
        if rule_id == finding.rule_id and (scope is None or scope == step_key):
            return True
    return False


def verdict(findings: Iterable[Finding], policy: Policy | None = None, step_key: str | None = None) -> Verdict:
    """Apply ``policy`` to a step's findings. ``step_key`` is ``path::step_id`` for scoped rules."""
    policy = policy or Policy()
    kept: list[Finding] = []
    waived: list[Finding] = []
    findings = tuple(findings)
    if findings:  # findings come from the rules module: it is loaded already
        from pytest_rustchain.safety.rules import WAIVABLE_BY_HOST, host_matches
    for finding in findings:
        if (
            _rule_allowed(finding, policy, step_key)
            or _command_allowed(finding, policy.allow_commands)
            or (
                finding.rule_id in WAIVABLE_BY_HOST
                and finding.subject
                and host_matches(finding.subject, policy.allow_hosts)
            )
        ):
            waived.append(finding)
        else:
            kept.append(finding)
    score = risk_score(kept)
    return Verdict(
        blocked=score >= policy.threshold,
        score=score,
        level=policy.level,
        threshold=policy.threshold,
        findings=tuple(kept),
        waived=tuple(waived),
    )


def explain(v: Verdict, *, step_id: str, location: str, step_key: str | None = None) -> str:
    """The text a blocked step shows: the score, each finding with its evidence, and a hint."""
    head = "BLOCKED" if v.blocked else "ALLOWED"
    lines = [f"{head} step '{step_id}' ({location}) risk {v.score} ({v.severity.label}), policy {v.level}"]
    for finding in v.findings:
        lines.append(f"  {finding.rule_id} {finding.message}: {finding.evidence}")
    for finding in v.waived:
        lines.append(f"  waived {finding.rule_id} {finding.message}: {finding.evidence}")
    blocking = [f for f in v.findings if f.severity >= v.threshold]
    if blocking:
        first = blocking[0]
        rule = RULES.get(first.rule_id)
        scope = f"@{step_key}" if step_key else ""
        how = rule.how_to_allow if rule is not None else "mission_allow_rules"
        how = how.replace("@path::step", scope)
        lines.append(f"  HINT: {how}")
    return "\n".join(lines)
