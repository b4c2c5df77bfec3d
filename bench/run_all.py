"""The speed targets: whole pytest runs with the plugin against bare pytest, in lean virtualenvs built here.

Run: python bench/run_all.py [--repeat N] [--only KEY ...]

Every run of this script builds two throwaway virtualenvs (pip's cache keeps that quick):

- lean: `pip install <this checkout>`, so only the runtime dependencies (pytest, pytest-xdist, PyYAML,
  jsonschema, Jinja2, fastjsonschema, tree-sitter) are installed, as in a user's project. Both sides
  of a row run here; the baselines run with `-p no:rustchain`, so pytest does not load the plugin.
- workflow: pytest-workflow 2.1 and the lean venv's pytest version, for the pytest-workflow row.

Each row is measured in two modes: with the bytecode caches Python and pytest write (after one warm-up
run of each side), and with PYTHONDONTWRITEBYTECODE=1 and no cached assertion-rewritten modules (as in
many CI images and with a read-only site-packages). Runs are paired (plugin, baseline, plugin, ...)
and each figure is the median over the pairs, of wall-clock time and of CPU time (user + system of
pytest and of the processes it waited for). Verdicts use wall-clock time, which is what users wait
for: directory creation and removal, for one, costs far more on the clock than in CPU time. On a
busy machine the clock is noisy; the CPU column and the load average printed with the table tell how
much. Missions run
with `--mission-sandbox=none`, like for like with the baselines, which have no sandbox. The table
printed at the end is Markdown.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

CHECKOUT = Path(__file__).resolve().parents[1]
SLEEP = "0.5"


@dataclass(frozen=True, slots=True, kw_only=True)
class Side:
    """One pytest command line: which interpreter, where, with which arguments."""

    python: Path
    cwd: Path
    args: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One target: the plugin's run against its baseline and how the figure is judged."""

    key: str
    title: str
    baseline_title: str
    plugin: Side
    baseline: Side
    # ratio: plugin / baseline <= target; speedup: baseline / plugin >= target;
    # overhead: plugin - baseline in milliseconds <= target.
    kind: Literal["ratio", "speedup", "overhead"]
    target: float
    heavy: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """The medians measured for one row in one mode."""

    row: Row
    mode: str
    plugin_s: float
    baseline_s: float
    wall: float
    cpu: float

    @property
    def judged(self) -> float:
        return self.wall

    @property
    def met(self) -> bool | None:
        if self.row.target <= 0:
            return None
        if self.row.kind == "speedup":
            return self.judged >= self.row.target
        return self.judged <= self.row.target

    def cells(self) -> list[str]:
        if self.row.kind == "overhead":
            wall, cpu, target = f"+{self.wall:.0f} ms", f"+{self.cpu:.0f} ms", f"<= +{self.row.target:.0f} ms"
        else:
            wall, cpu = f"{self.wall:.2f}x", f"{self.cpu:.2f}x"
            sign = ">=" if self.row.kind == "speedup" else "<="
            target = f"{sign} {self.row.target:.2f}x" if self.row.target > 0 else "none"
        if self.row.kind == "speedup":
            cpu = "-"
        verdict = {True: "met", False: "**missed**", None: "reference"}[self.met]
        return [
            self.row.title,
            self.row.baseline_title,
            self.mode,
            f"{self.plugin_s:.2f}",
            f"{self.baseline_s:.2f}",
            wall,
            cpu,
            target,
            verdict,
        ]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_venvs(root: Path) -> tuple[Path, Path]:
    lean, workflow = root / "lean", root / "workflow"
    for venv in (lean, workflow):
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    log(f"installing {CHECKOUT} (runtime dependencies only) into {lean}")
    pip(lean, str(CHECKOUT))
    pytest_version = subprocess.run(
        [str(lean / "bin" / "python"), "-c", "import pytest; print(pytest.__version__)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    log(f"installing pytest-workflow 2.1 with pytest {pytest_version} into {workflow}")
    pip(workflow, "pytest-workflow==2.1.*", f"pytest=={pytest_version}")
    return lean / "bin" / "python", workflow / "bin" / "python"


def pip(venv: Path, *requirements: str) -> None:
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *requirements],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"pip install {' '.join(requirements)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def mission_text(steps: list[str], name: str = "bench") -> str:
    lines = [f"name: {name}", "steps:"]
    lines += [f"  - id: s{i}\n{step}" for i, step in enumerate(steps)]
    return "\n".join(lines) + "\n"


NOOP = "    step_type: noop"
TRUE = "    step_type: command\n    parameters: {command: 'true'}"
ECHO = "    step_type: command\n    parameters: {command: echo, args: [hello]}\n    expect: {stdout_contains: hello}"
SLEEPER = f"    step_type: command\n    parameters: {{command: sleep, args: ['{SLEEP}']}}"
TEN_STEPS = (
    "    step_type: command\n    depends_on: []\n    timeout_seconds: 30\n"
    "    parameters: {command: echo, args: [hello, world]}\n    expect: {stdout_contains: hello}"
)
SUBPROCESS_TESTS = (
    "import subprocess\n\n\n"
    "def test_procs(subtests):\n"
    "    for i in range(200):\n"
    "        with subtests.test(msg=f's{i}'):\n"
    "            subprocess.run(['true'], stdin=subprocess.DEVNULL, capture_output=True, check=True,\n"
    "                           start_new_session=True, timeout=300)\n"
)
SUBTESTS = (
    "def test_sub(subtests):\n    for i in range(1000):\n        with subtests.test(msg=f's{i}'):\n            pass\n"
)
PARAMETRIZED = (
    "import pytest\n\n\n"
    "@pytest.mark.parametrize('n', range(1000))\n"
    "def test_mission(n, subtests):\n"
    "    for i in range(10):\n"
    "        with subtests.test(msg=f's{i}'):\n"
    "            pass\n"
)
SLEEP_TEST = f"import subprocess\n\n\ndef test_sleep():\n    subprocess.run(['sleep', '{SLEEP}'], check=True)\n"
WORKFLOW = "- name: w{i}\n  command: echo hello\n  stdout:\n    contains:\n      - hello\n"


def make_dir(root: Path, name: str, files: dict[str, str]) -> Path:
    directory = root / name
    directory.mkdir()
    (directory / "pytest.ini").write_text("[pytest]\n")
    for filename, text in files.items():
        (directory / filename).write_text(text)
    return directory


def build_rows(root: Path, lean: Path, workflow: Path) -> list[Row]:
    none = "--mission-sandbox=none"
    bare = "-p", "no:rustchain"

    def mine(directory: Path, *args: str) -> Side:
        return Side(python=lean, cwd=directory, args=args)

    def bare_pytest(directory: Path, *args: str) -> Side:
        return Side(python=lean, cwd=directory, args=(*bare, *args))

    one_test = make_dir(root, "one_test", {"test_one.py": "def test_one():\n    pass\n"})
    one_mission = make_dir(root, "one_mission", {"one.mission.yaml": mission_text([NOOP])})
    py1000 = make_dir(root, "py1000", {f"test_{i}.py": f"def test_{i}():\n    pass\n" for i in range(1000)})
    m1000 = make_dir(root, "m1000", {f"m{i}.mission.yaml": mission_text([TEN_STEPS] * 10) for i in range(1000)})
    noop = make_dir(root, "noop", {"noop.mission.yaml": mission_text([NOOP] * 1000)})
    subtests = make_dir(root, "subtests", {"test_sub.py": SUBTESTS})
    true = make_dir(root, "true", {"true.mission.yaml": mission_text([TRUE] * 200)})
    subprocs = make_dir(root, "subprocs", {"test_procs.py": SUBPROCESS_TESTS})
    echo = make_dir(root, "echo", {f"e{i}.mission.yaml": mission_text([ECHO]) for i in range(100)})
    # pytest-workflow copies the rootdir into every workflow's directory: its usual layout, one file of
    # workflows, keeps that copy small (a hundred files would make it copy 10,000 files).
    workflows = make_dir(root, "workflows", {"test_workflows.yml": "".join(WORKFLOW.format(i=i) for i in range(100))})
    sleepers = make_dir(root, "sleepers", {f"z{i}.mission.yaml": mission_text([SLEEPER]) for i in range(20)})
    sleep_tests = make_dir(root, "sleep_tests", {f"test_z{i}.py": SLEEP_TEST for i in range(20)})
    noop_missions = make_dir(root, "noop1000", {f"m{i}.mission.yaml": mission_text([NOOP] * 10) for i in range(1000)})
    parametrized = make_dir(root, "parametrized", {"test_param.py": PARAMETRIZED})

    return [
        Row(
            key="startup",
            title="one mission of one `noop` step",
            baseline_title="one one-line test file",
            kind="ratio",
            target=1.3,
            plugin=mine(one_mission, none),
            baseline=bare_pytest(one_test),
        ),
        Row(
            key="import",
            title="a run with no mission file, plugin installed",
            baseline_title="the same run with `-p no:rustchain`",
            kind="overhead",
            target=10,
            plugin=mine(one_test),
            baseline=bare_pytest(one_test),
        ),
        Row(
            key="collect",
            title="collecting 1,000 ten-step missions",
            baseline_title="collecting 1,000 one-test files",
            kind="ratio",
            target=1.3,
            plugin=mine(m1000, none, "--collect-only"),
            baseline=bare_pytest(py1000, "--collect-only"),
        ),
        Row(
            key="collect-uncached",
            title="collecting 1,000 ten-step missions, `-p no:cacheprovider` (every file parsed)",
            baseline_title="collecting 1,000 one-test files, `-p no:cacheprovider`",
            kind="ratio",
            target=0,
            plugin=mine(m1000, none, "--collect-only", "-p", "no:cacheprovider"),
            baseline=bare_pytest(py1000, "--collect-only", "-p", "no:cacheprovider"),
        ),
        Row(
            key="noop",
            title="1,000 `noop` steps",
            baseline_title="1,000 empty subtests",
            kind="ratio",
            target=1.3,
            plugin=mine(noop, none),
            baseline=bare_pytest(subtests),
        ),
        Row(
            key="true",
            title="200 `true` commands",
            baseline_title="200 subprocesses in subtests (`start_new_session`)",
            kind="ratio",
            target=1.15,
            plugin=mine(true, none),
            baseline=bare_pytest(subprocs),
        ),
        Row(
            key="workflow",
            title="100 one-command missions",
            baseline_title="100 one-command pytest-workflow 2.1 workflows in one file",
            kind="ratio",
            target=1.0,
            plugin=Side(python=lean, cwd=echo, args=(none,)),
            baseline=Side(python=workflow, cwd=workflows, args=()),
        ),
        Row(
            key="xdist",
            title=f"20 missions of `sleep {SLEEP}`, `-n 2`",
            baseline_title="the same missions serially",
            kind="speedup",
            target=1.85,
            heavy=True,
            plugin=Side(python=lean, cwd=sleepers, args=(none, "-n", "2")),
            baseline=Side(python=lean, cwd=sleepers, args=(none,)),
        ),
        Row(
            key="xdist-bare",
            title=f"20 test files running `sleep {SLEEP}`, `-n 2`",
            baseline_title="the same tests serially (bare pytest)",
            kind="speedup",
            target=0,
            heavy=True,
            plugin=Side(python=lean, cwd=sleep_tests, args=(*bare, "-n", "2")),
            baseline=Side(python=lean, cwd=sleep_tests, args=bare),
        ),
        Row(
            key="missions",
            title="1,000 missions of 10 `noop` steps",
            baseline_title="1,000 parametrized tests of 10 subtests",
            kind="ratio",
            target=1.5,
            heavy=True,
            plugin=mine(noop_missions, none),
            baseline=bare_pytest(parametrized),
        ),
    ]


def environment(no_cache: bool, temproot: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTEST_ADDOPTS", "PYTHONPATH", "PYTEST_PLUGINS", "PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV"}
    }
    if no_cache:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    # pytest keeps the last three base temporary directories of a user and removes older ones at the end
    # of a run: in the shared /tmp/pytest-of-<user>, a benchmarked run would pay for removing the
    # directories of whatever test suite ran before it. Both sides get a root of their own here.
    env["PYTEST_DEBUG_TEMPROOT"] = str(temproot)
    return env


def run(side: Side, env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system, the pytest process and what it waited for) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [str(side.python), "-m", "pytest", "-q", *side.args],
        cwd=side.cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"benchmark run failed in {side.cwd} {side.args}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def purge_rewritten(root: Path) -> None:
    """Delete the assertion-rewritten modules pytest cached, so the no-cache mode starts without them."""
    for pyc in root.rglob("*-pytest-*.pyc"):
        pyc.unlink()


def measure(row: Row, mode: str, env: dict[str, str], repeat: int) -> Result:
    pairs = math.ceil(repeat / 2) if row.heavy else repeat * (3 if row.kind == "overhead" else 1)
    run(row.plugin, env)
    run(row.baseline, env)
    plugin_runs: list[tuple[float, float]] = []
    base_runs: list[tuple[float, float]] = []
    for _ in range(pairs):
        plugin_runs.append(run(row.plugin, env))
        base_runs.append(run(row.baseline, env))
    combine: Callable[[float, float], float] = {
        "ratio": lambda p, b: p / b,
        "speedup": lambda p, b: b / p,
        "overhead": lambda p, b: (p - b) * 1000,
    }[row.kind]

    def median_of_pairs(index: int) -> float:
        return statistics.median(combine(p[index], b[index]) for p, b in zip(plugin_runs, base_runs, strict=True))

    result = Result(
        row=row,
        mode=mode,
        plugin_s=statistics.median(p[0] for p in plugin_runs),
        baseline_s=statistics.median(b[0] for b in base_runs),
        wall=median_of_pairs(0),
        cpu=median_of_pairs(1),
    )
    log(" | ".join(result.cells()))
    return result


def table(results: list[Result]) -> str:
    head = ["run", "baseline", "mode", "plugin s", "baseline s", "wall", "CPU", "target", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(result.cells()) + " |" for result in results]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5, help="paired runs per row (heavy rows: half)")
    parser.add_argument("--only", nargs="*", default=None, help="row keys to run (default: all)")
    options = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="rustchain-bench-") as tmp:
        root = Path(tmp)
        lean, workflow = build_venvs(root)
        rows = build_rows(root, lean, workflow)
        if options.only:
            rows = [row for row in rows if row.key in options.only]
        results: list[Result] = []
        for mode, no_cache in (("PYTHONDONTWRITEBYTECODE=1", True), ("bytecode cached", False)):
            purge_rewritten(root)
            temproot = root / "tmp"
            temproot.mkdir(exist_ok=True)
            env = environment(no_cache, temproot)
            results += [measure(row, mode, env, options.repeat) for row in rows]
        load = os.getloadavg()[0]
        print(
            f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {load_before:.1f} before and "
            f"{load:.1f} after; medians of paired runs. Verdicts on wall-clock time; CPU is user + system time "
            "of pytest and what it waited for.\n"
        )
        print(table(results))


if __name__ == "__main__":
    main()
