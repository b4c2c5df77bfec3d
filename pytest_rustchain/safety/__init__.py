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

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_rustchain.safety.catalog import RULES, rules_markdown
    from pytest_rustchain.safety.findings import Finding, Rule, Severity, risk_score
    from pytest_rustchain.safety.policy import LEVELS, Policy, Verdict, explain, parse_allow_rule, verdict
    from pytest_rustchain.safety.rules import analyse_command, analyse_env, analyse_path, analyse_url

# The analyser (the shell parser and the rule tables) loads at the first step that has something to
# analyse: a mission of steps without commands, paths, URLs or environment never needs it.
_WHERE = {
    "RULES": "catalog",
    "rules_markdown": "catalog",
    "Finding": "findings",
    "Rule": "findings",
    "Severity": "findings",
    "risk_score": "findings",
    "LEVELS": "policy",
    "Policy": "policy",
    "Verdict": "policy",
    "explain": "policy",
    "parse_allow_rule": "policy",
    "verdict": "policy",
    "analyse_command": "rules",
    "analyse_env": "rules",
    "analyse_path": "rules",
    "analyse_url": "rules",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_rustchain.safety' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"pytest_rustchain.safety.{module}"), name)
