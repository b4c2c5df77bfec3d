"""Benchmarks of collection and step overhead, each printed as a ratio against a baseline run here.

Run: python bench/bench_core.py [--repeat N]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INI = "[pytest]\naddopts = -p no:cacheprovider\n"


def mission_text(n_steps: int, step: str) -> str:
    lines = ["name: bench", "steps:"]
    for i in range(n_steps):
        lines.append(f"  - id: s{i}\n{step}")
    return "\n".join(lines) + "\n"


NOOP = "    step_type: noop"
TRUE = "    step_type: command\n    parameters: {command: 'true'}"
TEN_STEPS = (
    "    step_type: command\n    depends_on: []\n    timeout_seconds: 30\n"
    "    parameters: {command: echo, args: [hello, world]}\n    expect: {stdout_contains: hello}"
)


def run_pytest(directory: Path, *args: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *args], cwd=directory, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 5):
        sys.exit(f"benchmark run failed in {directory}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed


def best(repeat: int, directory: Path, *args: str) -> float:
    return min(run_pytest(directory, *args) for _ in range(repeat))


def setup(root: Path) -> dict[str, Path]:
    dirs = {name: root / name for name in ("py1000", "m1000", "noop", "subtests", "true", "subprocs")}
    for d in dirs.values():
        d.mkdir()
        (d / "pytest.ini").write_text(INI)
    for i in range(1000):
        (dirs["py1000"] / f"test_{i}.py").write_text(f"def test_{i}():\n    assert True\n")
        (dirs["m1000"] / f"m{i}.mission.yaml").write_text(mission_text(10, TEN_STEPS))
    (dirs["noop"] / "noop.mission.yaml").write_text(mission_text(1000, NOOP))
    (dirs["subtests"] / "test_sub.py").write_text(
        "def test_sub(subtests):\n"
        "    for i in range(1000):\n"
        "        with subtests.test(msg=f's{i}'):\n"
        "            pass\n"
    )
    (dirs["true"] / "true.mission.yaml").write_text(mission_text(200, TRUE))
    (dirs["subprocs"] / "test_procs.py").write_text(
        "import subprocess\n\n"
        "def test_procs(subtests):\n    for i in range(200):\n        with subtests.test(msg=f's{i}'):\n"
        "            subprocess.run(['true'], stdin=subprocess.DEVNULL, capture_output=True, check=True,"
        " start_new_session=True, timeout=300)\n"
    )
    return dirs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat
    with tempfile.TemporaryDirectory() as tmp:
        dirs = setup(Path(tmp))
        rows: list[tuple[str, str, float | None, float, float]] = [
            ("collect 1,000 missions of 10 steps", "collect 1,000 one-test .py files", 1.5,
             best(repeat, dirs["m1000"], "--collect-only"), best(repeat, dirs["py1000"], "--collect-only")),
            ("mission of 1,000 noop steps", "1,000 empty subtests", 1.5,
             best(repeat, dirs["noop"]), best(repeat, dirs["subtests"])),
            ("mission of 200 `true` commands", "200 subprocesses in subtests", 1.15,
             best(repeat, dirs["true"], "--mission-sandbox=none"), best(repeat, dirs["subprocs"])),
        ]  # fmt: skip
        if shutil.which("bwrap"):
            rows.append(
                ("the same, each inside bubblewrap", "200 subprocesses in subtests", None,
                 best(repeat, dirs["true"], "--mission-sandbox=bwrap"), best(repeat, dirs["subprocs"]))
            )  # fmt: skip
    print(f"{'benchmark':40} {'seconds':>8} {'baseline':>9} {'ratio':>6} {'target':>7}")
    for name, base_name, target, value, base in rows:
        if target is None:
            print(f"{name:40} {value:8.2f} {base:9.2f} {value / base:6.2f}   (no target; baseline: {base_name})")
            continue
        verdict = "ok" if value / base <= target else "MISSED"
        print(
            f"{name:40} {value:8.2f} {base:9.2f} {value / base:6.2f} {target:6.2f}x {verdict}  (baseline: {base_name})"
        )


if __name__ == "__main__":
    main()
