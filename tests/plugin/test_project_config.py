"""Black-box tests: missions under a project's own pytest configuration (marks, filterwarnings, -o)."""

from __future__ import annotations

import pytest

MARKED = "name: marked\nmarks: [smok]\nsteps:\n  - id: a\n    step_type: noop\n"
PLAIN = "name: plain\nsteps:\n  - id: a\n    step_type: noop\n"


def _missions(pytester: pytest.Pytester, ini: str) -> None:
    pytester.makeini(ini)
    pytester.makefile(".mission.yaml", marked=MARKED, plain=PLAIN)


def test_unknown_mark_under_filterwarnings_error_fails_only_its_mission(pytester: pytest.Pytester) -> None:
    """With filterwarnings = error an unregistered mark fails that mission with a clean message at the
    mark's line; the session is not interrupted and the other missions run."""
    _missions(pytester, "[pytest]\nmarkers =\n    smoke: quick ones\nfilterwarnings =\n    error\n")
    result = pytester.runpytest("--mission-sandbox=none")
    out = result.stdout.str()
    assert "Interrupted" not in out
    assert "Traceback" not in out and "plugin.py" not in out
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "marked.mission.yaml:2:9: unknown mark 'smok' (filterwarnings turns the warning into an error)",
            "  HINT: did you mean 'smoke'? Or register it in the pytest configuration: markers = smok: description",
        ]
    )


def test_unknown_mark_warning_names_the_mission_file(pytester: pytest.Pytester) -> None:
    """Without filterwarnings = error the unknown-mark warning is located at the mission file, not the plugin."""
    # "default" shows warnings instead of raising them (this suite itself runs with "error").
    _missions(pytester, "[pytest]\nmarkers =\n    smoke: quick ones\nfilterwarnings =\n    default\n")
    result = pytester.runpytest("--mission-sandbox=none")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(["marked.mission.yaml:2", "*marked.mission.yaml:2: PytestUnknownMarkWarning:*'smok'*"])
    assert "plugin.py" not in result.stdout.str()


def test_header_names_where_each_setting_came_from(pytester: pytest.Pytester) -> None:
    """The header attributes -o overrides to the command line and file values to the file."""
    pytester.makeini("[pytest]\nmission_allow_hosts = example.org\nmission_sandbox = none\n")
    pytester.makefile(".mission.yaml", plain=PLAIN)
    result = pytester.runpytest("-o", "mission_allow_commands=make", "-o", "mission_safety=strict")
    result.stdout.fnmatch_lines(
        [
            "rustchain: safety policy strict (blocks at risk 40); strict set by mission_safety from the command line*",
            "rustchain: mission_allow_commands from the command line (-o): make",
            "rustchain: mission_allow_hosts from tox.ini: example.org",
            "rustchain: sandbox none (set by mission_sandbox from tox.ini)",
        ]
    )
    result = pytester.runpytest("-o", "mission_allow_hosts=pypi.org", "--mission-safety=permissive")
    result.stdout.fnmatch_lines(
        [
            "rustchain: safety policy permissive (blocks at risk 100); permissive set by --mission-safety=permissive",
            "rustchain: mission_allow_hosts from the command line (-o): pypi.org",
        ]
    )
