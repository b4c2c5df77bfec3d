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
    mines: list[float] = []
    for _ in range(ROUNDS):
        bases.append(plain())
        mines.append(ours(env, cwd))
    base, mine = statistics.median(bases), statistics.median(mines)
    print(f"subprocess.run: {base * 1000 / N:.3f} ms/call (median of {ROUNDS} x {N})")
    print(f"run_process:    {mine * 1000 / N:.3f} ms/call")
    print(f"ratio:          {mine / base:.3f} (best rounds: {min(mines) / min(bases):.3f})")


if __name__ == "__main__":
    main()
