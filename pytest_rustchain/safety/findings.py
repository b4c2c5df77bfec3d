"""Severities, rules and findings of the safety analyser, and the risk score they add up to."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Finding", "Rule", "Severity", "printable", "risk_score"]


class Severity(enum.IntEnum):
    """How dangerous a finding is; the numbers are the risk score policies compare against."""

    INFO = 0
    LOW = 10
    MEDIUM = 40
    HIGH = 70
    CRITICAL = 100

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def of_score(cls, score: int) -> Severity:
        """The highest severity not above ``score``."""
        found = cls.INFO
        for sev in cls:
            if sev <= score:
                found = sev
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One reason why a step is risky, as shown to the user."""

    rule_id: str
    category: str
    severity: Severity
    message: str
    evidence: str
    """The normalised command line or path that triggered the rule."""
    subject: str = ""
    """The program or host the rule is about; allow-lists match on it (``make``, ``pypi.org``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """A documented rule: its stable id, what it catches, an example and how to allow it."""

    id: str
    category: str
    severity: Severity
    title: str
    example: str
    how_to_allow: str

    def finding(self, evidence: str, *, detail: str = "", subject: str = "") -> Finding:
        message = f"{self.title} ({printable(detail)})" if detail else self.title
        evidence = printable(evidence)
        if len(evidence) > 240:
            # Evidence ends up in one-line block messages; a whole script would drown the reason.
            evidence = evidence[:237] + "..."
        return Finding(
            rule_id=self.id,
            category=self.category,
            severity=self.severity,
            message=message,
            evidence=evidence,
            subject=subject,
        )


_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def printable(text: str) -> str:
    """One line with control, bidi and zero-width characters escaped, so a report shows what runs."""
    if text.isprintable():
        return text
    out: list[str] = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
    return "".join(out)


def risk_score(findings: Iterable[Finding]) -> int:
    """The step's risk score: the highest severity among its findings (0 without findings)."""
    return max((int(f.severity) for f in findings), default=0)
