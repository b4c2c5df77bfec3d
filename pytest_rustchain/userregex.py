"""Regular expressions written in missions, run with a time limit.

A pattern such as ``^(a|aa)+$`` backtracks for ever on the right text, and it runs inside the pytest
process, where a step's ``timeout_seconds`` does not reach. The ``regex`` package takes a
``timeout``, but checks it only now and then; so the match also runs in a thread that releases the GIL
(``concurrent=True``), and the caller stops waiting after ``PATTERN_SECONDS``: the step fails naming
the pattern, and the abandoned match ends when the package notices its own timeout.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import regex

# The ``regex`` package is imported by the first pattern a mission uses.

_T = TypeVar("_T")

__all__ = ["MULTILINE", "PATTERN_SECONDS", "PatternError", "PatternTimeout", "compiled", "search", "subn"]

MULTILINE = int(re.MULTILINE)
"""The flag of the same name (``regex`` uses ``re``'s flag values)."""
PATTERN_SECONDS = 2.0
"""How long one match, search or substitution of a mission's pattern may take."""


class PatternError(Exception):
    """A pattern does not compile."""


class PatternTimeout(Exception):
    """A pattern took longer than ``PATTERN_SECONDS`` on its text."""


def _timeout(pattern: str) -> PatternTimeout:
    return PatternTimeout(
        f"regular expression {pattern!r} took longer than {PATTERN_SECONDS:g} s on its text "
        "(catastrophic backtracking?)\n"
        "HINT: avoid nested repetition such as (a+)+; anchor the pattern or make it more specific"
    )


@functools.lru_cache(maxsize=512)
def compiled(pattern: str, flags: int = 0) -> regex.Pattern[str]:
    """``pattern`` compiled with Python ``re`` syntax (the ``regex`` package's version 0)."""
    import regex

    try:
        return regex.compile(pattern, flags | regex.VERSION0)
    except (regex.error, ValueError, OverflowError) as exc:
        raise PatternError(f"invalid regular expression {pattern!r}: {exc}") from None


def _bounded(pattern: str, work: Callable[[], _T]) -> _T:
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, name="rustchain-pattern", daemon=True)
    thread.start()
    thread.join(PATTERN_SECONDS)
    if thread.is_alive():
        raise _timeout(pattern)
    error = box.get("error")
    if isinstance(error, TimeoutError):
        raise _timeout(pattern)
    if isinstance(error, BaseException):
        raise error
    return box["value"]  # type: ignore[return-value]


def search(pattern: str, text: str, flags: int = 0) -> regex.Match[str] | None:
    """``re.search`` with a time limit; raises ``PatternTimeout`` or ``PatternError``."""
    compiled_pattern = compiled(pattern, flags)
    return _bounded(pattern, lambda: compiled_pattern.search(text, timeout=PATTERN_SECONDS, concurrent=True))


def subn(pattern: str, replacement: str, text: str, count: int = 0) -> tuple[str, int]:
    """``re.subn`` with a time limit; a bad replacement raises ``PatternError``."""
    compiled_pattern = compiled(pattern)

    def work() -> tuple[str, int]:
        import regex

        try:
            return compiled_pattern.subn(replacement, text, count=count, timeout=PATTERN_SECONDS, concurrent=True)
        except (regex.error, IndexError) as exc:
            raise PatternError(f"invalid replacement {replacement!r}: {exc}") from None

    return _bounded(pattern, work)
