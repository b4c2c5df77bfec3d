"""Compiler, linter and test-runner diagnostics found in a step's output, as ``file:line:col: message``."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Diagnostic", "find_diagnostics"]

MAX_DIAGNOSTICS = 10
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostic:
    file: str
    line: int = 0
    col: int = 0
    message: str = ""
    tool: str = ""

    def text(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "") + (f":{self.col}" if self.line and self.col else "")
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, str | int]:
        return {"file": self.file, "line": self.line, "col": self.col, "message": self.message, "tool": self.tool}


# rustc / cargo / clippy and ruff's full format: a headline, then "  --> file:line:col".
_HEADLINE = re.compile(r"^(?P<msg>(?:error|warning)(?:\[\w+\])?: .+|[A-Z]+\d+ (?:\[\*\] )?.+)$")
_ARROW = re.compile(r"^\s*--> (?P<file>[^\s:]+):(?P<line>\d+):(?P<col>\d+)\s*$")
# gcc / clang / go / mypy / ruff concise / eslint unix: "file:line[:col]: [error:] message".
_COLON = re.compile(
    r"^(?P<file>[^\s:()][^\s:()]*\.[A-Za-z0-9]+):(?P<line>\d+)(?::(?P<col>\d+))?: (?:(?P<level>fatal error|error|"
    r"warning|note)(?:\[[\w-]+\])?: )?(?P<msg>.+)$"
)
# tsc: "src/a.ts(3,5): error TS2322: message".
_TSC = re.compile(r"^(?P<file>[^\s()]+\.[cm]?[jt]sx?)\((?P<line>\d+),(?P<col>\d+)\): error (?P<msg>TS\d+: .+)$")
# Python tracebacks: the innermost 'File "x.py", line 3' and the exception line after it.
_PY_FILE = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)')
_PY_EXC = re.compile(r"^(?P<msg>(?:[A-Za-z_][\w.]*)?(?:Error|Exception|Interrupt|Exit|Warning)\b.*)$")
# pytest's short summary: "FAILED tests/test_x.py::test_a - AssertionError: ...".
_PYTEST = re.compile(r"^(?:FAILED|ERROR) (?P<file>[^\s:]+\.py)(?:::(?P<test>\S+))?(?: - (?P<msg>.+))?$")
# pytest's long report location line: "tests/test_x.py:12: AssertionError".
_PYTEST_LOC = re.compile(r"^(?P<file>[^\s:]+\.py):(?P<line>\d+): (?P<msg>\w+(?:Error|Exception|Failed)\w*)$")
_NOT_ERRORS = ("note", "warning")


def _tool_of(file: str, level: str) -> str:
    suffix = file.rsplit(".", 1)[-1]
    return {"go": "go", "py": "python", "rs": "rustc", "ts": "tsc"}.get(suffix, "compiler" if level else "")


def find_diagnostics(text: str, *, limit: int = MAX_DIAGNOSTICS) -> list[Diagnostic]:
    """The first ``limit`` errors in ``text`` (a tool's stdout and stderr), each once, in order.

    Warnings and notes are left out while there are errors; a Python traceback gives its innermost
    frame with the exception.
    """
    lines = [_ANSI.sub("", line.rstrip()) for line in text.splitlines()]
    found: list[Diagnostic] = []
    warnings: list[Diagnostic] = []
    pending: str = ""
    py_frame: tuple[str, int] | None = None
    for line in lines:
        if not line:
            continue
        head = _HEADLINE.match(line)
        if head:
            pending = head.group("msg")
            continue
        arrow = _ARROW.match(line)
        if arrow and pending:
            diag = Diagnostic(
                file=arrow.group("file"),
                line=int(arrow.group("line")),
                col=int(arrow.group("col")),
                message=pending,
                tool="rustc" if pending.startswith(("error", "warning")) else "ruff",
            )
            (warnings if pending.startswith("warning") else found).append(diag)
            pending = ""
            continue
        py = _PY_FILE.match(line)
        if py:
            py_frame = (py.group("file"), int(py.group("line")))
            continue
        if py_frame is not None and not line.startswith(" ") and _PY_EXC.match(line):
            found.append(Diagnostic(file=py_frame[0], line=py_frame[1], message=line, tool="python"))
            py_frame = None
            continue
        tsc = _TSC.match(line)
        if tsc:
            found.append(
                Diagnostic(
                    file=tsc.group("file"),
                    line=int(tsc.group("line")),
                    col=int(tsc.group("col")),
                    message=tsc.group("msg"),
                    tool="tsc",
                )
            )
            continue
        test = _PYTEST.match(line)
        if test:
            message = test.group("msg") or f"{test.group('test') or 'test'} failed"
            if test.group("test") and test.group("msg"):
                message = f"{test.group('test')}: {test.group('msg')}"
            found.append(Diagnostic(file=test.group("file"), message=message, tool="pytest"))
            continue
        loc = _PYTEST_LOC.match(line)
        if loc:
            found.append(
                Diagnostic(file=loc.group("file"), line=int(loc.group("line")), message=loc.group("msg"), tool="pytest")
            )
            continue
        colon = _COLON.match(line)
        if colon:
            level = colon.group("level") or ""
            diag = Diagnostic(
                file=colon.group("file").removeprefix("./"),
                line=int(colon.group("line")),
                col=int(colon.group("col") or 0),
                message=colon.group("msg"),
                tool=_tool_of(colon.group("file"), level),
            )
            (warnings if level in _NOT_ERRORS else found).append(diag)
    chosen = found or warnings
    unique = list(dict.fromkeys(chosen))
    return unique[:limit]
