"""Black-box tests: the JUnit XML reads right in a standard JUnit reader (junitparser)."""

from __future__ import annotations

import pytest
from junitparser import JUnitXml, TestCase, TestSuite

TOLERANT = """
name: passes with a tolerated step
steps:
  - id: optional-lint
    step_type: command
    continue_on_error: true
    parameters: {command: sh, args: [-c, "exit 3"]}
  - id: deploy
    step_type: noop
    if: vars.get('deploy')
  - id: build
    step_type: command
    parameters: {command: sh, args: [-c, "exit 0"]}
"""

FAILING = """
name: fails after a tolerated step
steps:
  - id: optional-lint
    step_type: command
    continue_on_error: true
    parameters: {command: sh, args: [-c, "exit 3"]}
  - id: build
    step_type: command
    parameters: {command: sh, args: [-c, "exit 1"]}
  - id: package
    step_type: noop
    depends_on: [build]
"""

EXPECTED_FAIL = """
name: known to fail
marks: [{xfail: the build is broken upstream}]
steps:
  - id: build
    step_type: command
    parameters: {command: sh, args: [-c, "exit 1"]}
"""

PLAIN = """
name: all good
steps:
  - id: only
    step_type: noop
"""


def _cases(path: str) -> dict[str, TestCase]:
    xml = JUnitXml.fromfile(path)
    suites = [xml] if isinstance(xml, TestSuite) else list(xml)
    return {case.name: case for suite in suites for case in suite}


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_junit_results_read_right_in_junitparser(
    pytester: pytest.Pytester, write_mission: pytest.FixtureDef[None], workers: list[str]
) -> None:
    """A passed mission with tolerated and if-skipped steps reads passed, a failed one failed, an xfail
    mission skipped; tolerated and skipped steps are in system-out, not the testcase's result."""
    for name, text in (("tolerant", TOLERANT), ("failing", FAILING), ("expected", EXPECTED_FAIL), ("plain", PLAIN)):
        write_mission(name, text)  # type: ignore[operator]
    result = pytester.runpytest("--mission-sandbox=none", "--junitxml=junit.xml", *workers)
    assert result.ret == 1
    cases = _cases(str(pytester.path / "junit.xml"))
    tolerant, failing, expected, plain = cases["tolerant"], cases["failing"], cases["expected"], cases["plain"]
    assert (tolerant.is_passed, tolerant.is_skipped, tolerant.is_failure) == (True, False, False)
    assert (plain.is_passed, plain.is_skipped) == (True, False)
    assert (failing.is_passed, failing.is_skipped, failing.is_failure) == (False, False, True)
    assert (expected.is_passed, expected.is_skipped, expected.is_failure) == (False, True, False)
    assert failing.result[-1].message == "1 of 3 steps failed: build"
    tolerant_out = tolerant.system_out or ""
    assert "tolerated (continue_on_error): step 'optional-lint' (command) failed at tolerant.mission.yaml:4" in (
        tolerant_out
    )
    assert "step 'deploy' (noop) skipped (not counted): if: vars.get('deploy') is false" in tolerant_out
    assert "step 'package' (noop) skipped: dependency 'build' failed" in (failing.system_out or "")
    xml = JUnitXml.fromfile(str(pytester.path / "junit.xml"))
    suite = next(iter(xml)) if not isinstance(xml, TestSuite) else xml
    assert (suite.tests, suite.failures, suite.skipped, suite.errors) == (4, 1, 1, 0)


def test_junit_testcase_time_is_the_missions_own(
    pytester: pytest.Pytester, write_mission: pytest.FixtureDef[None]
) -> None:
    """A testcase's time is the mission's own duration, not that duration plus its steps' again."""
    write_mission(  # type: ignore[operator]
        "slow",
        """
        name: sleeps
        steps:
          - id: a
            step_type: command
            parameters: {command: sleep, args: ["0.4"]}
          - id: b
            step_type: command
            parameters: {command: sleep, args: ["0.4"]}
        """,
    )
    pytester.runpytest("--mission-sandbox=none", "--junitxml=junit.xml", "--mission-report=r.json")
    case = _cases(str(pytester.path / "junit.xml"))["slow"]
    import json

    own = json.loads((pytester.path / "r.json").read_text())["missions"][0]["duration"]
    assert own >= 0.8
    assert case.time < own * 1.5
