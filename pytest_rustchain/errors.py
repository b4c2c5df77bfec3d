"""Exceptions of pytest-rustchain; a leaf module that imports nothing from the package."""

from __future__ import annotations

from collections.abc import Sequence


class MissionError(Exception):
    """Base class of every error the plugin reports to a user."""


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


class StepError(MissionError):
    """A step failed while running; the message is what the user sees, ``outputs`` what it produced."""

    def __init__(self, message: str, *, outputs: dict[str, object] | None = None) -> None:
        self.message = message
        self.outputs = dict(outputs or {})
        super().__init__(message)


class PathEscapeError(StepError):
    """A file step's path leaves the workspace or touches something it must not."""
