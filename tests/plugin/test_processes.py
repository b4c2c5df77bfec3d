"""No process started by a step outlives it, whether the step times out or ends."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest
from prockit import alive_with, default_signals

WriteMission = Callable[[str, str], None]


@pytest.mark.parametrize("sandbox", ["none", "auto"])
def test_escaped_processes_are_killed(pytester: pytest.Pytester, write_mission: WriteMission, sandbox: str) -> None:
    """`setsid sleep &`, a double fork and a timed-out sleep leave nothing running after the run."""
    marker = f"1000.{os.getpid()}{int(time.time() * 1000) % 100000}"
    write_mission(
        "escape",
        f"""
        name: escape
        steps:
          - id: background
            step_type: command
            parameters: {{shell: true, command: "setsid sleep {marker} & (sleep {marker} &) & echo started"}}
          - id: hang
            step_type: command
            timeout_seconds: 0.5
            parameters: {{shell: true, command: "trap '' TERM; sleep {marker}"}}
        """,
    )
    start = time.monotonic()
    result = pytester.runpytest("-v", f"--mission-sandbox={sandbox}", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*SUBPASSED[[]background[]]*", "*SUBFAILED[[]hang[]]*", "*timed out after 0.5 s*"])
    assert time.monotonic() - start < 15
    assert alive_with(marker) == []


def test_ctrl_c_stops_the_step_and_the_run(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """Ctrl-C during a step kills its processes, runs no further step, and ends pytest as usual."""
    import signal
    import subprocess
    import sys

    marker = f"1000.{os.getpid()}{int(time.time() * 1000) % 100000}7"
    write_mission(
        "long",
        f"""
        name: long
        steps:
          - id: hang
            step_type: command
            parameters: {{shell: true, command: "setsid sleep {marker} & sleep {marker}"}}
          - id: later
            step_type: create_file
            if: always()
            parameters: {{path: later.txt, content: x}}
        """,
    )
    base = pytester.path / "bt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "--mission-sandbox=none",
         "--mission-keep-workspace=always", f"--basetemp={base}"],
        cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=default_signals,  # a suite started in the background gets SIGINT ignored
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not alive_with(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert alive_with(marker), "the step never started"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # never leave the pytest under test running, whatever failed above
            proc.kill()
            proc.communicate()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "KeyboardInterrupt" in out
    assert alive_with(marker) == []
    assert not list(base.rglob("later.txt"))
