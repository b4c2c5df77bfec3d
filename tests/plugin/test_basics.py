"""Black-box tests: missions collected as items, steps reported as subtests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

WriteMission = Callable[[str, str], None]

PASSING = """
name: Release build
steps:
  - id: make-dir
    step_type: command
    parameters: {command: mkdir -p build}
  - id: write
    step_type: create_file
    parameters: {path: build/out.txt, content: "hello"}
  - id: check
    step_type: read_file
    parameters: {path: build/out.txt}
    expect:
      output: {content: hello}
"""


def test_steps_are_subpassed_lines(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """Each step shows as SUBPASSED[id] under -v and the mission passes."""
    write_mission("release", PASSING)
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(
        [
            "*SUBPASSED[[]make-dir[]]*",
            "*SUBPASSED[[]write[]]*",
            "*SUBPASSED[[]check[]]*",
            "*release.mission.yaml::release PASSED*",
        ]
    )
    assert result.ret == 0


def test_item_id_is_path_and_stem(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """The item is `path::stem`, so -k, --lf and history use the file name."""
    write_mission("release", PASSING)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["release.mission.yaml::release"])


def test_failing_step_fails_mission_and_skips_dependents(
    pytester: pytest.Pytester, write_mission: WriteMission
) -> None:
    """A failing step is SUBFAILED with its stderr; its dependents are SUBSKIPPED naming it."""
    write_mission(
        "build",
        """
        name: Build
        steps:
          - id: compile
            step_type: command
            parameters:
              command: sh
              args: [-c, "echo 'error: missing semicolon' >&2; exit 3"]
          - id: package
            step_type: noop
            depends_on: [compile]
        """,
    )
    result = pytester.runpytest("-v", "-rA")
    result.stdout.fnmatch_lines(
        [
            "*SUBFAILED[[]compile[]]*",
            "*SUBSKIPPED[[]package[]]*",
            "*exit code 3 (expected 0)*",
            "*error: missing semicolon*",
            "*1 of 2 steps failed: compile*",
        ]
    )
    assert "dependency 'compile' failed" in result.stdout.str()
    assert result.ret == 1


def test_k_selects_by_stem(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """-k release selects only the release mission."""
    write_mission("release", PASSING)
    write_mission("nightly", PASSING.replace("Release build", "Nightly"))
    result = pytester.runpytest("-v", "-k", "release")
    result.assert_outcomes(passed=1, deselected=1)


def test_last_failed_reruns_a_fixed_broken_file(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A broken file fails as `path::stem`; after the fix, --lf reruns exactly that mission."""
    write_mission("release", PASSING)
    write_mission("broken", "name: b\nsteps: {}\n")
    first = pytester.runpytest("-v")
    first.assert_outcomes(passed=1, failed=1)
    write_mission("broken", "name: b\nsteps: [{id: a, step_type: noop}]\n")
    again = pytester.runpytest("-v", "--lf")
    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines(["*broken.mission.yaml::broken PASSED*"])
    assert "release.mission.yaml::release" not in again.stdout.str()
