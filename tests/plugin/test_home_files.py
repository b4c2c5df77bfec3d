"""Black-box tests: the user's configuration files named in mission_home_files reach the mission's HOME, masked."""

from __future__ import annotations

from pathlib import Path

import pytest

TOKEN = "npm_Zx81kQ7pLw3vB2"
PASSWORD = "s3cr3t-Pa55word"


@pytest.fixture
def user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "user-home"
    (home / ".config" / "pip").mkdir(parents=True)
    (home / ".npmrc").write_text(f"registry=https://registry.example/\n//registry.example/:_authToken={TOKEN}\n")
    (home / ".config" / "pip" / "pip.conf").write_text(
        f"[global]\nindex-url = https://ci:{PASSWORD}@pypi.example/simple\ntimeout = 60\n"
    )
    monkeypatch.setenv("HOME", str(home))
    return home


def test_home_files_are_copied_into_the_mission_home_and_masked(pytester: pytest.Pytester, user_home: Path) -> None:
    """Files named in mission_home_files are in each mission's HOME; secrets in them never reach the output."""
    pytester.makeini(
        "[pytest]\nmission_home_files = ~/.npmrc ~/.config/pip/pip.conf\n"
        "mission_allow_rules = RC-SEC-001@home.mission.yaml::npmrc\n"
    )
    pytester.makefile(
        ".mission.yaml",
        home="""name: home
steps:
  - id: npmrc
    step_type: command
    parameters: {command: sh, args: [-c, 'cat "$HOME/.npmrc"; cat "$HOME/.config/pip/pip.conf"; exit 1']}
    expect: {stdout_contains: registry.example}
""",
    )
    result = pytester.runpytest("--mission-sandbox=none", "-v")
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "rustchain: mission_home_files from tox.ini: ~/.npmrc, ~/.config/pip/pip.conf",
            "*registry=https://registry.example/*",
        ]
    )
    assert "//registry.example/:_authToken=" in out
    assert "index-url = https://ci:" in out
    assert TOKEN not in out
    assert PASSWORD not in out


def test_a_missing_home_file_is_a_usage_error(pytester: pytest.Pytester, user_home: Path) -> None:
    """A home file that does not exist, or lies outside the home directory, stops the run with a clear message."""
    pytester.makeini("[pytest]\nmission_home_files = ~/.pypirc\n")
    pytester.makefile(".mission.yaml", a="name: a\nsteps:\n  - id: a\n    step_type: noop\n")
    result = pytester.runpytest("--mission-sandbox=none")
    result.stderr.fnmatch_lines(["*mission_home_files: ~/.pypirc does not exist*"])
    pytester.makeini("[pytest]\nmission_home_files = /etc/hostname\n")
    result = pytester.runpytest("--mission-sandbox=none")
    result.stderr.fnmatch_lines(["*mission_home_files: /etc/hostname is not a file under your home directory*"])
