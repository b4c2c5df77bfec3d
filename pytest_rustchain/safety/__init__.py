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

from typing import TYPE_CHECKING

from pytest_rustchain import _lazy_attributes

if TYPE_CHECKING:
    from pytest_rustchain.safety.catalog import RULES, rules_markdown
    from pytest_rustchain.safety.findings import Finding, Rule, Severity, risk_score
    from pytest_rustchain.safety.policy import LEVELS, Policy, Verdict, explain, parse_allow_rule, verdict
    from pytest_rustchain.safety.rules import analyse_command, analyse_env, analyse_path, analyse_url

# The analyser (the shell parser and the rule tables) loads at the first step that has something to
# analyse: a mission of steps without commands, paths, URLs or environment never needs it.
_WHERE = {
    name: f"pytest_rustchain.safety.{module}"
    for module, names in (
        ("catalog", ("RULES", "rules_markdown")),
        ("findings", ("Finding", "Rule", "Severity", "risk_score")),
        ("policy", ("LEVELS", "Policy", "Verdict", "explain", "parse_allow_rule", "verdict")),
        ("rules", ("analyse_command", "analyse_env", "analyse_path", "analyse_url")),
    )
    for name in names
}

__getattr__ = _lazy_attributes("pytest_rustchain.safety", _WHERE)
