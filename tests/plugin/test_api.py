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


def test_fixtures_reach_missions_run_from_python(pytester: pytest.Pytester) -> None:
    """The `mission` fixture resolves a mission's fixtures in the test; run_mission takes their values."""
    pytester.makefile(
        ".setup.yaml",
        tools="name: tools\nsteps:\n  - id: make\n    step_type: command\n"
        "    parameters: {shell: true, command: 'echo kind=setup >> \"$MISSION_OUTPUT\"'}\n",
    )
    pytester.makefile(
        ".yaml",
        uses="name: uses\nfixtures: [greeting, tools.setup.yaml]\nsteps:\n  - id: say\n    step_type: command\n"
        "    parameters: {command: echo, args: ['{{ fixtures.greeting }} {{ fixtures.tools.steps.make.kind }}']}\n",
    )
    pytester.makepyfile(
        test_uses="""
        import pytest
        from pytest_rustchain import SetupFailed, run_mission

        @pytest.fixture
        def greeting():
            return "hello"

        def test_fixture(mission):
            assert mission.run("uses.yaml").steps["say"].outputs["stdout"] == "hello setup\\n"

        def test_api():
            result = run_mission("uses.yaml", fixtures={"greeting": "hi"})
            assert result.steps["say"].outputs["stdout"] == "hi setup\\n"
            with pytest.raises(SetupFailed, match="fixture 'greeting' .* has no value outside pytest"):
                run_mission("uses.yaml")
        """
    )
    result = pytester.runpytest("-v", "-p", "no:cacheprovider", "--mission-sandbox=none", "test_uses.py")
    result.assert_outcomes(passed=2)
