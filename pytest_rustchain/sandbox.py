"""Running command steps inside bubblewrap when it works on this machine."""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Sandbox", "probe_sandbox"]

_PROBE_ARGS = ("--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--die-with-parent")


@dataclass(frozen=True, slots=True, kw_only=True)
class Sandbox:
    """bubblewrap: the workspace, HOME and TMPDIR writable, the rest read-only, a private /tmp,
    an own PID namespace, and no network unless a host is allowed."""

    bwrap: str

    def wrap(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        writable: Sequence[Path],
        network: bool,
        readable: Sequence[Path] = (),
    ) -> list[str]:
        """The bwrap command line for ``argv``.

        ``readable`` names directories that must stay visible although they may lie under /tmp (the
        project checkout, the Python environment running pytest): the private /tmp would hide them.
        """
        # A private /tmp: the host's is not where a step writes (S108 is about the opposite).
        args = [self.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]  # noqa: S108
        tmp = Path("/tmp")  # noqa: S108
        for path in dict.fromkeys(p.resolve() for p in readable):
            if path.is_relative_to(tmp) and path != tmp and path.exists():
                args += ["--ro-bind", str(path), str(path)]
        for path in writable:
            # Bound after the private /tmp, so a workspace under /tmp is mounted on top of it.
            args += ["--bind", str(path), str(path)]
        args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session"]
        if not network:
            args.append("--unshare-net")
        args += ["--chdir", str(cwd), "--", *argv]
        return args


@functools.cache
def probe_sandbox() -> tuple[Sandbox | None, str]:
    """Find bwrap and check, once, that it can start a no-op; say why not otherwise."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None, "bwrap not found on PATH; install bubblewrap to run command steps in a sandbox"
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
            hint = "; on Ubuntu 24.04 run: sysctl kernel.apparmor_restrict_unprivileged_userns=0"
        return None, f"bwrap cannot create namespaces here ({why}){hint}"
    return Sandbox(bwrap=bwrap), f"bubblewrap at {bwrap}"
