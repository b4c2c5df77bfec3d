"""Cost of the HTML report: writing it for 1,000 missions of 10 steps, and opening it in a browser.

Run: python bench/bench_html.py [--missions 1000] [--steps 10] [--repeat 3]

1. Builds the report document of a run of 1,000 missions x 10 steps (10% of them failed, each step with
   a declared and an inferred dependency), then writes the JSON report (the baseline) and the HTML page
   from it; prints both (best of --repeat) and their ratio. Target: the page in under 1 s.
2. When Chromium is installed, opens the page headless and prints the time from navigation to the end
   of the load event, by which the page's script has drawn the list and the failed missions it opens
   (the first ten, graphs included). Target: under 2 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_rustchain import htmlreport, summary

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "plugin"))
from browserkit import Browser, find_chromium  # the test suite's DevTools client


def document(missions: int, steps: int) -> dict[str, Any]:
    entries = []
    for m in range(missions):
        failed_mission = m % 10 == 0
        data: dict[str, Any] = {
            "name": f"mission {m}",
            "path": f"missions/m{m:04d}.mission.yaml",
            "status": "failed" if failed_mission else "passed",
            "duration": 1.25,
            "workspace": f"/tmp/pytest-of-ci/pytest-1/mission-m{m}0/workspace",
            "message": "1 of 10 steps failed: s3" if failed_mission else "",
            "steps": [],
        }
        for s in range(steps):
            failed = failed_mission and s == 3
            skipped = failed_mission and s > 3
            data["steps"].append(
                {
                    "id": f"s{s}",
                    "type": "command",
                    "family": "commands",
                    "status": "failed" if failed else "skipped" if skipped else "passed",
                    "reason": "step 's3' (command) failed at x:3\n  exit code 1 (expected 0)\n" * failed,
                    "skip_kind": "failure" if skipped else "",
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
                    "depends_on": [f"s{s - 1}"] if s else [],
                    "inferred": [{"step": f"s{s - 2}", "why": f"inferred: uses steps.s{s - 2}"}] if s > 1 else [],
                }
            )
        entries.append(summary.mission_entry(f"missions/m{m:04d}.mission.yaml::m{m:04d}", data))
    return summary.report_document(
        summary.summarize(entries),
        created="2026-01-01T00:00:00Z",
        duration=1.0,
        exit_status=1,
        threshold=None,
        versions={"pytest": "9", "pytest-rustchain": "bench"},
        scrub=summary.scrubber(github_actions=False),
    )


def best(repeat: int, func: Any) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def open_seconds(page: Path, profile: Path) -> float | None:
    chromium = find_chromium()
    if chromium is None:
        return None
    browser = Browser(chromium, profile)
    try:
        session = browser.open(page.as_uri())
        assert browser.evaluate(session, "document.body.dataset.ready") == "1"
        ms = browser.evaluate(session, "performance.getEntriesByType('navigation')[0].loadEventEnd")
        return float(ms) / 1000
    finally:
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--missions", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    doc = document(options.missions, options.steps)
    htmlreport.assets()  # read once per process, as in a run
    with tempfile.TemporaryDirectory(prefix="bench-html-") as tmp:
        json_path, html_path = Path(tmp) / "report.json", Path(tmp) / "report.html"

        def write_json() -> None:
            json_path.write_text(json.dumps(doc, ensure_ascii=False) + "\n", encoding="utf-8")

        def write_html() -> None:
            html_path.write_text(htmlreport.render(doc), encoding="utf-8")

        baseline = best(options.repeat, write_json)
        page = best(options.repeat, write_html)
        size = html_path.stat().st_size
        print(
            f"{options.missions} missions x {options.steps} steps: JSON report {baseline:.3f} s; "
            f"HTML page {page:.3f} s ({page / baseline:.2f}x the JSON report), {size / 1e6:.1f} MB "
            "(target < 1 s)"
        )
        opened = open_seconds(html_path, Path(tmp) / "profile")
        if opened is None:
            print("browser: Chromium not installed, open time not measured")
        else:
            print(f"opened in headless Chromium: load event ended after {opened:.3f} s (target < 2 s)")


if __name__ == "__main__":
    main()
