"""RustChain's code steps: compile_code, run_tests, lint_code, format_code for a Python project."""

from __future__ import annotations

from collections.abc import Callable

import pytest

WriteMission = Callable[[str, str], None]

PROJECT = """
name: code steps
steps:
  - id: module
    step_type: create_file
    parameters:
      path: pkg/calc.py
      content: "def add(a, b):\\n    return a + b\\n"
  - id: tests
    step_type: create_file
    parameters:
      path: pkg/test_calc.py
      content: "from calc import add\\n\\n\\ndef test_add():\\n    assert add(2, 3) == 5\\n"
  - id: compile
    step_type: compile_code
    parameters: {path: pkg}
    expect: {output: {language: python}}
  - id: test
    step_type: run_tests
    parameters: {path: pkg, language: python}
    expect: {stdout_contains: "1 passed"}
  - id: lint
    step_type: lint_code
    parameters: {path: pkg, language: python}
  - id: format
    step_type: format_code
    parameters: {path: pkg, language: python}
"""


def test_python_code_steps_pass(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A small Python package compiles, its tests run, and it is linted and format-checked."""
    write_mission("code", PROJECT)
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        ["*SUBPASSED[[]compile[]]*", "*SUBPASSED[[]test[]]*", "*SUBPASSED[[]lint[]]*", "*SUBPASSED[[]format[]]*"]
    )
    assert result.ret == 0, result.stdout.str()


def test_code_step_failures_show_the_tool_output(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A syntax error fails compile_code with the compiler's message; an unknown language is a clean error."""
    write_mission(
        "broken",
        """
        name: broken
        config: {fail_fast: false}
        steps:
          - id: module
            step_type: create_file
            parameters: {path: src/bad.py, content: "def f(:\\n"}
          - id: compile
            step_type: compile_code
            parameters: {path: src}
          - id: empty
            step_type: command
            parameters: {command: mkdir -p nothing}
          - id: guess
            step_type: run_tests
            parameters: {path: nothing}
        """,
    )
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    out = result.stdout.str()
    result.stdout.fnmatch_lines(["*SUBFAILED[[]compile[]]*", "*SUBFAILED[[]guess[]]*"])
    assert "SyntaxError" in out
    assert "cannot tell the language of 'nothing'" in out
    assert "HINT: set language: python | rust | go | node" in out


def test_unknown_language_is_a_schema_error(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """language: cobol is refused at collection with the supported languages."""
    write_mission("c", "name: c\nsteps: [{id: a, step_type: lint_code, parameters: {language: cobol}}]\n")
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert "'cobol' is not one of ['python', 'rust', 'go', 'node']" in result.stdout.str()
