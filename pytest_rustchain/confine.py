"""Kernel confinement without namespaces: Landlock rules and a seccomp filter, through small ctypes calls.

Everything is prepared in the pytest process; the child only makes three system calls between fork and
exec (no new privileges, enforce the Landlock ruleset, install the seccomp filter), so a failure there
stops the launch instead of running the step unconfined.

No maintained Python binding covers Landlock's newer ABIs (network ports, scoping) together with
seccomp, and the kernel interface is a handful of structs, so this module talks to it directly.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import platform
import signal
import stat
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Defined with the process machinery, which a run without confinement loads alone.
from pytest_rustchain.procs import ConfinementError, nondumpable

__all__ = [
    "ConfinementError",
    "Ruleset",
    "landlock_abi",
    "landlock_problem",
    "nondumpable",
    "seccomp_filter",
    "seccomp_problem",
    "start_confined",
]


# System call numbers shared by x86_64 and aarch64 (the generic table starts these at 424+).
_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_SYS_IO_URING_SETUP = 425

_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1
_LANDLOCK_RULE_NET_PORT = 2

_FS_WRITE_FILE = 1 << 1
_FS_REMOVE_DIR = 1 << 4
_FS_REMOVE_FILE = 1 << 5
_FS_MAKE_CHAR = 1 << 6
_FS_MAKE_DIR = 1 << 7
_FS_MAKE_REG = 1 << 8
_FS_MAKE_SOCK = 1 << 9
_FS_MAKE_FIFO = 1 << 10
_FS_MAKE_BLOCK = 1 << 11
_FS_MAKE_SYM = 1 << 12
_FS_REFER = 1 << 13  # ABI 2
_FS_TRUNCATE = 1 << 14  # ABI 3
_NET_CONNECT_TCP = 1 << 1  # ABI 4
_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
_SCOPE_SIGNAL = 1 << 1  # ABI 6

# Reading and executing stay allowed everywhere: only changes to the filesystem are confined.
_FS_WRITES_V1 = (
    _FS_WRITE_FILE
    | _FS_REMOVE_DIR
    | _FS_REMOVE_FILE
    | _FS_MAKE_CHAR
    | _FS_MAKE_DIR
    | _FS_MAKE_REG
    | _FS_MAKE_SOCK
    | _FS_MAKE_FIFO
    | _FS_MAKE_BLOCK
    | _FS_MAKE_SYM
)
_FILE_WRITES = _FS_WRITE_FILE | _FS_TRUNCATE

# Device files every program may write: discarding output, terminals.
_WRITABLE_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/random", "/dev/urandom")

_PR_SET_SECCOMP = 22
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECUREBITS = 28
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_SECBIT_NOROOT_AND_LOCKED = 0x3
_SECCOMP_MODE_FILTER = 2


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


class _NetPortAttr(ctypes.Structure):
    _fields_ = (("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64))


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


@functools.cache
def _libc() -> Any:
    if sys.platform != "linux":
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syscall = libc.syscall
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    syscall.restype = ctypes.c_long
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return libc


def _syscall(number: int, *args: Any) -> int:
    return int(_libc().syscall(ctypes.c_long(number), *args))


def _oserror(what: str) -> OSError:
    code = ctypes.get_errno()
    return OSError(code, f"{what}: {os.strerror(code)}")


# --- Landlock ----------------------------------------------------------------------------------------


@functools.cache
def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when it has none (too old, disabled, not Linux)."""
    if _libc() is None:
        return 0
    version = _syscall(
        _SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_LANDLOCK_CREATE_RULESET_VERSION)
    )
    return max(version, 0)


def landlock_problem() -> str | None:
    """Why the Landlock layer cannot be used here, or None when it can."""
    if sys.platform != "linux":
        return "Landlock needs Linux"
    if landlock_abi() == 0:
        code = ctypes.get_errno()
        why = (
            "disabled at boot (add landlock to the lsm= kernel parameter)"
            if code == errno.EOPNOTSUPP
            else "not in this kernel"
        )
        return f"Landlock is {why}; it needs Linux 5.13 or newer (this is {platform.release()})"
    return seccomp_problem()


@dataclass(frozen=True, slots=True, kw_only=True)
class Ruleset:
    """What a confined step may change: directories it may write below, and whether it may use the network."""

    writable: tuple[Path, ...]
    read_only: tuple[Path, ...] = ()
    """Directories directly inside a writable one that stay read-only (a project checkout's ``.git``)."""
    network: bool = False
    tcp_ports: tuple[int, ...] = ()
    """With network: the TCP ports connect() may reach (Landlock ABI 4 and later); empty means any."""

    def create(self) -> int:
        """Build the Landlock ruleset in the kernel and return its descriptor (close it after the launch)."""
        try:
            return self._create()
        except OSError as exc:
            raise ConfinementError(str(exc)) from None

    def _create(self) -> int:
        abi = landlock_abi()
        handled_fs = _FS_WRITES_V1 | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)
        handled_net = _NET_CONNECT_TCP if abi >= 4 and self.network and self.tcp_ports else 0
        scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0
        attr = _RulesetAttr(handled_fs, handled_net, scoped)
        size = 8 if abi < 4 else 16 if abi < 6 else 24
        fd = _syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
        if fd < 0:
            raise _oserror("landlock_create_ruleset")
        try:
            for path, access in self._rules(handled_fs):
                self._add_path(fd, path, access)
            if handled_net:
                for port in self.tcp_ports:
                    rule = _NetPortAttr(_NET_CONNECT_TCP, port)
                    if _syscall(
                        _SYS_LANDLOCK_ADD_RULE, fd, _LANDLOCK_RULE_NET_PORT, ctypes.byref(rule), ctypes.c_uint32(0)
                    ):
                        raise _oserror(f"landlock_add_rule port {port}")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _rules(self, handled_fs: int) -> Iterator[tuple[str, int]]:
        hidden = set(self.read_only)
        for directory in self.writable:
            inside = [p for p in hidden if p.parent == directory]
            if not inside:
                yield str(directory), handled_fs
                continue
            # Landlock only adds rights, so a read-only child means granting its siblings one by one;
            # the directory itself stays unchangeable (no new entries at its top level).
            with os.scandir(directory) as entries:
                for entry in entries:
                    if Path(entry.path) in hidden or entry.is_symlink():
                        continue
                    yield entry.path, handled_fs if entry.is_dir(follow_symlinks=False) else handled_fs & _FILE_WRITES
        for device in _WRITABLE_DEVICES:
            yield device, handled_fs & _FILE_WRITES

    @staticmethod
    def _add_path(fd: int, path: str, access: int) -> None:
        try:
            parent = os.open(path, os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            return  # a device this system lacks, an entry removed meanwhile
        try:
            if not stat.S_ISDIR(os.fstat(parent).st_mode):
                access &= _FILE_WRITES
            rule = _PathBeneathAttr(access, parent)
            if _syscall(
                _SYS_LANDLOCK_ADD_RULE, fd, _LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0)
            ):
                raise _oserror(f"landlock_add_rule {path}")
        finally:
            os.close(parent)


def _confine_this_thread(ruleset_fd: int | None, program: bytes | None) -> None:
    """Give up privileges, enforce the ruleset and install the filter, for the calling thread only."""
    libc = _libc()
    prctl = libc.prctl
    # As root, a program gets every capability at exec, and CAP_SYS_PTRACE reads the environment of any
    # process: "noroot" makes exec grant none.
    if os.geteuid() == 0 and (
        prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0
        or prctl(_PR_SET_SECUREBITS, _SECBIT_NOROOT_AND_LOCKED, 0, 0, 0) != 0
    ):
        raise _oserror("securebits")
    if prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise _oserror("no_new_privs")
    if ruleset_fd is not None and libc.syscall(
        ctypes.c_long(_SYS_LANDLOCK_RESTRICT_SELF), ruleset_fd, ctypes.c_uint32(0)
    ):
        raise _oserror("landlock_restrict_self")
    if program is not None:
        buffer = ctypes.create_string_buffer(program, len(program))
        fprog = _SockFprog(len(program) // 8, ctypes.addressof(buffer))
        if prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0) != 0:
            raise _oserror("seccomp")


def start_confined(
    ruleset_fd: int | None, program: bytes | None, start: Callable[[], subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    """Call ``start`` (which starts a process) in a new thread that is confined first, and return its result.

    Landlock, seccomp, no-new-privileges and capabilities belong to a thread and pass to the processes it
    forks, so the step's process starts confined while the rest of pytest stays as it was, and the
    fast vfork path of ``subprocess`` still applies (a ``preexec_fn`` would force a full fork). The
    thread ends right after the start.
    """
    outcome: list[subprocess.Popen[bytes] | BaseException] = []

    def run() -> None:
        try:
            _confine_this_thread(ruleset_fd, program)
        except OSError as exc:
            outcome.append(ConfinementError(str(exc)))
            return
        try:
            outcome.append(start())
        except BaseException as exc:  # handed to the calling thread, raised there
            outcome.append(exc)

    thread = threading.Thread(target=run, name="rustchain-confined-start", daemon=True)
    thread.start()
    try:
        thread.join()
    except BaseException:
        # Ctrl-C while the process was starting: it must not run on untracked.
        thread.join()
        if outcome and isinstance(outcome[0], subprocess.Popen):
            with contextlib.suppress(OSError):
                os.killpg(outcome[0].pid, signal.SIGKILL)
            outcome[0].wait()
        raise
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


# --- seccomp -----------------------------------------------------------------------------------------

_AUDIT_ARCH_X86_64 = 0xC000003E
_AUDIT_ARCH_I386 = 0x40000003
_AUDIT_ARCH_AARCH64 = 0xC00000B7
_ARCHES = {
    # machine: (audit arch, socket syscall number, 32-bit compat arch and its socket-related syscalls)
    "x86_64": (_AUDIT_ARCH_X86_64, 41, _AUDIT_ARCH_I386, (102, 359, _SYS_IO_URING_SETUP)),
    "aarch64": (_AUDIT_ARCH_AARCH64, 198, None, ()),
}
_AF_UNIX, _AF_INET, _AF_INET6, _AF_PACKET = 1, 2, 10, 17
_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000


def seccomp_problem() -> str | None:
    if platform.machine() not in _ARCHES:
        return f"the seccomp filter has no program for {platform.machine()} (x86_64 and aarch64 only)"
    return None


@functools.cache
def seccomp_filter(*, unix_sockets: bool, network: bool) -> bytes:
    """A classic BPF program that refuses socket(AF_UNIX) (host sockets, abstract sockets), without network
    also AF_INET, AF_INET6 and AF_PACKET, and io_uring (which can open sockets past seccomp).

    ``socketpair`` stays allowed: it only connects a process with itself.
    """
    arch, socket_nr, compat_arch, compat_denied = _ARCHES[platform.machine()]
    denied = [] if unix_sockets else [_AF_UNIX]
    if not network:
        denied += [_AF_INET, _AF_INET6, _AF_PACKET]
    refuse = _RET_ERRNO | errno.EACCES
    code: list[tuple[int, int | str, int | str, int]] = []  # (op, jt label, jf label, k)

    def op(opcode: int, k: int, jt: int | str = 0, jf: int | str = 0) -> None:
        code.append((opcode, jt, jf, k))

    op(_LD_W_ABS, 4)  # seccomp_data.arch
    op(_JEQ_K, arch, 0, "compat")
    op(_LD_W_ABS, 0)  # seccomp_data.nr
    if arch == _AUDIT_ARCH_X86_64:
        op(_JGE_K, 0x40000000, "refuse", 0)  # the x32 ABI: a second syscall table on the same arch
    op(_JEQ_K, _SYS_IO_URING_SETUP, "nosys", 0)
    op(_JEQ_K, socket_nr, 0, "allow")
    op(_LD_W_ABS, 16)  # low half of args[0]: the address family
    for family in denied:
        op(_JEQ_K, family, "refuse", 0)
    labels = {"allow": len(code)}
    op(_RET_K, _RET_ALLOW)
    labels["refuse"] = len(code)
    op(_RET_K, refuse)
    labels["nosys"] = len(code)
    op(_RET_K, _RET_ERRNO | errno.ENOSYS)
    labels["compat"] = len(code)
    # Jumps only go forward, so the 32-bit part has its own returns.
    if compat_arch is not None:
        op(_JEQ_K, compat_arch, 0, "compat_refuse")  # any other architecture gets nothing
        op(_LD_W_ABS, 0)
        for nr in compat_denied:  # 32-bit socket calls cannot be told apart by family: none at all
            op(_JEQ_K, nr, "compat_refuse", 0)
        op(_RET_K, _RET_ALLOW)
    labels["compat_refuse"] = len(code)
    op(_RET_K, refuse)
    out = bytearray()
    for index, (opcode, jt, jf, k) in enumerate(code):
        rel = [labels[j] - index - 1 if isinstance(j, str) else j for j in (jt, jf)]
        out += struct.pack("=HBBI", opcode, rel[0], rel[1], k)
    return bytes(out)
