"""Cost of run_process against plain subprocess.run: 200 runs of `true` each, both with piped output."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from pathlib import Path

from pytest_rustchain.procs import run_process

N = 200
ROUNDS = 15


def plain() -> float:
    start = time.perf_counter()
    for _ in range(N):
        subprocess.run(["true"], capture_output=True, stdin=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def plain_same_setup(env: dict[str, str], cwd: Path) -> float:
    """subprocess.run given what run_process passes: the full env, cwd and a new session."""
    start = time.perf_counter()
    for _ in range(N):
        subprocess.run(
            ["true"],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
            check=False,
        )
    return time.perf_counter() - start


def ours(env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    for _ in range(N):
        run_process(["true"], cwd=cwd, env=env, timeout=30)
    return time.perf_counter() - start


def main() -> None:
    env = dict(os.environ)
    cwd = Path.cwd()
    ours(env, cwd)  # warm up: the subreaper setting and imports happen once
    plain()
    # Interleaved rounds, so that a noisy neighbour hits both sides alike; the ratio of medians is reported.
    bases: list[float] = []
    sames: list[float] = []
    mines: list[float] = []
    for _ in range(ROUNDS):
        bases.append(plain())
        sames.append(plain_same_setup(env, cwd))
        mines.append(ours(env, cwd))
    base, same, mine = statistics.median(bases), statistics.median(sames), statistics.median(mines)
    print(f"subprocess.run:                  {base * 1000 / N:.3f} ms/call (median of {ROUNDS} x {N})")
    print(f"subprocess.run, env+cwd+session: {same * 1000 / N:.3f} ms/call")
    print(f"run_process:                     {mine * 1000 / N:.3f} ms/call")
    print(f"ratio:                           {mine / base:.3f} (best rounds: {min(mines) / min(bases):.3f})")


if __name__ == "__main__":
    main()
