"""Black-box tests of repeated missions: subtests per repeat, intervals, min_pass_rate, gates, reports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

WriteMission = Callable[[str, str], None]

# Fails in repeat 2 only: 4 of 5 repeats pass.
FLAKY = """
name: Sometimes fails
steps:
  - id: fresh
    step_type: create_file
    parameters: {path: once.txt, content: "x", overwrite: false}
  - id: gen
    step_type: command
    parameters: {command: sh, args: [-c, "test {{ mission.repeat }} -ne 2"]}
  - id: check
    step_type: noop
"""

REPORT_SCHEMA = json.loads(resources.files("pytest_rustchain").joinpath("schema/report.schema.json").read_text())
TRAJECTORY_SCHEMA = json.loads(
    resources.files("pytest_rustchain").joinpath("schema/trajectory.schema.json").read_text()
)


def _report(pytester: pytest.Pytester, name: str = "r.json") -> dict[str, Any]:
    data = json.loads((pytester.path / name).read_text(encoding="utf-8"))
    jsonschema.validate(data, REPORT_SCHEMA)
    assert isinstance(data, dict)
    return data


def test_repeats_run_as_subtests_in_fresh_workspaces(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """--mission-repeat N runs every step N times as r1/<step> ... rN/<step>, each repeat in a fresh
    workspace (a file created without overwrite succeeds every time), and fails when a repeat failed."""
    write_mission("flaky", FLAKY)
    result = pytester.runpytest("-v", "--mission-repeat", "5", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*SUBPASSED[[]r1/fresh[]]*", "*SUBFAILED[[]r2/gen[]]*", "*SUBPASSED[[]r5/check[]]*"])
    result.stdout.no_fnmatch_line("*SUBFAILED[[]r*/fresh[]]*")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "flaky.mission.yaml * 13/15   86.6% * failed",
            "    5 repeats: 4/5 (80.0%) passed, 95% CI [[]0.376, 0.964[]]",
            "    pass@2 1.000, pass^2 0.600 (of the mission's repeats)",
            "    steps over the repeats: 13/15 (86.6%), 95% CI [[]0.621, 0.963[]]",
            "    flaky over the repeats: gen 4/5, check 4/5",
        ]
    )
    result.stdout.fnmatch_lines(["*1 of 5 repeats failed: r2*"])


def test_step_table_at_verbose(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """-v adds each step's k/n, interval, pass@k, pass^k and whether it is flaky over the repeats."""
    write_mission("flaky", FLAKY)
    result = pytester.runpytest("-v", "--mission-repeat", "5", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        [
            "    step       k/n    rate  95% CI          pass@2  pass^2  flaky",
            "    fresh      5/5  100.0%  [[]0.566, 1.000[]]   1.000   1.000",
            "    gen        4/5   80.0%  [[]0.376, 0.964[]]   1.000   0.600  yes",
        ]
    )


def test_config_repeat_and_command_line_precedence(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A mission's config.repeat sets its repeats; --mission-repeat wins over it; ini mission_repeat is the default."""
    write_mission("own", "name: own\nconfig: {repeat: 3}\nsteps:\n  - {id: a, step_type: noop}\n")
    write_mission("plain", "name: plain\nsteps:\n  - {id: b, step_type: noop}\n")
    pytester.makeini("[pytest]\nmission_repeat = 2\n")
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*SUBPASSED[[]r3/a[]]*", "*SUBPASSED[[]r2/b[]]*"])
    result.stdout.no_fnmatch_line("*r3/b*")
    wins = pytester.runpytest("-v", "-p", "no:cacheprovider", "--mission-repeat", "4")
    wins.stdout.fnmatch_lines(["*SUBPASSED[[]r4/a[]]*", "*SUBPASSED[[]r4/b[]]*"])


def test_min_pass_rate_tolerates_single_failures_and_judges_the_rate(
    pytester: pytest.Pytester, write_mission: WriteMission
) -> None:
    """A step with min_pass_rate is tolerated in a single repeat, and fails the mission only when its
    rate over the repeats is below the minimum, saying so with the interval."""
    text = FLAKY.replace("    step_type: command\n", "    step_type: command\n    min_pass_rate: 0.8\n")
    write_mission("ok", text)
    write_mission("strict", text.replace("min_pass_rate: 0.8", "min_pass_rate: 0.9"))
    result = pytester.runpytest("-v", "--mission-repeat", "5", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*SUBXFAIL[[]r2/gen[]]*"])
    result.stdout.fnmatch_lines(["*ok.mission.yaml::ok PASSED*"])
    # Tolerated in the verdict, but the repeat with the failure did not work: 4 of 5 runs passed.
    result.stdout.fnmatch_lines(
        ["ok.mission.yaml * passed", "    5 repeats: 4/5 (80.0%) passed, 95% CI [[]0.376, 0.964[]]"]
    )
    result.stdout.fnmatch_lines(
        ["*step 'gen' passed 4 of 5 repeats (80.0%, 95% interval 0.376-0.964), below its min_pass_rate 0.9*"]
    )
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 1
    assert outcomes["passed"] == 1


def test_success_threshold_pools_over_repeats(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """success_threshold compares the rate pooled over every repeat's counted steps."""
    # With a threshold fail_fast is off, so 'check' runs after the failure in r2: 14 of 15 pass.
    write_mission("pooled", FLAKY.replace("name: Sometimes fails\n", "name: p\nconfig: {success_threshold: 0.9}\n"))
    passing = pytester.runpytest("--mission-repeat", "5", "-p", "no:cacheprovider")
    assert passing.ret == 0
    write_mission("pooled", FLAKY.replace("name: Sometimes fails\n", "name: p\nconfig: {success_threshold: 0.95}\n"))
    failing = pytester.runpytest("--mission-repeat", "5", "-p", "no:cacheprovider")
    assert failing.ret == 1
    failing.stdout.fnmatch_lines(["*success rate over 5 repeats 14/15 (93.3%) is below the success_threshold 0.95*"])


def test_same_numbers_under_xdist(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """The JSON report's repeat numbers are identical with -n 2 and without."""
    write_mission("flaky", FLAKY)
    write_mission("other", "name: o\nsteps:\n  - {id: a, step_type: noop}\n")
    pytester.runpytest("--mission-repeat", "5", "-p", "no:cacheprovider", "--mission-report=serial.json")
    pytester.runpytest("--mission-repeat", "5", "-p", "no:cacheprovider", "-n", "2", "--mission-report=xdist.json")

    def numbers(name: str) -> list[Any]:
        return [
            (m["nodeid"], m["repeats"], m["steps_passed"], m["steps_total"])
            for m in _report(pytester, name)["missions"]
        ]

    assert numbers("serial.json") == numbers("xdist.json")
    assert numbers("serial.json")[0][1]["mission"]["passed"] == 4


def test_wilson_lower_gate(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """--mission-gate-statistic=wilson-lower fails a run whose rate is above the threshold but whose
    95% lower bound is not, and says both numbers."""
    write_mission("flaky", FLAKY)
    point = pytester.runpytest("--mission-repeat", "5", "-p", "no:cacheprovider", "--mission-min-success-rate=0.85")
    point.stdout.fnmatch_lines(["mission success rate 0.86 meets the required 0.85 (13 of 15 counted steps passed)"])
    lower = pytester.runpytest(
        "--mission-repeat", "5", "-p", "no:cacheprovider", "--mission-min-success-rate=0.85",
        "--mission-gate-statistic=wilson-lower", "--mission-report=r.json",
    )  # fmt: skip
    lower.stdout.fnmatch_lines(
        ["mission success rate 0.86, 95% lower bound 0.62, is below the required 0.85 (13 of 15 counted steps passed)"]
    )
    assert lower.ret == 1
    assert _report(pytester)["gate"]["statistic"] == "wilson-lower"


def test_reports_carry_the_repeat_numbers(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """The JSON report (valid against its schema), the Markdown summary and JUnit properties carry the
    rate, interval, pass@k, pass^k and flaky steps over the repeats."""
    write_mission("flaky", FLAKY)
    pytester.runpytest(
        "--mission-repeat", "5", "-p", "no:cacheprovider", "--mission-report=r.json", "--mission-summary=s.md",
        "--junitxml=j.xml",
    )  # fmt: skip
    block = _report(pytester)["missions"][0]["repeats"]
    assert block["n"] == 5
    assert block["flaky_steps"] == ["gen", "check"]
    gen = next(s for s in block["steps"] if s["id"] == "gen")
    assert (gen["passed"], gen["total"]) == (4, 5)
    assert [round(x, 3) for x in gen["interval"]] == [0.376, 0.964]
    assert round(gen["pass_hat_k"], 3) == 0.6
    summary = (pytester.path / "s.md").read_text()
    assert "| Sometimes fails | 5 | 4/5 (80.0%) | [0.376, 0.964] | 1.000 | 0.600 | gen 4/5, check 4/5 |  |" in summary
    props = {p.get("name"): p.get("value") for p in ET.parse(pytester.path / "j.xml").iter("property")}  # noqa: S314 - pytest's own file
    assert props["repeats"] == "5"
    assert props["repeats_passed"] == "4"
    assert props["repeat_rate_low"] == "0.3755"
    assert props["pass_hat_2"] == "0.600"
    assert props["flaky_over_repeats"] == "gen,check"


def test_reward_per_repeat(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """reward: rustchain scores each repeat 0.5 success + 0.3 efficiency + 0.2 quality and reports them."""
    write_mission("flaky", "reward: rustchain\n" + FLAKY)
    result = pytester.runpytest("--mission-repeat", "5", "-p", "no:cacheprovider", "--mission-report=r.json")
    result.stdout.fnmatch_lines(
        ["    reward (rustchain): mean 0.907, min 0.533, max 1.000", "    reward per repeat: 1.00 0.53 1.00 1.00 1.00"]
    )
    rewards = _report(pytester)["missions"][0]["repeats"]["rewards"]
    # r2: fresh passed, gen failed, check skipped after it (counted): success 1/3; no expect: quality = success.
    assert rewards[1]["success"] == pytest.approx(1 / 3)
    assert rewards[1]["reward"] == pytest.approx(0.5 / 3 + 0.3 + 0.2 / 3)


def test_trajectories_per_repeat(pytester: pytest.Pytester, write_mission: WriteMission, monkeypatch: Any) -> None:
    """--mission-trajectories writes a schema-valid JSONL file per repeat, masked, and an index by the controller."""
    monkeypatch.setenv("DEPLOY_TOKEN", "canary-secret-123456")
    write_mission(
        "flaky",
        FLAKY
        + "  - id: leak\n    step_type: command\n    parameters: {command: sh, args: [-c, 'echo $DEPLOY_TOKEN']}\n",
    )
    pytester.makeini("[pytest]\nmission_pass_env = DEPLOY_TOKEN\n")
    result = pytester.runpytest(
        "--mission-repeat", "3", "-p", "no:cacheprovider", "-n", "2", "--mission-trajectories=traj"
    )
    assert result.ret == 1
    index = json.loads((pytester.path / "traj" / "index.json").read_text())
    files = [run["file"] for run in index["runs"]]
    assert [run["repeat"] for run in index["runs"]] == [1, 2, 3]
    assert all(f.startswith("flaky/") and f.endswith(f"/r{i}.jsonl") for i, f in zip([1, 2, 3], files, strict=True))
    second = pytester.path / "traj" / files[1]
    text = second.read_text()
    assert "canary-secret-123456" not in text
    events = [json.loads(line) for line in text.splitlines()]
    for event in events:
        jsonschema.validate(event, TRAJECTORY_SCHEMA)
    assert [e["event"] for e in events][:2] == ["run", "step_start"]
    assert events[-1] == {**events[-1], "event": "run_end", "status": "failed"}
    ends = {e["step"]: e["status"] for e in events if e["event"] == "step_end"}
    assert ends["r2/gen"] == "failed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mission-repeat", "0"], "*--mission-repeat=0: a mission runs at least once*"),
        (["--mission-export=chat-jsonl"], "*--mission-export=chat-jsonl is built from the trajectories*"),
    ],
)
def test_bad_options_are_usage_errors(
    pytester: pytest.Pytester, write_mission: WriteMission, args: list[str], message: str
) -> None:
    """Impossible repeat and export options stop the run with a HINT instead of doing something else."""
    write_mission("flaky", FLAKY)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message, "*HINT*"])


def test_chat_export_without_llm_steps_is_empty(
    pytester: pytest.Pytester, write_mission: WriteMission, tmp_path: Path
) -> None:
    """The chat-JSONL export lists llm conversations only: a mission without llm steps adds no line."""
    write_mission("flaky", FLAKY)
    pytester.runpytest("-p", "no:cacheprovider", "--mission-trajectories=traj", "--mission-export=chat-jsonl")
    exports = list((pytester.path / "traj").glob("*.chat.jsonl"))
    assert len(exports) == 1
    assert exports[0].read_text() == ""


def test_shipped_repeat_example_replays_its_numbers(pytester: pytest.Pytester) -> None:
    """The shipped code-generation example replays five repeats from its scripted cassette, offline:
    generate passes 4 of 5 with the interval [0.376, 0.964], is flaky, the judge ranks each repeat's
    samples, the mission-level judge ranks the repeats, and its scores are each repeat's reward quality."""
    root = Path(__file__).resolve().parents[2] / "missions"
    (pytester.path / "missions" / "cassettes").mkdir(parents=True)
    for name in ("codegen_repeats.mission.yaml", "cassettes/codegen_repeats.cassette.yaml"):
        (pytester.path / "missions" / name).write_text((root / name).read_text(encoding="utf-8"), encoding="utf-8")
    pytester.makeini("[pytest]\nmarkers =\n    smoke: quick examples\n")
    result = pytester.runpytest(
        "missions/", "-p", "no:cacheprovider", "--mission-record-mode=none", "--mission-report=r.json", "-n", "2"
    )
    assert result.ret == 0
    result.stdout.fnmatch_lines(["llm: * 17 calls (0 recorded, 17 scripted, 0 live)*"])
    block = _report(pytester)["missions"][0]["repeats"]
    rows = {row["id"]: row for row in block["steps"]}
    assert (rows["generate"]["passed"], rows["generate"]["total"]) == (4, 5)
    assert [round(x, 3) for x in rows["generate"]["interval"]] == [0.376, 0.964]
    assert block["flaky_steps"] == ["generate", "run-tests", "rank"]
    assert block["judge"]["scores"] == [0.9, 0.6, 0.1, 0.9, 0.9]
    assert [r["quality"] for r in block["rewards"]] == [0.9, 0.6, 0.1, 0.9, 0.9]
    assert [round(r["reward"], 3) for r in block["rewards"]] == [0.98, 0.92, 0.445, 0.98, 0.98]
    steps = _report(pytester)["missions"][0]["steps"]
    ranks = [s["outputs"]["scores"] for s in steps if s["id"].endswith("/rank") and s["status"] == "passed"]
    assert ranks == [[0.9, 0.3], [0.9, 0.9], [0.9, 0.3], [0.9, 0.9]]


def test_chat_export_of_the_shipped_example(pytester: pytest.Pytester) -> None:
    """Trajectories of a replayed llm mission carry llm_call events (gen_ai fields), and the chat-JSONL
    export gives one conversation per llm step and repeat, with that repeat's reward."""
    root = Path(__file__).resolve().parents[2] / "missions"
    (pytester.path / "missions" / "cassettes").mkdir(parents=True)
    for name in ("codegen_repeats.mission.yaml", "cassettes/codegen_repeats.cassette.yaml"):
        (pytester.path / "missions" / name).write_text((root / name).read_text(encoding="utf-8"), encoding="utf-8")
    pytester.makeini("[pytest]\nmarkers =\n    smoke: quick examples\n")
    result = pytester.runpytest(
        "missions/", "-p", "no:cacheprovider", "--mission-record-mode=none", "--mission-trajectories=traj",
        "--mission-export=chat-jsonl",
    )  # fmt: skip
    assert result.ret == 0
    files = sorted((pytester.path / "traj" / "codegen_repeats").glob("*/r*.jsonl"))
    assert [f.name for f in files] == ["r1.jsonl", "r2.jsonl", "r3.jsonl", "r4.jsonl", "r5.jsonl"]
    calls = [json.loads(line) for line in files[0].read_text().splitlines() if '"llm_call"' in line]
    for event in calls:
        jsonschema.validate(event, TRAJECTORY_SCHEMA)
    assert calls[0]["gen_ai"]["request"]["model"] == "qwen2.5-coder:7b"
    assert calls[0]["source"] == "scripted"
    (export,) = (pytester.path / "traj").glob("*.chat.jsonl")
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    generate = [line for line in lines if line["metadata"]["step"].endswith("/generate")]
    assert len(generate) == 5
    assert [line["metadata"]["reward"] for line in generate][2] == pytest.approx(0.445)
    assert generate[0]["messages"][-1]["role"] == "assistant"
