"""Cost of the reporting layer: its share of a 500-mission run, and the JSON report of 10,000 steps.

Run: python bench/bench_report.py [--missions 500] [--repeat 3]

1. Runs pytest in this process on 500 small missions with the terminal section, --mission-report and
   --mission-summary, timing every reporter hook; prints the reporter's share of the run (target <= 5%).
2. Runs the same missions in subprocesses with and without the report files (best of --repeat,
   interleaved) and prints the ratios, a view from outside that machine load makes noisy; the
   in-process share of step 1 is the figure to judge.
3. Builds the JSON report of a run of 100 missions x 100 steps and writes it (target < 1 s).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_rustchain import report, summary

INI = "[pytest]\naddopts = -p no:cacheprovider\n"
MISSION = """\
name: small mission {i}
steps:
  - id: write
    step_type: create_file
    parameters: {{path: out.txt, content: "hello {i}"}}
  - id: read
    step_type: read_file
    parameters: {{path: out.txt}}
    expect: {{output: {{content: "hello {i}"}}}}
  - id: note
    step_type: noop
  - id: on-failure
    step_type: noop
    if: failure()
"""


def setup(root: Path, count: int) -> Path:
    missions = root / "missions"
    missions.mkdir()
    (root / "pytest.ini").write_text(INI)
    for i in range(count):
        (missions / f"m{i:04d}.mission.yaml").write_text(MISSION.format(i=i))
    return root


class Clock:
    """Accumulates the time spent inside the reporter's hooks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def wrap(self, func: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        timed.__name__ = func.__name__
        timed.__wrapped__ = func  # type: ignore[attr-defined]
        return timed


@contextlib.contextmanager
def timed_reporter(clock: Clock) -> Iterator[None]:
    cls = report.MissionReporter
    names = ("pytest_runtest_logreport", "pytest_sessionfinish", "_terminal")
    saved = {name: cls.__dict__[name] for name in names}
    try:
        for name in names:
            original = saved[name]
            hookimpl_opts = getattr(original, "pytest_impl", None)
            wrapped = clock.wrap(original)
            if hookimpl_opts is not None:
                wrapped.pytest_impl = hookimpl_opts  # type: ignore[attr-defined]
            setattr(cls, name, wrapped)
        yield
    finally:
        for name, original in saved.items():
            setattr(cls, name, original)


def in_process_share(root: Path) -> tuple[float, float, int]:
    clock = Clock()
    args = [str(root / "missions"), "--rootdir", str(root), "-p", "no:cacheprovider"]
    args += [f"--mission-report={root / 'r.json'}", f"--mission-summary={root / 's.md'}"]
    with timed_reporter(clock), contextlib.redirect_stdout(io.StringIO()):
        start = time.perf_counter()
        code = pytest.main(args)
        total = time.perf_counter() - start
    if code != 0:
        sys.exit(f"benchmark run failed with exit code {code}")
    return clock.seconds, total, clock.calls


def subprocess_run(root: Path, *extra: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "missions", *extra], cwd=root, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"benchmark run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed


def big_run(missions: int, steps: int) -> list[dict[str, Any]]:
    entries = []
    for m in range(missions):
        data: dict[str, Any] = {
            "name": f"mission {m}",
            "path": f"missions/m{m:03d}.mission.yaml",
            "status": "failed" if m % 10 == 0 else "passed",
            "duration": 1.25,
            "workspace": f"/tmp/pytest-of-ci/pytest-1/mission-m{m}0/workspace",
            "message": "1 of 100 steps failed: s0" if m % 10 == 0 else "",
            "steps": [],
        }
        for s in range(steps):
            failed = m % 10 == 0 and s == 0
            data["steps"].append(
                {
                    "id": f"s{s}",
                    "type": "command",
                    "family": "commands",
                    "status": "failed" if failed else "passed",
                    "reason": "step 's0' (command) failed at x:3\n  exit code 1 (expected 0)\n" * failed,
                    "skip_kind": "",
                    "counted": True,
                    "flaky": False,
                    "duration": 0.01 * (s % 7),
                    "attempts": 1,
                    "line": 3 + 4 * s,
                    "risk": 0,
                    "findings": [],
                    "outputs": {
                        "command": "python -m pytest -q tests/",
                        "exit_code": int(failed),
                        "stdout": "collected 12 items\n" + "." * 150 + "\n12 passed in 0.40s\n",
                        "stderr": "",
                    },
                }
            )
        entries.append(summary.mission_entry(f"missions/m{m:03d}.mission.yaml::m{m:03d}", data))
    return entries


def json_report_seconds(directory: Path) -> tuple[float, int]:
    entries = big_run(100, 100)
    scrub = summary.scrubber(github_actions=True)
    start = time.perf_counter()
    document = summary.report_document(
        summary.summarize(entries),
        created="2026-01-01T00:00:00Z",
        duration=1.0,
        exit_status=1,
        threshold=summary.parse_threshold("0.9"),
        versions={"pytest": pytest.__version__, "pytest-rustchain": "bench"},
        scrub=scrub,
    )
    path = directory / "big.json"
    path.write_text(json.dumps(document, ensure_ascii=False) + "\n", encoding="utf-8")
    return time.perf_counter() - start, path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--missions", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        root = setup(Path(tmp), options.missions)
        spent, total, calls = in_process_share(root)
        print(
            f"{options.missions} missions in process: run {total:.2f} s, reporter hooks {spent * 1000:.1f} ms "
            f"over {calls} calls = {100 * spent / total:.2f}% of the run (target <= 5%)"
        )
        files = ("-q", "--mission-report=r.json", "--mission-summary=s.md")
        variants: dict[tuple[str, ...], list[float]] = {("-q",): [], files: [], files[1:]: []}
        for _ in range(options.repeat):
            # Interleaved, so a change in machine load hits every variant alike.
            for args, times in variants.items():
                times.append(subprocess_run(root, *args))
        plain, full, verbose = (min(times) for times in variants.values())
        print(
            f"{options.missions} missions as subprocesses (best of {options.repeat}): -q {plain:.2f} s; "
            f"-q with JSON and Markdown {full:.2f} s ({full / plain:.3f}x); "
            f"full section with JSON and Markdown {verbose:.2f} s ({verbose / plain:.3f}x)"
        )
        seconds, size = json_report_seconds(Path(tmp))
        print(f"JSON report of 100 missions x 100 steps: {seconds:.3f} s, {size / 1e6:.1f} MB (target < 1 s)")


if __name__ == "__main__":
    main()
