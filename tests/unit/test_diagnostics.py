"""Unit tests: compiler, linter and test-runner errors are found in tool output as file:line:col: message."""

from __future__ import annotations

import pytest

from pytest_rustchain.diagnostics import find_diagnostics

CASES = [
    (
        "rustc",
        "   Compiling demo v0.1.0\nerror[E0308]: mismatched types\n --> src/main.rs:2:18\n  |\n"
        "warning: unused variable: `y`\n --> src/lib.rs:3:9\nerror: could not compile `demo`\n",
        ["src/main.rs:2:18: error[E0308]: mismatched types"],
    ),
    (
        "gcc",
        "main.c: In function 'main':\nmain.c:3:5: error: 'x' undeclared\nmain.c:3:5: note: each identifier\n",
        ["main.c:3:5: 'x' undeclared"],
    ),
    ("clang", "a.c:2:10: fatal error: 'nope.h' file not found\n", ["a.c:2:10: 'nope.h' file not found"]),
    (
        "python traceback",
        'Traceback (most recent call last):\n  File "app.py", line 1, in <module>\n    import x\n'
        '  File "x.py", line 5, in f\n    1/0\nZeroDivisionError: division by zero\n',
        ["x.py:5: ZeroDivisionError: division by zero"],
    ),
    (
        "pytest",
        "tests/test_a.py:12: AssertionError\n=== short test summary info ===\n"
        "FAILED tests/test_a.py::test_one - assert 1 == 2\n",
        ["tests/test_a.py:12: AssertionError", "tests/test_a.py: test_one: assert 1 == 2"],
    ),
    (
        "mypy",
        "src/a.py:3: error: Incompatible types  [assignment]\nFound 1 error\n",
        ["src/a.py:3: Incompatible types  [assignment]"],
    ),
    (
        "ruff concise",
        "src/a.py:1:8: F401 [*] `os` imported but unused\n",
        ["src/a.py:1:8: F401 [*] `os` imported but unused"],
    ),
    (
        "ruff full",
        "F401 [*] `os` imported but unused\n --> src/a.py:1:8\n  |\n",
        ["src/a.py:1:8: F401 [*] `os` imported but unused"],
    ),
    (
        "tsc",
        "src/a.ts(3,5): error TS2322: Type 'string' is not assignable to type 'number'.\n",
        ["src/a.ts:3:5: TS2322: Type 'string' is not assignable to type 'number'."],
    ),
    ("go", "# demo\n./main.go:4:2: undefined: fmt.Printn\n", ["main.go:4:2: undefined: fmt.Printn"]),
    ("nothing", "all good\n3 passed in 0.1s\n", []),
]


@pytest.mark.parametrize(("tool", "output", "expected"), CASES, ids=[c[0] for c in CASES])
def test_diagnostics_are_found(tool: str, output: str, expected: list[str]) -> None:
    """Each tool's first errors come out as file:line:col: message, warnings and notes left out."""
    assert [d.text() for d in find_diagnostics(output)] == expected


def test_diagnostics_are_capped_and_unique() -> None:
    """A long build log gives its first ten distinct errors."""
    output = "".join(f"a.c:{n}:1: error: bad\na.c:{n}:1: error: bad\n" for n in range(1, 30))
    found = find_diagnostics(output)
    assert [d.line for d in found] == list(range(1, 11))
