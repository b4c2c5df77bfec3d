"""Running one step's subprocess: bounded capture, timeout, and making sure nothing it started survives."""

from __future__ import annotations

import contextlib
import errno
import functools
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_rustchain.errors import StepError

__all__ = [
    "CapturedStream",
    "ConfinementError",
    "HeadTailBuffer",
    "ProcessResult",
    "explain_start_failure",
    "nondumpable",
    "run_process",
]

_READ_CHUNK = 256 * 1024
_WRITE_CHUNK = 64 * 1024
# Once everything the step started is dead the pipes are at EOF at once; this only bounds the wait for a
# writer we cannot reach (a descriptor passed over a socket to a process outside the tree).
_DRAIN_AFTER_EXIT = 0.5
# Bounds killing and reaping; SIGKILLed processes die in microseconds unless stuck in the kernel.
_SWEEP_LIMIT = 2.0
# Without a pidfd the main process's exit is noticed by polling at this period.
_EXIT_POLL = 0.01
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_DUMPABLE = 4
_POLL_IN = select.POLLIN | select.POLLPRI
_POLL_END = select.POLLHUP | select.POLLERR | select.POLLNVAL


@dataclass(frozen=True, slots=True, kw_only=True)
class CapturedStream:
    """What a process wrote on one stream, cut in the middle when it was too long."""

    text: str
    """Decoded UTF-8 (invalid bytes replaced); over the cap: head, an omission marker, tail."""
    total_bytes: int
    """Bytes the process wrote in all, kept or not."""
    truncated: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessResult:
    """How one process run ended."""

    argv: tuple[str, ...]
    exit_code: int | None
    """None when stopped for its timeout; minus the signal number when a signal ended it otherwise."""
    stdout: CapturedStream
    stderr: CapturedStream
    timed_out: bool
    duration: float
    """Seconds from start until everything was stopped and reaped."""
    killed_stragglers: int
    """Processes other than the main one that had to be signalled because the step left them behind."""


class HeadTailBuffer:
    """Keeps the first and the last ``cap`` bytes of a stream and counts the rest, so memory stays bounded."""

    __slots__ = ("_cap", "_head", "_tail", "_total")

    def __init__(self, cap: int) -> None:
        if cap < 0:
            raise ValueError(f"output cap must be >= 0, got {cap}")
        self._cap = cap
        self._head = bytearray()
        self._tail = bytearray()
        self._total = 0

    def feed(self, data: bytes) -> None:
        self._total += len(data)
        room = self._cap - len(self._head)
        if room > 0:
            self._head += data[:room]
            if len(data) <= room:
                return
            data = data[room:]
        self._tail += data
        # Trimming only once the tail holds twice the cap keeps the cost amortised O(1) per byte.
        if len(self._tail) > 2 * self._cap:
            del self._tail[: len(self._tail) - self._cap]

    def result(self) -> CapturedStream:
        tail = self._tail[max(0, len(self._tail) - self._cap) :]
        omitted = self._total - len(self._head) - len(tail)
        if omitted <= 0:
            text = (self._head + tail).decode("utf-8", errors="replace")
        else:
            text = (
                self._head.decode("utf-8", errors="replace")
                + f"\n[... {omitted} bytes omitted ...]\n"
                + tail.decode("utf-8", errors="replace")
            )
        return CapturedStream(text=text, total_bytes=self._total, truncated=omitted > 0)


# --- making this process the reaper of orphans -------------------------------------------------------

_subreaper_lock = threading.Lock()
_subreaper_users = 0  # run_process calls in progress in this process
_subreaper_pid = 0  # the pid the count belongs to: fork() does not inherit the setting


@functools.cache
def _prctl() -> Any:
    if sys.platform != "linux":
        return None
    import ctypes  # loaded by the first process a step starts

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


def _prctl_subreaper(on: bool) -> bool:
    prctl = _prctl()
    return prctl is not None and bool(prctl(_PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) == 0)


def _subreaper_enter() -> bool:
    """Make this process a child subreaper while a step runs, so a step's orphans become our children.

    Without it a process that escapes the group (``setsid``, double fork) is adopted by init once its
    parent exits and can no longer be told apart from the rest of the system. The setting is dropped
    again when no step runs, so orphans of unrelated code in the pytest process (xdist gateways,
    other plugins) keep going to init instead of lingering here as zombies.
    """
    global _subreaper_users, _subreaper_pid
    with _subreaper_lock:
        pid = os.getpid()
        if _subreaper_pid != pid:
            _subreaper_pid, _subreaper_users = pid, 0
        _subreaper_users += 1
        if _subreaper_users == 1:
            return _prctl_subreaper(True)
        return True


def _subreaper_exit() -> None:
    global _subreaper_users
    with _subreaper_lock:
        if _subreaper_pid != os.getpid():
            return
        _subreaper_users -= 1
        if _subreaper_users == 0:
            _prctl_subreaper(False)


# --- the pytest process itself while steps run --------------------------------------------------------

_dump_lock = threading.Lock()
_dump_users = 0


@contextlib.contextmanager
def nondumpable() -> Iterator[None]:
    """Make this process non-dumpable while steps run: another process of the same user can then no longer
    read its ``/proc/<pid>/environ`` or memory (root, with CAP_SYS_PTRACE, still can)."""
    global _dump_users
    prctl = _prctl()
    if prctl is None:
        yield
        return
    with _dump_lock:
        _dump_users += 1
        if _dump_users == 1:
            prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    try:
        yield
    finally:
        with _dump_lock:
            _dump_users -= 1
            if _dump_users == 0:
                prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)


class ConfinementError(Exception):
    """The kernel refused a ruleset or to confine a thread: nothing was started."""


# Main pids of run_process calls in progress in this process (other threads): their processes are not ours.
_active_lock = threading.Lock()
_active_mains: set[int] = set()


# --- reading /proc -----------------------------------------------------------------------------------

_HAS_CHILDREN_FILE = Path(f"/proc/self/task/{os.getpid()}/children").exists()


def _read_all(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _children_of_self() -> set[int] | None:
    """Pids whose parent is this process, or None where the kernel has no ``children`` file."""
    if not _HAS_CHILDREN_FILE:
        return None
    # Plain os calls: this runs twice per step, and the io stack costs more than the read itself.
    task_dir = f"/proc/{os.getpid()}/task"
    pids: set[int] = set()
    try:
        tasks = [entry.name for entry in os.scandir(task_dir)]
    except OSError:
        return None
    for tid in tasks:
        try:
            pids.update(int(p) for p in _read_all(f"{task_dir}/{tid}/children").split())
        except FileNotFoundError:
            continue  # the thread ended meanwhile
    return pids


# waitid's __WALL: children of every kind, also those whose exit signal is not SIGCHLD (Linux >= 4.7).
_WAIT_ALL = 0x40000000 if sys.platform == "linux" else 0


def _may_have_children() -> bool:
    """False only when this process (any of its threads) has no child at all, which one ``waitid``
    tells without reading /proc: between steps the pytest process usually has none."""
    if not _WAIT_ALL or not hasattr(os, "waitid"):
        return True
    try:
        # WNOWAIT: an exited child stays waitable, for whoever started it.
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT | _WAIT_ALL)
    except ChildProcessError:
        return False
    except OSError:
        return True  # an older kernel refuses __WALL: read /proc as before
    return True


@dataclass(frozen=True, slots=True)
class _Proc:
    ppid: int
    sid: int
    zombie: bool


def _scan_proc() -> dict[int, _Proc] | None:
    """Every process of the system with its parent and session, or None without a /proc."""
    try:
        names = [entry.name for entry in os.scandir("/proc")]
    except OSError:
        return None
    table: dict[int, _Proc] = {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            fd = os.open(f"/proc/{name}/stat", os.O_RDONLY)
            try:
                data = os.read(fd, 4096)
            finally:
                os.close(fd)
        except OSError:
            continue  # gone meanwhile
        # The command name may contain spaces and ')', so the fields start after the LAST ')'.
        fields = data[data.rfind(b")") + 2 :].split()
        if len(fields) < 4:
            continue
        # fields: state, ppid, pgrp, session, ...
        table[int(name)] = _Proc(ppid=int(fields[1]), sid=int(fields[3]), zombie=fields[0] in (b"Z", b"X"))
    return table


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _reap_nohang(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _open_pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None  # not Linux >= 5.3: fall back to polling


# --- resolving the program ---------------------------------------------------------------------------


def _short_path(entries: Sequence[str]) -> str:
    if len(entries) <= 8:
        return os.pathsep.join(entries)
    return os.pathsep.join(entries[:6]) + f"{os.pathsep}... ({len(entries) - 6} more)"


def _start_failure(exc: OSError, program: str, cwd: Path, env: Mapping[str, str]) -> StepError:
    """Explain why exec failed, looking the program up in the step's PATH as exec did (not pytest's)."""
    if exc.filename is not None and str(exc.filename) == str(cwd):
        return StepError(f"cannot run '{program}': working directory {cwd} {exc.strerror or exc}")
    if os.sep in program:
        candidate = cwd / program  # an absolute program stays as it is
        if not candidate.exists():
            return StepError(f"program '{program}' not found\n{candidate} does not exist")
        if candidate.is_dir():
            return StepError(f"program '{program}' is a directory")
        if not os.access(candidate, os.X_OK):
            return StepError(f"program '{program}' is not executable\nHINT: chmod +x it, or run it via its interpreter")
        return StepError(f"cannot run '{program}': {exc.strerror or exc}{_interpreter_note(exc, candidate)}")
    entries = os.get_exec_path(env)  # what exec searched: the default path when env has no PATH
    # exec resolves relative entries (and the empty one) against the directory the step runs in.
    found = shutil.which(program, path=os.pathsep.join(str(cwd / entry) for entry in entries))
    if found is None:
        message = (
            f"program '{program}' not found on PATH\n"
            f"PATH searched: {_short_path(entries)}\n"
            "HINT: install it, give its full path, or set PATH in the step's env"
        )
        return StepError(message)
    return StepError(f"cannot run '{program}' ({found}): {exc.strerror or exc}{_interpreter_note(exc, Path(found))}")


explain_start_failure = _start_failure


def _interpreter_note(exc: OSError, program: Path) -> str:
    """For a script whose ``#!`` interpreter is missing, which exec reports as the script being missing."""
    if exc.errno != errno.ENOENT:
        return ""
    try:
        with program.open("rb") as fh:
            first = fh.readline(256)
    except OSError:
        return ""
    if not first.startswith(b"#!"):
        return ""
    interpreter = first[2:].strip().decode("utf-8", errors="replace")
    return f"\nits #! line names an interpreter that does not exist: {interpreter}"


# --- one run -----------------------------------------------------------------------------------------


class _Run:
    """The state of one running step: its pipes, its main process, and what has been signalled."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        *,
        before: frozenset[int],
        readers: dict[int, HeadTailBuffer],
        stdin_fd: int | None,
        stdin_data: bytes,
    ) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.before = before
        self.own_sid = os.getsid(0)
        self.signalled: set[int] = set()
        self.main_exited = False
        self.readers = readers
        self.stdin_fd = stdin_fd
        self.stdin_view = memoryview(stdin_data)
        self.stdin_off = 0
        self.poller = select.poll()
        for fd in readers:
            self.poller.register(fd, _POLL_IN)
        if stdin_fd is not None:
            os.set_blocking(stdin_fd, False)
            self.poller.register(stdin_fd, select.POLLOUT)
        self.pidfd = _open_pidfd(self.pid)
        if self.pidfd is not None:
            self.poller.register(self.pidfd, select.POLLIN)

    # -- I/O --

    def pump(self, deadline: float, *, until_exit: bool) -> None:
        """Move data until the main process exits (``until_exit``) or the pipes close, or the deadline."""
        while True:
            if until_exit and self.main_exited:
                return
            if not until_exit and not self.readers:
                return
            wait = deadline - time.monotonic()
            if wait <= 0:
                return
            if self.pidfd is None and until_exit:
                wait = min(wait, _EXIT_POLL)
            ms = -1 if math.isinf(wait) else max(1, math.ceil(wait * 1000))
            for fd, events in self.poller.poll(ms):
                self._handle(fd, events)
            if self.pidfd is None and not self.main_exited:
                self.main_exited = self._exited_nowait()

    def _exited_nowait(self) -> bool:
        # WNOWAIT leaves the main process a zombie: its pid, which is also the group id, cannot be reused
        # by an unrelated process before the sweep is over.
        if not hasattr(os, "waitid"):
            return self.proc.poll() is not None  # macOS before Python 3.13
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def _handle(self, fd: int, events: int) -> None:
        if fd == self.pidfd:
            self.main_exited = True
            self._close(fd)
            self.pidfd = None
            return
        sink = self.readers.get(fd)
        if sink is not None:
            try:
                data = os.read(fd, _READ_CHUNK)
            except OSError:
                data = b""
            if data:
                sink.feed(data)
            else:
                del self.readers[fd]
                self._close(fd)
            return
        if fd == self.stdin_fd:
            self._write_stdin(events)

    def _write_stdin(self, events: int) -> None:
        fd = self.stdin_fd
        assert fd is not None
        if not events & _POLL_END:
            try:
                self.stdin_off += os.write(fd, self.stdin_view[self.stdin_off : self.stdin_off + _WRITE_CHUNK])
            except BlockingIOError:
                return
            except OSError:
                pass  # the process closed its stdin: what it did not read is dropped, as with a shell pipe
            else:
                if self.stdin_off < len(self.stdin_view):
                    return
        self._close(fd)
        self.stdin_fd = None

    def _close(self, fd: int) -> None:
        with contextlib.suppress(KeyError):
            self.poller.unregister(fd)
        os.close(fd)

    def close_all(self) -> None:
        for fd in list(self.readers):
            self._close(fd)
        self.readers.clear()
        for maybe in (self.stdin_fd, self.pidfd):
            if maybe is not None:
                self._close(maybe)
        self.stdin_fd = self.pidfd = None

    # -- processes --

    def stragglers(self) -> tuple[set[int], set[int]]:
        """The step's processes other than the main one: (those alive, those that are our children)."""
        kids = _children_of_self()
        if kids is not None:
            new = kids - self.before
            new.discard(self.pid)
            if not new and self.main_exited:
                return set(), set()  # the common case costs one small read, no scan of /proc
        table = _scan_proc()
        if table is None:
            return set(), set()  # no /proc: the process group is all we can reach
        me = os.getpid()
        # The scan also sees children adopted after the children file was read.
        new = {pid for pid, p in table.items() if p.ppid == me} - self.before
        new.discard(self.pid)
        with _active_lock:
            foreign = _active_mains - {self.pid}
        # A new child of ours that shares our session was started by another thread of this process (a
        # step's processes are in the main process's session or one they made); one in the session of
        # another run_process in progress belongs to that run.
        roots = [
            pid for pid in new if (p := table.get(pid)) is not None and p.sid != self.own_sid and p.sid not in foreign
        ]
        if not self.main_exited:
            roots.append(self.pid)
        by_parent: dict[int, list[int]] = {}
        for pid, p in table.items():
            by_parent.setdefault(p.ppid, []).append(pid)
        found = set(roots)
        stack = list(roots)
        while stack:
            for child in by_parent.get(stack.pop(), ()):
                if child not in found:
                    found.add(child)
                    stack.append(child)
        found.discard(self.pid)
        alive = {pid for pid in found if not table[pid].zombie}
        ours = {pid for pid in found if table[pid].ppid == me}
        return alive, ours

    def terminate(self, grace: float) -> None:
        """SIGTERM everything the step runs, then give it ``grace`` seconds to end (still reading output)."""
        deadline = time.monotonic() + grace
        alive, _ = self.stragglers()
        for sig in (signal.SIGTERM, signal.SIGCONT):  # a stopped process only acts on TERM once continued
            _killpg(self.pid, sig)
            if not self.main_exited:
                _kill(self.pid, sig)
            for pid in alive:
                _kill(pid, sig)
        self.signalled |= alive
        self.pump(deadline, until_exit=True)
        # Escapees get the rest of the grace too; scanning /proc here is fine, this is the rare path.
        while alive and time.monotonic() < deadline:
            if self.readers:
                self.pump(min(deadline, time.monotonic() + 0.02), until_exit=False)
            else:
                time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
            alive, _ = self.stragglers()
            for pid in alive - self.signalled:
                _kill(pid, signal.SIGTERM)
                _kill(pid, signal.SIGCONT)
            self.signalled |= alive

    def sweep(self) -> None:
        """SIGKILL what is left of the step, over and over until nothing is, and reap what was ours."""
        deadline = time.monotonic() + _SWEEP_LIMIT
        while True:
            # Look before killing the group, so that its members count among the stragglers.
            alive, ours = self.stragglers()
            _killpg(self.pid, signal.SIGKILL)
            if not self.main_exited:
                _kill(self.pid, signal.SIGKILL)
            for pid in alive:
                _kill(pid, signal.SIGKILL)
            self.signalled |= alive
            for pid in ours:
                _reap_nohang(pid)
            if not alive and not ours and self.main_exited:
                return
            if time.monotonic() >= deadline:
                return
            time.sleep(0.001)
            if not self.main_exited:
                self.main_exited = self._exited_nowait()

    def finish(self) -> None:
        """Kill and reap everything, read what is left in the pipes, release the descriptors."""
        try:
            self.sweep()
            self.pump(time.monotonic() + _DRAIN_AFTER_EXIT, until_exit=False)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=_SWEEP_LIMIT)
        finally:
            self.close_all()
            with _active_lock:
                _active_mains.discard(self.pid)


def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    stdin_text: str | None = None,
    output_cap: int = 64 * 1024,
    grace: float = 2.0,
    start_in: Callable[[Callable[[], subprocess.Popen[bytes]]], subprocess.Popen[bytes]] | None = None,
    pass_fds: Sequence[int] = (),
) -> ProcessResult:
    """Run ``argv`` (no shell) with exactly ``env``, stdin from /dev/null unless ``stdin_text`` is given.

    ``start_in`` wraps the start of the process (confinement); when it fails nothing is run.
    ``pass_fds`` are descriptors the program inherits.

    After ``timeout`` seconds the process group and any escapee get SIGTERM, then SIGKILL after ``grace``.
    Whenever the main process ends, whatever it left running is killed and reaped before this returns.
    Raises StepError when the program cannot be started.
    """
    argv = tuple(argv)
    if not argv:
        raise StepError("the command is empty")
    _subreaper_enter()
    try:
        return _run_process(
            argv,
            cwd=cwd,
            env=env,
            timeout=timeout,
            stdin_text=stdin_text,
            output_cap=output_cap,
            grace=grace,
            start_in=start_in,
            pass_fds=tuple(pass_fds),
        )
    finally:
        _subreaper_exit()


def _run_process(
    argv: tuple[str, ...],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    stdin_text: str | None,
    output_cap: int,
    grace: float,
    start_in: Callable[[Callable[[], subprocess.Popen[bytes]]], subprocess.Popen[bytes]] | None,
    pass_fds: tuple[int, ...],
) -> ProcessResult:
    out = HeadTailBuffer(output_cap)
    err = HeadTailBuffer(output_cap)
    before: frozenset[int] = frozenset()
    if _may_have_children():
        before = frozenset(_children_of_self() or ())
        if not _HAS_CHILDREN_FILE:
            table = _scan_proc() or {}
            me = os.getpid()
            before = frozenset(pid for pid, p in table.items() if p.ppid == me)

    start = time.monotonic()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    in_r: int | None = None
    in_w: int | None = None
    if stdin_text is not None:
        in_r, in_w = os.pipe()
    try:
        # Popen looks the program up in env's PATH, as exec would: resolving it here first with
        # shutil.which costs more than the lookup exec does anyway, so which only explains failures.
        def spawn() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL if in_r is None else in_r,
                stdout=out_w,
                stderr=err_w,
                start_new_session=True,
                pass_fds=pass_fds,
            )

        proc = spawn() if start_in is None else start_in(spawn)
    except BaseException as exc:
        for fd in (out_r, err_r, in_w):
            if fd is not None:
                os.close(fd)
        if isinstance(exc, OSError):
            raise _start_failure(exc, argv[0], cwd, env) from None
        raise
    finally:
        # The child has its own copies; ours must go or the pipes never reach EOF.
        for fd in (out_w, err_w, in_r):
            if fd is not None:
                os.close(fd)
    with _active_lock:
        _active_mains.add(proc.pid)

    stdin_data = (stdin_text or "").encode("utf-8")
    if in_w is not None and not stdin_data:
        os.close(in_w)
        in_w = None
    run = _Run(proc, before=before, readers={out_r: out, err_r: err}, stdin_fd=in_w, stdin_data=stdin_data)
    timed_out = False
    try:
        try:
            run.pump(start + timeout, until_exit=True)
        except KeyboardInterrupt:
            # Ctrl-C stops the step the way a timeout does; a second one skips the grace (finally below).
            run.terminate(max(grace, 0.0))
            raise
        if not run.main_exited:
            timed_out = True
            run.terminate(max(grace, 0.0))
    finally:
        run.finish()
    return ProcessResult(
        argv=argv,
        exit_code=None if timed_out else proc.returncode,
        stdout=out.result(),
        stderr=err.result(),
        timed_out=timed_out,
        duration=time.monotonic() - start,
        killed_stragglers=len(run.signalled - {proc.pid}),
    )
