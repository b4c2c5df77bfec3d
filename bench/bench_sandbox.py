"""What confinement costs per command step: 200 `true` steps under each sandbox layer against none.

Targets: Landlock within 1.2x of no sandbox, bubblewrap within 2.5x (whole pytest runs, start-up included),
plus the cost per step each layer adds. A layer this machine lacks is reported as skipped.

Run: python bench/bench_sandbox.py [--repeat N] [--steps N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_rustchain import confine
from pytest_rustchain.sandbox import probe_bwrap

TARGETS = {"landlock": 1.2, "bwrap": 2.5}


def run(directory: Path, mode: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--mission-sandbox={mode}"],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"benchmark run under {mode} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    modes = ["none"]
    skipped: dict[str, str] = {}
    problem = confine.landlock_problem()
    if problem is None:
        modes.append("landlock")
    else:
        skipped["landlock"] = problem
    bwrap, why = probe_bwrap()
    if bwrap is not None:
        modes.append("bwrap")
    else:
        skipped["bwrap"] = why
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        lines = ["name: bench", "steps:"]
        lines += [
            f"  - id: s{i}\n    step_type: command\n    parameters: {{command: 'true'}}" for i in range(args.steps)
        ]
        (directory / "true.mission.yaml").write_text("\n".join(lines) + "\n")
        # Interleaved, so that load on a shared machine hits every layer alike; the best run of each counts.
        times: dict[str, list[float]] = {mode: [] for mode in modes}
        for _ in range(args.repeat):
            for mode in modes:
                times[mode].append(run(directory, mode))
    best = {mode: min(values) for mode, values in times.items()}
    base = best["none"]
    print(f"{args.steps} `true` command steps, best of {args.repeat}")
    print(f"{'layer':10} {'seconds':>8} {'ms/step':>8} {'+ms/step':>9} {'ratio':>6} {'target':>7}")
    for mode in modes:
        per_step = best[mode] / args.steps * 1000
        added = (best[mode] - base) / args.steps * 1000
        target = TARGETS.get(mode)
        verdict = ""
        if target is not None:
            verdict = f"{target:6.2f}x {'ok' if best[mode] / base <= target else 'MISSED'}"
        print(f"{mode:10} {best[mode]:8.2f} {per_step:8.2f} {added:9.2f} {best[mode] / base:6.2f} {verdict}")
    for mode, reason in skipped.items():
        print(f"{mode:10} skipped: {reason}")


if __name__ == "__main__":
    main()
