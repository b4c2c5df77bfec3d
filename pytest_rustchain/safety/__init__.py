"""The static safety check of mission steps: rules, findings, risk scores and policy verdicts."""

from __future__ import annotations

__all__ = [
    "LEVELS",
    "RULES",
    "Finding",
    "Policy",
    "Rule",
    "Severity",
    "Verdict",
    "analyse_command",
    "analyse_env",
    "analyse_path",
    "analyse_url",
    "explain",
    "parse_allow_rule",
    "risk_score",
    "rules_markdown",
    "verdict",
]

from pytest_rustchain.safety.catalog import RULES, rules_markdown
from pytest_rustchain.safety.findings import Finding, Rule, Severity, risk_score
from pytest_rustchain.safety.policy import (
    LEVELS,
    Policy,
    Verdict,
    explain,
    parse_allow_rule,
    verdict,
)
from pytest_rustchain.safety.rules import analyse_command, analyse_env, analyse_path, analyse_url
