"""Benchmark: what template rendering adds to a mission of 1,000 noop steps with three templated parts.

Prints the ratio against the same mission with plain text, both run by pytest in this process run.
Run: python bench/bench_render.py [--repeat N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STEPS = 1000


def mission(templated: bool) -> str:
    lines = ["name: render", "vars: {region: eu, tier: gold}", "steps:"]
    for i in range(STEPS):
        if templated:
            # Distinct per step, so nothing is served from a cache of compiled templates.
            message = f"{{{{ vars.region }}}}-{{{{ vars.tier }}}}-{i}-{{{{ mission.name }}}}"
        else:
            message = f"eu-gold-{i}-render"
        lines.append(f"  - id: s{i}\n    step_type: noop\n    parameters: {{message: '{message}'}}")
    return "\n".join(lines) + "\n"


def run(directory: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--mission-sandbox=none"],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(proc.stdout[-2000:])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    with tempfile.TemporaryDirectory() as tmp:
        plain, templated = Path(tmp, "plain"), Path(tmp, "templated")
        for d, flag in ((plain, False), (templated, True)):
            d.mkdir()
            (d / "pytest.ini").write_text("[pytest]\n")
            (d / "m.mission.yaml").write_text(mission(flag))
        times: dict[str, list[float]] = {"plain": [], "templated": []}
        for _ in range(repeat):  # interleaved, so machine noise hits both alike
            times["plain"].append(run(plain))
            times["templated"].append(run(templated))
    base, value = min(times["plain"]), min(times["templated"])
    verdict = "ok" if value / base <= 1.10 else "MISSED"
    print(f"1,000 noop steps, plain text     {base:6.2f} s")
    print(f"1,000 noop steps, 3 templates    {value:6.2f} s   ratio {value / base:.3f} (target 1.10) {verdict}")


if __name__ == "__main__":
    main()
