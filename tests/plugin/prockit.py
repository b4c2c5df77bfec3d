"""Process helpers for tests that run pytest in a subprocess and signal it."""

from __future__ import annotations

import signal
from pathlib import Path


def alive_with(marker: str) -> list[int]:
    """Pids of live (not zombie) processes whose command line contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if marker.encode() in cmdline and "State:\tZ" not in status:
            found.append(int(entry.name))
    return found


def default_signals() -> None:
    """``preexec_fn``: the child starts with Ctrl-C, SIGTERM and SIGHUP at their defaults, as a terminal
    or a CI runner gives them; a suite started in the background or under nohup has some ignored."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
