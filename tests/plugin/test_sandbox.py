"""The bubblewrap sandbox: what a sandboxed command can and cannot see or change."""

from __future__ import annotations

import os
import pwd
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_rustchain import confine
from pytest_rustchain.sandbox import probe_bwrap, probe_sandbox

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
        probe_bwrap.cache_clear()
    write_mission("n", "name: n\nsteps: [{id: a, step_type: noop}]\n")
    try:
        result = pytester.runpytest("--mission-sandbox=bwrap")
    finally:
        probe_bwrap.cache_clear()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--mission-sandbox=bwrap: bwrap not found on PATH" in result.stderr.str()


landlock_why = confine.landlock_problem()
needs_landlock = pytest.mark.skipif(landlock_why is not None, reason=f"no Landlock layer: {landlock_why}")
NOOP = "name: n\nsteps: [{id: a, step_type: noop}]\n"


@pytest.fixture
def no_layer(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A machine with neither bubblewrap nor Landlock."""
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(confine, "landlock_problem", lambda: "Landlock is not in this kernel")
    probe_bwrap.cache_clear()
    yield
    probe_bwrap.cache_clear()


@pytest.mark.usefixtures("no_layer")
def test_required_without_any_layer_stops_the_run(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """--mission-sandbox=required on a machine with no layer stops with what is missing and a HINT."""
    write_mission("n", NOOP)
    result = pytester.runpytest("--mission-sandbox=required")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "--mission-sandbox=required: no confinement layer works on this machine" in err
    assert "bwrap not found on PATH" in err
    assert "Landlock is not in this kernel" in err
    assert "HINT: install bubblewrap" in err


@pytest.mark.usefixtures("no_layer")
def test_auto_without_any_layer_warns_in_the_header(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """auto with no layer runs unconfined, and the header warns, naming what is missing and how to get it."""
    write_mission("n", NOOP)
    result = pytester.runpytest("-v")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["rustchain: WARNING sandbox none: command steps run unconfined (bwrap not found on PATH (install bubblewrap*"]
    )
    assert "Landlock is not in this kernel" in result.stdout.str()


@needs_landlock
def test_landlock_mode_confines_writes(
    pytester: pytest.Pytester, write_mission: WriteMission, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """--mission-sandbox=landlock says so in the header; the workspace, HOME and TMPDIR stay writable, the
    rest of the filesystem does not."""
    outside = tmp_path_factory.mktemp("outside")
    write_mission(
        "ll",
        f"""
        name: ll
        steps:
          - id: inside
            step_type: command
            parameters:
              command: "{{{{ python }}}}"
              args: [-c, "import os; [open(d + '/f', 'w') for d in ('.', os.environ['HOME'], os.environ['TMPDIR'])]"]
          - id: devnull
            step_type: command
            parameters: {{shell: true, command: 'echo x > /dev/null && echo y >&2'}}
          - id: outside
            step_type: command
            parameters: {{command: "{{{{ python }}}}", args: [-c, "open('{outside}/f', 'w')"]}}
            expect: {{exit_code: 1, stderr_contains: PermissionError}}
        """,
    )
    result = pytester.runpytest("-v", "--mission-sandbox=landlock")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["rustchain: sandbox landlock (Landlock ABI * and seccomp)"])
    assert not (outside / "f").exists()


@pytest.mark.parametrize(
    "mode", [pytest.param("bwrap", marks=needs_bwrap), pytest.param("landlock", marks=needs_landlock)]
)
def test_missing_program_is_named_inside_the_sandbox(
    pytester: pytest.Pytester, write_mission: WriteMission, mode: str
) -> None:
    """A program that is not installed fails as 'not found on PATH', even when exit code 1 is accepted."""
    write_mission(
        "m",
        """
        name: m
        steps:
          - id: search
            step_type: command
            parameters: {command: rg-not-installed, args: [x]}
            expect: {exit_code: [0, 1]}
        """,
    )
    result = pytester.runpytest("-v", f"--mission-sandbox={mode}")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*program 'rg-not-installed' not found on PATH*"])


@pytest.mark.parametrize(
    "mode", [pytest.param("bwrap", marks=needs_bwrap), pytest.param("landlock", marks=needs_landlock)]
)
def test_network_failure_without_network_hints_at_allow_hosts(
    pytester: pytest.Pytester, write_mission: WriteMission, mode: str
) -> None:
    """A step that fails for want of network says that the sandbox has none and names mission_allow_hosts."""
    write_mission(
        "net",
        """
        name: net
        steps:
          - id: fetch
            step_type: command
            parameters: {command: curl, args: [-sS, -m, "5", "http://127.0.0.1:9/"]}
        """,
    )
    result = pytester.runpytest("-v", f"--mission-sandbox={mode}")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [f"*HINT: the {mode} sandbox gives command steps no network; name the hosts this mission needs in*"]
    )


@pytest.mark.parametrize(
    "mode", [pytest.param("bwrap", marks=needs_bwrap), pytest.param("landlock", marks=needs_landlock)]
)
def test_allowed_hosts_say_they_open_the_network(
    pytester: pytest.Pytester, write_mission: WriteMission, mode: str
) -> None:
    """With mission_allow_hosts the header says plainly that command steps get the network."""
    pytester.makeini("[pytest]\nmission_allow_hosts = example.com\n")
    write_mission("n", NOOP)
    result = pytester.runpytest("-v", f"--mission-sandbox={mode}")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["rustchain: mission_allow_hosts opens the network to command steps*: the sandbox does not limit which hosts*"]
    )


@pytest.mark.parametrize(
    "mode", [pytest.param("bwrap", marks=needs_bwrap), pytest.param("landlock", marks=needs_landlock)]
)
def test_unix_sockets_refused_unless_allowed(pytester: pytest.Pytester, write_mission: WriteMission, mode: str) -> None:
    """Unix sockets are refused inside the sandbox; mission_allow_unix_sockets lets them through and says so."""
    code = "import socket; s = socket.socket(socket.AF_UNIX); s.bind('s.sock'); print('bound')"
    write_mission(
        "u",
        f"""
        name: u
        steps:
          - id: sock
            step_type: command
            parameters: {{command: "{{{{ python }}}}", args: [-c, "{code}"]}}
            expect: {{stdout_contains: bound}}
        """,
    )
    refused = pytester.runpytest("-v", f"--mission-sandbox={mode}")
    assert refused.ret == 1
    refused.stdout.fnmatch_lines(["*PermissionError*"])
    pytester.makeini("[pytest]\nmission_allow_unix_sockets = true\n")
    allowed = pytester.runpytest("-v", f"--mission-sandbox={mode}")
    assert allowed.ret == 0, allowed.stdout.str()
    allowed.stdout.fnmatch_lines(
        ["rustchain: mission_allow_unix_sockets from tox.ini: host Unix sockets are reachable"]
    )


@needs_bwrap
def test_bwrap_hides_the_account_home(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """Files in the home directory of the account running pytest (credentials, tool configuration) are
    not visible inside bubblewrap."""
    home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    if not os.access(home, os.W_OK) or home == Path("/"):
        pytest.skip(f"cannot place a test file in {home}")
    planted = home / f".rustchain-hidden-{uuid.uuid4().hex[:8]}"
    planted.write_text("credentials\n")
    try:
        write_mission(
            "home",
            f"""
            name: home
            steps:
              - id: look
                step_type: command
                parameters: {{command: test, args: ["!", -e, "{planted}"]}}
            """,
        )
        result = pytester.runpytest("-v", "--mission-sandbox=bwrap")
        assert result.ret == 0, result.stdout.str()
    finally:
        planted.unlink()
