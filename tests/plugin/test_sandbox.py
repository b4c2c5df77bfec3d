"""The bubblewrap sandbox: what a sandboxed command can and cannot see or change."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_rustchain.sandbox import probe_sandbox

WriteMission = Callable[[str, str], None]

sandbox, why = probe_sandbox()
needs_bwrap = pytest.mark.skipif(sandbox is None, reason=f"no working bubblewrap: {why}")


@needs_bwrap
def test_project_under_tmp_stays_visible(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A project checked out under /tmp is readable from inside the private /tmp of the sandbox."""
    data = pytester.path / "data.txt"
    data.write_text("project data\n")
    assert str(pytester.path).startswith("/tmp/")
    write_mission(
        "see",
        f"""
        name: see
        steps:
          - id: read
            step_type: command
            parameters: {{command: cat, args: ["{data}"]}}
            expect: {{stdout_contains: project data}}
          - id: python
            step_type: command
            parameters: {{command: "{{{{ python }}}}", args: [-c, "print('ok')"]}}
            expect: {{stdout_contains: ok}}
        """,
    )
    result = pytester.runpytest("-v", "--mission-sandbox=bwrap")
    assert result.ret == 0, result.stdout.str()


@needs_bwrap
def test_sandbox_hides_host_tmp_and_network(
    pytester: pytest.Pytester, write_mission: WriteMission, tmp_path: Path
) -> None:
    """Inside the sandbox the host's /tmp files are not visible and there is no network but loopback."""
    secret = Path("/tmp") / f"rustchain-host-file-{tmp_path.name}"
    secret.write_text("host\n")
    try:
        write_mission(
            "hide",
            f"""
            name: hide
            steps:
              - id: tmp
                step_type: command
                parameters: {{command: sh, args: [-c, "test ! -e {secret}"]}}
              - id: net
                step_type: command
                parameters: {{command: grep, args: [-c, ":", /proc/net/dev]}}
                expect: {{stdout_matches: "^1$"}}
            """,
        )
        result = pytester.runpytest("-v", "--mission-sandbox=bwrap")
        assert result.ret == 0, result.stdout.str()
        assert "rustchain: sandbox bwrap" in result.stdout.str()
    finally:
        secret.unlink()


def test_sandbox_none_is_reported_in_header(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """--mission-sandbox=none runs without bubblewrap and the header says so."""
    write_mission("n", "name: n\nsteps: [{id: a, step_type: noop}]\n")
    result = pytester.runpytest("-v", "--mission-sandbox=none")
    assert "rustchain: sandbox none (set by --mission-sandbox=none)" in result.stdout.str()
    assert result.ret == 0


def test_required_bwrap_missing_is_a_usage_error(
    pytester: pytest.Pytester, write_mission: WriteMission, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--mission-sandbox=bwrap without a working bubblewrap stops with the reason, not a traceback."""
    if shutil.which("bwrap") is not None:
        monkeypatch.setenv("PATH", "/nonexistent")
        probe_sandbox.cache_clear()
    write_mission("n", "name: n\nsteps: [{id: a, step_type: noop}]\n")
    try:
        result = pytester.runpytest("--mission-sandbox=bwrap")
    finally:
        probe_sandbox.cache_clear()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--mission-sandbox=bwrap: bwrap not found on PATH" in result.stderr.str()
