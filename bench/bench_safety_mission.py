"""Benchmark: the share of a mission's run time spent in the safety check.

A mission of 200 command steps with realistic command lines is run through the Python API (no
sandbox); the same steps are then only judged. Prints both and the check's share, against the
target of at most 10% added.
Run: python bench/bench_safety_mission.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from pytest_rustchain import load_mission
from pytest_rustchain.guard import Guard
from pytest_rustchain.runner import ChainRun, RunSettings, run_steps
from pytest_rustchain.safety import Policy

LINES = [
    "mkdir -p build/out && touch build/out/a.txt",
    "ls -la build",
    "grep -rn TODO . || true",
    "cat build/out/a.txt | wc -l",
    "echo hello > build/out/hello.txt",
    "find build -name '*.txt' -type f",
    "sort build/out/hello.txt | uniq -c",
    "test -d build && echo ok",
    "cp build/out/hello.txt build/out/copy.txt",
    "rm -rf build/tmp",
]


def mission_text() -> str:
    lines = ["name: realistic", "steps:"]
    for i in range(200):
        command = LINES[i % len(LINES)].replace("'", "''")
        lines.append(f"  - id: s{i}\n    step_type: command\n    parameters: {{shell: true, command: '{command}'}}")
    return "\n".join(lines) + "\n"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "m.mission.yaml"
        path.write_text(mission_text())
        mission = load_mission(path, rootdir=root)
        runs = []
        for n in range(3):
            base = root / f"run{n}"
            dirs = [base / "ws", base / "home", base / "tmp"]
            for d in dirs:
                d.mkdir(parents=True)
            settings = RunSettings(rootdir=root)
            start = time.perf_counter()
            result = run_steps(ChainRun(mission, workspace=dirs[0], home=dirs[1], tmpdir=dirs[2], settings=settings))
            runs.append(time.perf_counter() - start)
            assert result.steps_passed == 200, result.message
        guard = Guard(policy=Policy(), workspace=root / "run0" / "ws")
        start = time.perf_counter()
        for step in mission.steps:
            guard.judge(step, step.parameters)
        check = time.perf_counter() - start
    total = min(runs)
    share = check / (total - check)
    verdict = "ok" if share <= 0.10 else "MISSED"
    print(f"mission of 200 realistic commands:  {total:6.2f} s (best of 3, no sandbox)")
    print(f"safety check of the same 200 steps: {check:6.3f} s")
    print(f"added by the check: {share:.1%} (target 10%) {verdict}")


if __name__ == "__main__":
    main()
