"""The Python API and the `mission` fixture, used from a user's own tests."""

from __future__ import annotations

import textwrap

import pytest

MISSION = """
name: release
vars: {v: "0.0"}
steps:
  - id: build
    step_type: command
    parameters: {command: echo, args: ["v{{ vars.v }}"]}
  - id: check
    step_type: noop
"""


def test_mission_fixture_runs_a_mission_file(pytester: pytest.Pytester) -> None:
    """A user's test runs a mission with the `mission` fixture and asserts on its result."""
    pytester.path.joinpath("missions").mkdir()
    pytester.path.joinpath("missions/release.mission.yaml").write_text(textwrap.dedent(MISSION))
    pytester.makepyfile(
        test_release="""
        def test_release(mission):
            result = mission.run("missions/release.mission.yaml", vars={"v": "1.2"})
            assert result.success_rate == 1.0
            assert result.steps["build"].outputs["stdout"] == "v1.2\\n"
            assert result.steps["build"].outputs["exit_code"] == 0
        """
    )
    result = pytester.runpytest("-v", "test_release.py")
    result.assert_outcomes(passed=1)


def test_run_mission_api(pytester: pytest.Pytester) -> None:
    """`run_mission()` works in plain Python with a workspace and vars."""
    pytester.path.joinpath("release.mission.yaml").write_text(textwrap.dedent(MISSION))
    pytester.makepyfile(
        test_user_api="""
        from pytest_rustchain import run_mission

        def test_release_mission(tmp_path):
            result = run_mission("release.mission.yaml", workspace=tmp_path, vars={"v": "3.1"})
            assert result.success_rate >= 0.9
            assert result.steps["build"].outputs["exit_code"] == 0
            assert result.steps["build"].outputs["stdout"].strip() == "v3.1"
        """
    )
    result = pytester.runpytest("-v", "test_user_api.py")
    result.assert_outcomes(passed=1)
