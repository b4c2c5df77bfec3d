"""Black-box tests: missions kept in pytest's cache between runs never change what runs."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import pytest

ECHO = """\
name: echo
steps:
  - id: say
    step_type: command
    parameters: {{command: echo, args: [{word}]}}
    expect: {{stdout_contains: hello}}
"""


def _entries(pytester: pytest.Pytester) -> list[Path]:
    directory = pytester.path / ".pytest_cache" / "d" / "rustchain-missions"
    return sorted(directory.glob("*.pickle")) if directory.is_dir() else []


def test_an_edited_mission_runs_as_edited(pytester: pytest.Pytester) -> None:
    """The first run keeps the mission; after an edit of the same length the next run sees the edit
    (here: the expected word is gone, so the mission fails), and going back passes again."""
    mission = pytester.path / "echo.mission.yaml"
    mission.write_text(ECHO.format(word="hello"))
    pytester.runpytest("--mission-sandbox=none").assert_outcomes(passed=1)
    assert len(_entries(pytester)) == 1
    stat = mission.stat()
    mission.write_text(ECHO.format(word="jello"))
    os.utime(mission, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same time: only the bytes differ
    pytester.runpytest("--mission-sandbox=none").assert_outcomes(failed=2)  # the step (a subtest) and the mission
    mission.write_text(ECHO.format(word="hello"))
    pytester.runpytest("--mission-sandbox=none").assert_outcomes(passed=1)


def test_an_edited_base_mission_reaches_the_extending_one(pytester: pytest.Pytester) -> None:
    """A mission that extends another is loaded again each run: an edit of the base shows at once."""
    base = pytester.path / "base.yaml"
    base.write_text(ECHO.format(word="hello"))
    pytester.makefile(".mission.yaml", child="name: child\nextends: base.yaml\nsteps: []\n")
    pytester.runpytest("--mission-sandbox=none").assert_outcomes(passed=1)
    base.write_text(ECHO.format(word="jello"))
    pytester.runpytest("--mission-sandbox=none").assert_outcomes(failed=2)  # the step (a subtest) and the mission
    assert _entries(pytester) == []


class _Exploit:
    def __init__(self, canary: str) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.canary}",)


def test_a_planted_entry_neither_runs_nor_replaces_the_mission(pytester: pytest.Pytester) -> None:
    """Every entry overwritten with a pickle that would run a command: the next run does not run it
    (the canary file stays absent) and runs the mission from its file."""
    pytester.makefile(".mission.yaml", echo=ECHO.format(word="hello"))
    pytester.runpytest("--mission-sandbox=none").assert_outcomes(passed=1)
    canary = pytester.path / "canary"
    entries = _entries(pytester)
    assert entries
    for entry in entries:
        entry.write_bytes(pickle.dumps(_Exploit(str(canary))))
    result = pytester.runpytest("--mission-sandbox=none", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*echo.mission.yaml::echo*PASSED*"])
    assert not canary.exists()


def test_no_cache_without_the_cacheprovider(pytester: pytest.Pytester) -> None:
    """With -p no:cacheprovider nothing is written and missions still run."""
    pytester.makefile(".mission.yaml", echo=ECHO.format(word="hello"))
    pytester.runpytest("--mission-sandbox=none", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert not (pytester.path / ".pytest_cache").exists()


def test_kept_missions_under_xdist_and_after_cache_clear(pytester: pytest.Pytester) -> None:
    """Workers read and write the same entries; --cache-clear starts afresh; results stay the same."""
    for i in range(4):
        pytester.makefile(".mission.yaml", **{f"m{i}": ECHO.format(word="hello")})
    for args in ((), ("-n", "2"), ("-n", "2"), ("--cache-clear",)):
        pytester.runpytest_subprocess("--mission-sandbox=none", *args).assert_outcomes(passed=4)
        assert len(_entries(pytester)) == 4


def test_warnings_of_a_kept_mission_are_shown_again(pytester: pytest.Pytester) -> None:
    """A compatibility-mode note given when the file was first loaded is given on every run."""
    pytester.makeini("[pytest]\nmission_compat = rustchain\n")
    pytester.makefile(".mission.yaml", old="name: old\nsteps:\n  - id: a\n    step_type: noop\n    unknown_key: 1\n")
    for _ in range(2):
        result = pytester.runpytest_subprocess("--mission-sandbox=none")
        result.assert_outcomes(passed=1, warnings=1)
        result.stdout.fnmatch_lines(["*unknown_key*"])


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_entries_unread_for_a_week_are_removed(pytester: pytest.Pytester, workers: list[str]) -> None:
    """An entry nobody read for a week goes at the end of a run, also when xdist workers collected;
    the entries of this run stay."""
    pytester.makefile(".mission.yaml", echo=ECHO.format(word="hello"))
    pytester.runpytest_subprocess("--mission-sandbox=none").assert_outcomes(passed=1)
    directory = pytester.path / ".pytest_cache" / "d" / "rustchain-missions"
    stale = directory / ("0" * 64 + ".pickle")
    stale.write_bytes(b"old")
    week_ago = time.time() - 8 * 24 * 3600
    os.utime(stale, (week_ago, week_ago))
    # The first run pruned already: the next prune is due a day later.
    yesterday = time.time() - 25 * 3600
    os.utime(directory / ".pruned", (yesterday, yesterday))
    pytester.runpytest_subprocess("--mission-sandbox=none", *workers).assert_outcomes(passed=1)
    assert not stale.exists()
    assert len(_entries(pytester)) == 1
