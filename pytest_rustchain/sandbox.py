"""Confining command steps: choosing the strongest layer that works here (bubblewrap, else Landlock with
seccomp, else none) and preparing each launch for it."""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import re
import shutil
import site
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MODES", "Bwrap", "Landlock", "Launch", "Sandbox", "choose_sandbox", "probe_bwrap", "probe_sandbox"]

MODES = ("auto", "bwrap", "landlock", "none", "required")

_PROBE_ARGS = ("--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--die-with-parent")
_GET_BWRAP = "install bubblewrap (apt-get install bubblewrap, dnf install bubblewrap)"
# TCP ports a step may connect to under Landlock when mission_allow_hosts names a host: DNS, HTTP, HTTPS.
_WEB_PORTS = (53, 80, 443)
_HOST_PORT = re.compile(r"^\[?[^\[\]/]+?\]?:(\d{1,5})$")

# Messages of programs that found no network, in the languages of curl, wget, git, pip, Python and glibc.
NETWORK_FAILURE = re.compile(
    r"Could not resolve host|Temporary failure in name resolution|Name or service not known|"
    r"Network is unreachable|unable to resolve host address|Failed to establish a new connection|"
    r"getaddrinfo|socket: Permission denied|\[Errno 13\] Permission denied.*socket|"
    r"No address associated with hostname|Couldn't connect to server|Could not connect to",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Launch:
    """How to start one confined program: its argv, what the child does before exec, descriptors it keeps."""

    argv: list[str]
    start_in: Callable[[Callable[[], subprocess.Popen[bytes]]], subprocess.Popen[bytes]] | None = None
    """Runs the start of the process (in a confined thread), or None to start it here."""
    pass_fds: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Common:
    unix_sockets: bool = False
    """True when ``mission_allow_unix_sockets`` lets steps open Unix sockets (host sockets included)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Bwrap(_Common):
    """bubblewrap: the system read-only; writable only the workspace, HOME and TMPDIR; private /proc,
    /dev, /tmp and /run; the host HOME hidden; own pid, ipc, uts and (unless a host is allowed) network
    namespaces; no capabilities; Unix sockets refused by seccomp."""

    layer = "bwrap"
    bwrap: str
    describe: str = ""

    def precheck(self, program: str, cwd: Path, path: str | None) -> bool:
        """True when ``program`` can be found as exec inside the sandbox would find it (bwrap's own
        message for a missing program is an exit code 1 a check could accept)."""
        if os.sep in program:
            return os.access(cwd / program, os.X_OK)
        entries = (path if path is not None else os.defpath).split(os.pathsep)
        return shutil.which(program, path=os.pathsep.join(str(cwd / e) for e in entries)) is not None

    @contextlib.contextmanager
    def launch(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        writable: Sequence[Path],
        network: bool,
        readable: Sequence[Path] = (),
        read_only: Sequence[Path] = (),
        path: str | None = None,
        tcp_ports: Sequence[int] = (),
    ) -> Iterator[Launch]:
        """The bwrap command line for ``argv``, with the seccomp program on a pipe bwrap reads."""
        from pytest_rustchain import confine  # ctypes: loaded when a step runs, not with the plugin

        read_fd, write_fd = os.pipe()
        try:
            os.write(write_fd, confine.seccomp_filter(unix_sockets=self.unix_sockets, network=network))
        finally:
            os.close(write_fd)
        try:
            args = self.wrap(
                argv, cwd=cwd, writable=writable, network=network, readable=readable, read_only=read_only, path=path
            )
            yield Launch(argv=[*args[:1], "--seccomp", str(read_fd), *args[1:]], pass_fds=(read_fd,))
        finally:
            os.close(read_fd)

    def wrap(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        writable: Sequence[Path],
        network: bool,
        readable: Sequence[Path] = (),
        read_only: Sequence[Path] = (),
        path: str | None = None,
    ) -> list[str]:
        """The bwrap command line for ``argv`` (without the seccomp filter).

        ``readable`` names directories that must stay visible although they may lie under a hidden
        directory (the project checkout, the Python environment running pytest); the directories on the
        step's PATH are kept visible the same way.
        """
        # Hidden: the host's /tmp and /run (Unix sockets of agents, daemons, Docker) and the host HOME
        # (credentials, tool configuration); each is an empty private tmpfs in the sandbox.
        hidden = _hidden_dirs()
        args = [self.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        for directory in hidden:
            args += ["--tmpfs", str(directory)]
        keep = dict.fromkeys([*readable, *(Path(e) for e in (path or "").split(os.pathsep) if e.startswith("/"))])
        if network:
            keep[Path("/etc/resolv.conf")] = None  # often a link into /run (systemd-resolved)
        if argv and argv[0].startswith("/"):
            keep[Path(argv[0]).parent] = None  # a program named by its path stays where the mission said
        for wanted in keep:
            target = _resolve(wanted)
            if target is not None and any(target.is_relative_to(h) and target != h for h in hidden):
                args += ["--ro-bind", str(target), str(target)]
        for directory in writable:
            # Bound after the hidden directories, so a workspace under /tmp is mounted on top of them.
            args += ["--bind", str(directory), str(directory)]
        for directory in read_only:
            if directory.exists():
                args += ["--ro-bind", str(directory), str(directory)]
        args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session"]
        args += ["--cap-drop", "ALL"]
        if not network:
            args.append("--unshare-net")
        args += ["--chdir", str(cwd), "--", *argv]
        return args


@dataclass(frozen=True, slots=True, kw_only=True)
class Landlock(_Common):
    """Landlock and seccomp applied to the step's process: writes only below the workspace, HOME and
    TMPDIR; Unix sockets and (without an allowed host) network sockets refused; signals, abstract
    sockets and /proc of processes outside the step refused."""

    layer = "landlock"
    abi: int
    describe: str = field(default="")

    def precheck(self, program: str, cwd: Path, path: str | None) -> bool:
        return True  # exec runs in the real filesystem: its own error explains a missing program

    @contextlib.contextmanager
    def launch(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        writable: Sequence[Path],
        network: bool,
        readable: Sequence[Path] = (),
        read_only: Sequence[Path] = (),
        path: str | None = None,
        tcp_ports: Sequence[int] = (),
    ) -> Iterator[Launch]:
        from pytest_rustchain import confine

        rules = confine.Ruleset(
            writable=tuple(writable), read_only=tuple(read_only), network=network, tcp_ports=tuple(tcp_ports)
        )
        fd = rules.create()
        try:
            program = confine.seccomp_filter(unix_sockets=self.unix_sockets, network=network)
            yield Launch(argv=list(argv), start_in=functools.partial(confine.start_confined, fd, program))
        finally:
            os.close(fd)


Sandbox = Bwrap | Landlock


def _resolve(path: Path) -> Path | None:
    try:
        return path.resolve(strict=True)
    except OSError:
        return None


def _hidden_dirs() -> tuple[Path, ...]:
    found: list[Path] = []
    for name in (*_SYSTEM_HIDDEN, os.environ.get("HOME", ""), _account_home()):
        if not name or not name.startswith("/"):
            continue
        path = Path(name)
        if path.is_symlink():
            continue  # /var/run -> /run: hiding the target hides it
        real = _resolve(path)
        if real is not None and real != Path("/") and real.is_dir() and real not in found:
            found.append(real)
    return tuple(found)


_SYSTEM_HIDDEN = ("/tmp", "/run", "/var/run")  # noqa: S108


@functools.cache
def _account_home() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return ""


@functools.cache
def sandbox_readable() -> tuple[Path, ...]:
    """Directories of the running Python that steps must see (``{{ python }}``, the plugin itself)."""
    dirs = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).parent]
    user_site = site.getusersitepackages()
    if Path(user_site).is_dir():
        dirs.append(Path(user_site))
    return tuple(dirs)


@functools.cache
def tcp_ports(allow_hosts: tuple[str, ...]) -> tuple[int, ...]:
    """Ports connect() may reach under Landlock: DNS, HTTP, HTTPS and any ``host:port`` entry's port."""
    ports = set(_WEB_PORTS)
    for entry in allow_hosts:
        m = _HOST_PORT.match(entry.strip())
        if m and 0 < int(m.group(1)) < 65536:
            ports.add(int(m.group(1)))
    return tuple(sorted(ports))


@functools.cache
def probe_bwrap() -> tuple[str | None, str]:
    """Find bwrap and check, once, that it can start a no-op; the path, or None and the reason."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None, f"bwrap not found on PATH ({_GET_BWRAP})"
    try:
        proc = subprocess.run(
            [bwrap, *_PROBE_ARGS, "--unshare-net", "--", "true"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"bwrap does not start: {exc}"
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        hint = ""
        if "ermission" in why or "namespace" in why:
            hint = (
                "; on Ubuntu 24.04 AppArmor blocks it: sysctl kernel.apparmor_restrict_unprivileged_userns=0"
                " (or an AppArmor profile for bwrap)"
            )
        return None, f"bwrap cannot create namespaces here ({why}){hint}"
    return bwrap, f"bubblewrap at {bwrap}"


def probe_sandbox() -> tuple[Bwrap | None, str]:
    """bubblewrap when it works here, else None and the reason (kept for callers that only want bwrap)."""
    bwrap, why = probe_bwrap()
    return (Bwrap(bwrap=bwrap, describe=why) if bwrap else None), why


def choose_sandbox(mode: str, *, unix_sockets: bool = False) -> tuple[Sandbox | None, str, str | None]:
    """The layer for ``mode``: (sandbox or None, what the header says, an error that stops the run or None)."""
    if mode == "none":
        return None, "sandbox none (--mission-sandbox=none): command steps run unconfined", None
    bwrap_path, bwrap_why = (None, "not tried") if mode == "landlock" else probe_bwrap()
    if bwrap_path is not None:
        sandbox: Sandbox = Bwrap(bwrap=bwrap_path, unix_sockets=unix_sockets, describe=bwrap_why)
        return sandbox, f"sandbox bwrap ({bwrap_why})", None
    if mode == "bwrap":
        return None, "", f"--mission-sandbox=bwrap: {bwrap_why}"
    from pytest_rustchain import confine  # ctypes: only where bubblewrap is not used

    landlock_why = confine.landlock_problem()
    if landlock_why is None:
        abi = confine.landlock_abi()
        what = f"Landlock ABI {abi} and seccomp"
        line = f"sandbox landlock ({what})"
        if mode != "landlock":
            line += f"; bubblewrap would confine more: {bwrap_why}"
        return Landlock(abi=abi, unix_sockets=unix_sockets, describe=what), line, None
    if mode == "landlock":
        return None, "", f"--mission-sandbox=landlock: {landlock_why}"
    missing = f"{bwrap_why}; {landlock_why}"
    if mode == "required":
        error = (
            f"--mission-sandbox=required: no confinement layer works on this machine\n{missing}\n"
            f"HINT: {_GET_BWRAP}, or run on Linux 5.13 or newer with Landlock enabled"
        )
        return None, "", error
    return None, f"WARNING sandbox none: command steps run unconfined ({missing})", None
