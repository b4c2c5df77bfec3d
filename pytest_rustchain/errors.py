"""Exceptions of pytest-rustchain; a leaf module that imports nothing from the package."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def shorten_values(message: str, values: Iterable[Any], *, limit: int = 80, total: int = 300) -> str:
    """``message`` with long quoted values cut, never its reason.

    Validation messages (jsonschema's) quote the offending value first and give the reason after it
    (``'xxx...' is too long``): each value's ``repr`` that is longer than ``limit`` is cut in place. A
    message still longer than ``total`` keeps its beginning and its end, where the reason is.
    """
    for value in values:
        shown = repr(value)
        if len(shown) > limit and shown in message:
            message = message.replace(shown, f"{shown[: limit - 4]}...{shown[-1]} ({len(shown)} chars)", 1)
    if len(message) > total:
        half = total // 2
        message = f"{message[:half]} ... ({len(message)} chars) ... {message[-half:]}"
    return message


class MissionError(Exception):
    """Base class of every error the plugin reports to a user."""


class SetupFailed(MissionError):
    """A setup file or pytest fixture that a mission names in ``fixtures:`` could not be had (it failed,
    or it does not exist); none of the mission's steps can run."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
        """The one-line reason each of the mission's steps is skipped with."""


class MissionFormatError(MissionError):
    """A mission file cannot be loaded: bad YAML, a schema violation or a graph error.

    The message is built from structured fields so that every sink (terminal, JUnit, JSON) shows the
    same clean text: ``path:line:col: what``, the JSON path, and a ``HINT:`` line when there is a fix.
    """

    def __init__(
        self,
        what: str,
        *,
        path: str = "",
        line: int | None = None,
        col: int | None = None,
        json_path: str = "",
        hint: str = "",
        details: Sequence[str] = (),
    ) -> None:
        self.what = what
        self.path = path
        self.line = line
        self.col = col
        self.json_path = json_path
        self.hint = hint
        self.details = tuple(details)
        super().__init__(self.render())

    @property
    def location(self) -> str:
        loc = self.path or "<mission>"
        if self.line is not None:
            loc += f":{self.line}"
            if self.col is not None:
                loc += f":{self.col}"
        return loc

    def render(self) -> str:
        lines = [f"{self.location}: {self.what}"]
        if self.json_path:
            lines.append(f"  at {self.json_path}")
        lines.extend(f"  {d}" for d in self.details)
        if self.hint:
            lines.append(f"  HINT: {self.hint}")
        return "\n".join(lines)


class MissionFormatErrors(MissionFormatError):
    """Several independent errors of one mission file, reported together (the first ``limit`` of them).

    Its fields are the first error's, so one-line views (a JUnit message, an annotation) point there.
    """

    def __init__(self, errors: Sequence[MissionFormatError], *, limit: int = 10) -> None:
        self.errors = tuple(errors)
        self.limit = limit
        first = self.errors[0]
        super().__init__(
            first.what,
            path=first.path,
            line=first.line,
            col=first.col,
            json_path=first.json_path,
            hint=first.hint,
            details=first.details,
        )

    def render(self) -> str:
        errors = getattr(self, "errors", ())
        if len(errors) <= 1:
            return super().render()
        shown = errors[: self.limit]
        parts = [e.render() for e in shown]
        more = f"; the first {len(shown)} are shown" if len(errors) > len(shown) else ""
        parts.append(f"{len(errors)} errors in {self.path or 'this mission'}{more}")
        return "\n\n".join(parts)


class StepError(MissionError):
    """A step failed while running; the message is what the user sees, ``outputs`` what it produced."""

    def __init__(self, message: str, *, outputs: dict[str, object] | None = None) -> None:
        self.message = message
        self.outputs = dict(outputs or {})
        super().__init__(message)


class PathEscapeError(StepError):
    """A file step's path leaves the workspace or touches something it must not."""


class UnsafeStepError(MissionError):
    """The safety policy blocks a step; ``explanation`` is the full BLOCKED block."""

    def __init__(self, step_id: str, explanation: str, *, score: int = 0, rule_ids: tuple[str, ...] = ()) -> None:
        self.step_id = step_id
        self.explanation = explanation
        self.score = score
        """The risk score the policy compared against its threshold (100 is critical)."""
        self.rule_ids = rule_ids
        super().__init__(explanation)


class StepSkipped(MissionError):
    """A step cannot run here for a reason that is not its own fault (no LLM provider configured and no
    recording to replay): it is reported as skipped with ``reason`` and not counted in the rate."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
