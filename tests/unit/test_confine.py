"""Landlock rules and the seccomp filter, applied to real child processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_rustchain import confine

problem = confine.landlock_problem()
pytestmark = pytest.mark.skipif(problem is not None, reason=f"no Landlock layer: {problem}")


def _run(
    code: str, rules: confine.Ruleset, *, cwd: Path, unix_sockets: bool = False
) -> subprocess.CompletedProcess[str]:
    fd = rules.create()
    try:
        program = confine.seccomp_filter(unix_sockets=unix_sockets, network=rules.network)
        proc = confine.start_confined(
            fd,
            program,
            lambda: subprocess.Popen(
                [sys.executable, "-c", code], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            ),
        )
    finally:
        os.close(fd)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out.decode(), err.decode())


def test_writes_only_below_the_writable_directories(tmp_path: Path) -> None:
    """A confined process writes in its writable directories and nowhere else; reading stays allowed."""
    inside, outside = tmp_path / "in", tmp_path / "out"
    inside.mkdir()
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    code = (
        "import os\n"
        "open('in/new.txt', 'w').write('ok')\n"
        "print(open('out/keep.txt').read())\n"
        "acts = (lambda: open('out/keep.txt', 'w'), lambda: os.remove('out/keep.txt'), lambda: os.mkdir('out/d'))\n"
        "for act in acts:\n"
        "    try:\n        act()\n    except PermissionError:\n        print('refused')\n"
    )
    proc = _run(code, confine.Ruleset(writable=(inside,)), cwd=tmp_path)
    assert proc.stdout.split() == ["keep", "refused", "refused", "refused"], proc.stderr
    assert (inside / "new.txt").read_text() == "ok"
    assert (outside / "keep.txt").read_text() == "keep"


def test_read_only_child_of_a_writable_directory(tmp_path: Path) -> None:
    """A read-only child (a checkout's .git) refuses writes, also through a symlink; its siblings do not."""
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("[core]\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "g").symlink_to("../.git")
    code = (
        "open('src/x.py', 'w').write('ok')\n"
        "for path in ('.git/config', 'src/g/config', 'new-top-level.txt'):\n"
        "    try:\n        open(path, 'a').write('x')\n    except PermissionError:\n        print('refused', path)\n"
    )
    proc = _run(code, confine.Ruleset(writable=(tmp_path,), read_only=(tmp_path / ".git",)), cwd=tmp_path)
    assert proc.stdout.splitlines() == [
        "refused .git/config",
        "refused src/g/config",
        "refused new-top-level.txt",
    ], proc.stderr
    assert (tmp_path / ".git" / "config").read_text() == "[core]\n"
    assert (tmp_path / "src" / "x.py").read_text() == "ok"


@pytest.mark.parametrize(
    ("network", "unix_sockets", "expected"),
    [
        (False, False, "unix:refused inet:refused pair:ok"),
        (True, False, "unix:refused inet:ok pair:ok"),
        (False, True, "unix:ok inet:refused pair:ok"),
    ],
)
def test_seccomp_refuses_sockets(tmp_path: Path, network: bool, unix_sockets: bool, expected: str) -> None:
    """Unix sockets unless allowed, IP sockets without network; socketpair always works."""
    code = (
        "import socket\nout = []\n"
        "for name, make in (('unix', lambda: socket.socket(socket.AF_UNIX)), ('inet', lambda: socket.socket()),"
        " ('pair', socket.socketpair)):\n"
        "    try:\n        make()\n        out.append(name + ':ok')\n"
        "    except PermissionError:\n        out.append(name + ':refused')\n"
        "print(' '.join(out))\n"
    )
    rules = confine.Ruleset(writable=(tmp_path,), network=network)
    proc = _run(code, rules, cwd=tmp_path, unix_sockets=unix_sockets)
    assert proc.stdout.strip() == expected, proc.stderr


def test_parent_environment_is_out_of_reach(tmp_path: Path) -> None:
    """A confined process cannot read the environment of the process that started it."""
    code = (
        "import os\ntry:\n    open(f'/proc/{os.getppid()}/environ', 'rb').read()\n    print('read')\n"
        "except OSError:\n    print('refused')\n"
    )
    proc = _run(code, confine.Ruleset(writable=(tmp_path,)), cwd=tmp_path)
    assert proc.stdout.strip() == "refused", proc.stderr


def test_the_calling_thread_stays_unconfined(tmp_path: Path) -> None:
    """Only the process started in the confined thread is confined, never pytest itself."""
    rules = confine.Ruleset(writable=(tmp_path / "nowhere",))
    _run("pass", rules, cwd=tmp_path)
    (tmp_path / "still-writable.txt").write_text("ok")
    assert (tmp_path / "still-writable.txt").read_text() == "ok"


@pytest.mark.skipif(confine.landlock_abi() < 4, reason="TCP port rules need Landlock ABI 4")
def test_refused_ruleset_is_a_confinement_error(tmp_path: Path) -> None:
    """A ruleset the kernel refuses raises ConfinementError, so the step is not run unconfined."""
    with pytest.raises(confine.ConfinementError, match="landlock_add_rule"):
        confine.Ruleset(writable=(tmp_path,), network=True, tcp_ports=(70000,)).create()
