"""Black-box tests of the run history kept in pytest's cache: regressions, flaky steps, the table."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

WriteMission = Callable[[str, str], None]

FLIP = """
name: Flip follows a variable
steps:
  - id: ready
    step_type: noop
  - id: check
    step_type: command
    continue_on_error: true
    parameters: {command: sh, args: [-c, "exit {{ vars.code }}"]}
"""


def _cache_value(pytester: pytest.Pytester) -> dict[str, object]:
    path = pytester.path / ".pytest_cache" / "d" / "rustchain-history" / "runs.json"
    value = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(value, dict)
    return value


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_regression_and_flaky_step_across_runs(
    pytester: pytest.Pytester, write_mission: WriteMission, workers: list[str]
) -> None:
    """A rate that fell since the last run is named with both rates, and a step that passed in one run
    and failed in another is named as flaky across runs, also when the run used xdist workers."""
    write_mission("flip", FLIP)
    first = pytester.runpytest("--mission-var", "code=0", *workers)
    assert first.ret == 0
    first.stdout.no_fnmatch_line("*regressed*")
    second = pytester.runpytest("--mission-var", "code=1", *workers)
    assert second.ret == 0  # the failure is tolerated; the history still sees it
    second.stdout.fnmatch_lines(
        [
            "flip.mission.yaml::flip: regressed from 100% to 50% since the last run",
            "flip.mission.yaml::flip: flaky across the last 2 runs: check (1/2)",
        ]
    )
    value = _cache_value(pytester)
    missions = value["missions"]
    assert isinstance(missions, dict)
    runs = missions["flip.mission.yaml::flip"]["runs"]
    assert [(r["passed"], r["total"]) for r in runs] == [(2, 2), (1, 2)]
    assert runs[1]["steps"] == {"ready": "1/1", "check": "0/1"}


def test_history_kept_by_an_older_version_is_read(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A history an older version kept as a pytest cache value (``rustchain/history``) is the previous
    run when there is no history file yet: the next run compares with it and then keeps the file."""
    write_mission("flip", FLIP)
    pytester.runpytest("--mission-var", "code=0")
    new = pytester.path / ".pytest_cache" / "d" / "rustchain-history" / "runs.json"
    old = pytester.path / ".pytest_cache" / "v" / "rustchain" / "history"
    old.parent.mkdir(parents=True)
    old.write_text(new.read_text(encoding="utf-8"), encoding="utf-8")
    new.unlink()
    second = pytester.runpytest("--mission-var", "code=1")
    second.stdout.fnmatch_lines(["flip.mission.yaml::flip: regressed from 100% to 50% since the last run"])
    assert new.is_file()


def test_history_table_without_running(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """--mission-history with --collect-only prints each kept run's rate and each step's outcomes, and runs nothing."""
    write_mission("flip", FLIP)
    pytester.runpytest("--mission-var", "code=0")
    pytester.runpytest("--mission-var", "code=1")
    result = pytester.runpytest("--mission-history", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "*mission history*",
            "flip.mission.yaml::flip: 2 runs, 3/4 steps passed (75%)",
            "  rates: 100% 50%",
            "  ready  ..  2/2 (100%)",
            "  check  .F  1/2 (50%)",
        ]
    )
    runs = _cache_value(pytester)["missions"]["flip.mission.yaml::flip"]["runs"]  # type: ignore[index]
    assert len(runs) == 2  # the collect-only run added nothing


def test_history_keeps_the_configured_number_of_runs(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """mission_history_runs bounds how many runs of each mission are kept."""
    write_mission("flip", FLIP)
    pytester.makeini("[pytest]\nmission_history_runs = 2\n")
    for code in ("1", "0", "0"):
        pytester.runpytest("--mission-var", f"code={code}")
    runs = _cache_value(pytester)["missions"]["flip.mission.yaml::flip"]["runs"]  # type: ignore[index]
    assert [(r["passed"], r["total"]) for r in runs] == [(2, 2), (2, 2)]


def test_without_the_cache_provider_history_is_off_quietly(
    pytester: pytest.Pytester, write_mission: WriteMission
) -> None:
    """-p no:cacheprovider runs missions without history and without any error; asking for the table says why."""
    write_mission("flip", FLIP)
    result = pytester.runpytest("-p", "no:cacheprovider", "--mission-var", "code=1")
    assert result.ret == 0
    result.stdout.no_fnmatch_line("*mission history*")
    result.stdout.no_fnmatch_line("*run history is off*")
    assert not (pytester.path / ".pytest_cache").exists()
    shown = pytester.runpytest("-p", "no:cacheprovider", "--mission-history", "--mission-var", "code=1")
    shown.stdout.fnmatch_lines(["run history is off: pytest's cache provider is disabled (-p no:cacheprovider)"])


def test_bad_history_size_is_a_usage_error(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A mission_history_runs that is not a whole number stops the run with a HINT."""
    write_mission("flip", FLIP)
    pytester.makeini("[pytest]\nmission_history_runs = many\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*mission_history_runs: 'many' is not a number of runs*", "*HINT*"])
