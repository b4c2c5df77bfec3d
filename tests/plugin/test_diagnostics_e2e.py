"""Black-box tests: compiler and test-runner errors of failed steps in the headline, reports and annotations."""

from __future__ import annotations

import json

import pytest

MISSION = """
name: compile
config:
  workspace: {copy: proj}
steps:
  - id: build
    step_type: compile_code
  - id: detailed
    step_type: command
    if: always()
    parameters: {command: "{{ python }}", args: [-c, "import pkg.bad"], report_level: detailed, capture_stderr: true}
  - id: plain
    step_type: command
    if: always()
    parameters: {command: "{{ python }}", args: [-c, "import pkg.bad"]}
"""


@pytest.fixture
def broken_project(pytester: pytest.Pytester) -> None:
    (pytester.path / "proj" / "pkg").mkdir(parents=True)
    (pytester.path / "proj" / "pkg" / "bad.py").write_text("def f(:\n    pass\n")
    (pytester.path / "proj" / "pyproject.toml").write_text('[project]\nname = "x"\n')
    pytester.makefile(".mission.yaml", compile=MISSION)


def test_compile_errors_lead_the_failure_and_reach_every_report(
    pytester: pytest.Pytester, broken_project: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """compile_code (always) and a command with report_level: detailed show the first error as
    file:line: message in the failure's headline, the JSON report, the Markdown summary, and as a
    GitHub annotation on the project's source file."""
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    result = pytester.runpytest("--mission-sandbox=none", "--mission-report=r.json", "--mission-summary=s.md")
    result.stdout.fnmatch_lines(
        [
            "step 'build' (compile_code) failed at compile.mission.yaml:5",
            "  pkg/bad.py:1: SyntaxError: invalid syntax",
            "  exit code 1 (expected 0)",
        ]
    )
    result.stdout.fnmatch_lines(
        ["step 'detailed' (command) failed at compile.mission.yaml:7", "  pkg/bad.py:1: SyntaxError: invalid syntax"]
    )
    result.stdout.fnmatch_lines(
        ["step 'plain' (command) failed at compile.mission.yaml:11", "  exit code 1 (expected 0)"]
    )
    result.stdout.fnmatch_lines(
        [
            "::error file=proj/pkg/bad.py,line=1,title=mission compile%3A step build (python)::"
            "SyntaxError: invalid syntax"
        ]
    )
    report = json.loads((pytester.path / "r.json").read_text())
    steps = {s["id"]: s for s in report["missions"][0]["steps"]}
    assert steps["build"]["outputs"]["diagnostics"][0] == {
        "file": "pkg/bad.py",
        "line": 1,
        "col": 0,
        "message": "SyntaxError: invalid syntax",
        "tool": "python",
        "source": "proj/pkg/bad.py",
    }
    assert "diagnostics" in steps["detailed"]["outputs"]
    assert "diagnostics" not in steps["plain"]["outputs"]
    assert "pkg/bad.py:1: SyntaxError: invalid syntax" in (pytester.path / "s.md").read_text()


def test_report_level_is_checked(pytester: pytest.Pytester) -> None:
    """report_level takes summary or detailed; anything else is a collection error with the choices."""
    pytester.makefile(
        ".mission.yaml",
        bad="name: bad\nsteps:\n  - id: a\n    step_type: command\n"
        "    parameters: {command: 'true', report_level: full}\n",
    )
    result = pytester.runpytest("--mission-sandbox=none")
    result.stdout.fnmatch_lines(["bad.mission.yaml:5:*'full' is not one of [[]'summary', 'detailed'[]]*"])
