"""The README's reporting examples and CI recipe, run for real: same numbers with and without xdist."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
WORKFLOW = ROOT / "docs" / "github-actions.yml"

CRASH = """\
name: crash
steps:
  - id: first
    step_type: noop
  - id: kill-my-worker
    step_type: command
    parameters:
      command: "{{ python }}"
      args: [-c, "import os, signal; os.kill(os.getppid(), signal.SIGKILL)"]
"""


@pytest.fixture(autouse=True)
def _no_github(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite itself may run in GitHub Actions; these runs must not see it."""
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)


def section(result: pytest.RunResult) -> list[str]:
    """The lines of the mission success rates section, durations replaced by <t>."""
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if re.fullmatch(r"=+ mission success rates =+", line))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("="))
    return [re.sub(r"\d+\.\d\ds", "<t>", line) for line in lines[start + 1 : end]]


def validate_report(path: Path) -> dict[str, Any]:
    """Load a JSON report and validate it against the schema that ships in the package."""
    schema = json.loads(resources.files("pytest_rustchain").joinpath("schema/report.schema.json").read_text())
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(document)
    return document


def normalise_markdown(text: str) -> str:
    text = re.sub(r"\d+\.\d\ds", "<t>", text)
    return re.sub(r"workspace: \S+", "workspace: <ws>", text)


def readme_blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", README.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)


def readme_missions(pytester: pytest.Pytester) -> None:
    """Write the README's example missions (the yaml blocks that start with their path)."""
    for block in readme_blocks("yaml"):
        first = block.splitlines()[0]
        if first.startswith("# missions/") and first.endswith(".mission.yaml"):
            path = pytester.path / first.removeprefix("# ")
            path.parent.mkdir(exist_ok=True)
            path.write_text(block, encoding="utf-8")
    assert sorted(p.name for p in (pytester.path / "missions").iterdir()) == [
        "build.mission.yaml",
        "docs.mission.yaml",
    ]


def without_slowest(lines: list[str]) -> list[str]:
    return lines[: lines.index("slowest steps:") + 1] if "slowest steps:" in lines else lines


def workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return loaded


def workflow_pytest_args() -> list[str]:
    """The arguments after `python -m pytest` in the workflow's run step."""
    runs = [s["run"] for s in workflow()["jobs"]["missions"]["steps"] if "-m pytest" in s.get("run", "")]
    assert len(runs) == 1
    words = shlex.split(runs[0])
    return words[words.index("pytest") + 1 :]


def normalise_report(document: dict[str, Any]) -> str:
    """The JSON report without what depends on timing or on where the workspace was."""
    document = {k: v for k, v in document.items() if k not in ("created", "duration", "slowest_steps")}
    text = json.dumps(document, indent=1, sort_keys=True)
    text = re.sub(r'"duration": [0-9.e-]+', '"duration": 0', text)
    return re.sub(r'[^"\s\\]*/mission-[\w-]+/workspace', "<ws>", text)


def junit_shape(path: Path) -> list[tuple[Any, ...]]:
    """Each testcase: name, properties, and (tag, type, first line of message) of its elements."""
    shape = []
    for case in ET.parse(path).getroot().iter("testcase"):  # noqa: S314 - files this suite wrote
        props = [(p.get("name"), p.get("value")) for p in case.iter("property")]
        parts = [(e.tag, e.get("type"), (e.get("message") or "").split("\n")[0]) for e in case if e.tag != "properties"]
        shape.append((case.get("classname"), case.get("name"), props, parts))
    # Under xdist testcases are written in the order they finish.
    return sorted(shape)


def test_readme_workflow_is_the_tested_copy() -> None:
    """The workflow printed in the README is docs/github-actions.yml, byte for byte."""
    assert WORKFLOW.read_text(encoding="utf-8") in readme_blocks("yaml")


def test_workflow_gates_pull_requests_without_secrets() -> None:
    """The workflow runs on pull_request only, reads only, keeps no credentials, requires a sandbox (and
    installs bubblewrap for it) and uploads the reports."""
    doc = workflow()
    # YAML 1.1 reads the key `on` as true.
    assert list(doc[True]) == ["pull_request"]
    assert doc["permissions"] == {"contents": "read"}
    job = doc["jobs"]["missions"]
    assert job["env"] == {"MISSION_SAFETY_FLOOR": "standard"}
    checkout, _, _, sandbox, _, upload = job["steps"]
    assert "apt-get install -y -qq bubblewrap" in sandbox["run"]
    assert "kernel.apparmor_restrict_unprivileged_userns=0" in sandbox["run"]
    assert checkout["uses"].startswith("actions/checkout@")
    assert checkout["with"] == {"persist-credentials": False}
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["if"] == "${{ !cancelled() }}"
    assert upload["with"]["path"] == "reports/"
    assert workflow_pytest_args() == [
        "missions/",
        "-n",
        "auto",
        "--mission-sandbox=required",
        "--mission-min-success-rate=0.9",
        "--junitxml=reports/missions.xml",
        "--mission-report=reports/missions.json",
        "--mission-summary=reports/missions.md",
    ]


def test_workflow_command_gives_the_same_numbers_with_and_without_xdist(pytester: pytest.Pytester) -> None:
    """The workflow's command under -n 2 and without -n: same section, gate, JSON, Markdown and JUnit."""
    readme_missions(pytester)
    args = workflow_pytest_args()
    at = args.index("-n")
    parallel = pytester.runpytest(*args[:at], "-n", "2", *args[at + 2 :])
    reports = pytester.path / "reports"
    assert sorted(p.name for p in reports.iterdir()) == ["missions.json", "missions.md", "missions.xml"]
    shutil.move(reports, pytester.path / "reports-xdist")
    serial = pytester.runpytest(*args[:at], *args[at + 2 :])

    assert parallel.ret == serial.ret == 1
    assert without_slowest(section(parallel)) == without_slowest(section(serial))
    assert len(section(parallel)) == len(section(serial))
    gate = "mission success rate 0.50 is below the required 0.90 (3 of 6 counted steps passed)"
    assert gate in parallel.stdout.lines
    assert gate in serial.stdout.lines
    xdist_dir = pytester.path / "reports-xdist"
    assert normalise_report(validate_report(xdist_dir / "missions.json")) == normalise_report(
        validate_report(reports / "missions.json")
    )
    assert normalise_markdown((xdist_dir / "missions.md").read_text()) == normalise_markdown(
        (reports / "missions.md").read_text()
    )
    assert junit_shape(xdist_dir / "missions.xml") == junit_shape(reports / "missions.xml")


def test_readme_shows_a_real_run(pytester: pytest.Pytester) -> None:
    """The README's section and JUnit XML are what the README's missions produce."""
    readme_missions(pytester)
    result = pytester.runpytest("missions/", "--mission-min-success-rate=0.9", "--junitxml=junit.xml")
    shown = next(
        b for b in readme_blocks("console") if "= mission success rates =" in b and "missions/build.mission.yaml" in b
    ).splitlines()
    start = next(i for i, line in enumerate(shown) if "= mission success rates =" in line)
    end = next(i for i in range(start + 1, len(shown)) if shown[i].startswith("="))
    readme_section = [re.sub(r"\d+\.\d\ds", "<t>", line) for line in shown[start + 1 : end - 1]]
    assert without_slowest(readme_section) == without_slowest(section(result))
    assert shown[end - 1] in result.stdout.lines
    xml_block = next(b for b in readme_blocks("xml") if "<testsuites" in b)
    (pytester.path / "readme.xml").write_text(xml_block)
    assert junit_shape(pytester.path / "readme.xml") == junit_shape(pytester.path / "junit.xml")


def test_worker_killed_mid_mission(pytester: pytest.Pytester) -> None:
    """On --tx 2*popen workers (the several-machines recipe, locally), a step that kills its worker fails
    that mission only: the other missions run, and the lost mission's declared steps count as lost
    (not passed) in the section, the step rate and the JSON report."""
    readme_missions(pytester)
    (pytester.path / "missions" / "crash.mission.yaml").write_text(CRASH)
    result = pytester.runpytest(
        "missions/", "--tx", "2*popen", "--dist", "load", "--mission-sandbox=none", "--mission-report=run.json"
    )
    result.stdout.fnmatch_lines(["FAILED missions/crash.mission.yaml::crash - worker 'gw?' crashed while*"])
    lines = section(result)
    assert lines[:4] == [
        "mission                                         steps    rate      time  verdict",
        "missions/build.mission.yaml                       2/5   40.0%     <t>  failed",
        "missions/crash.mission.yaml                       0/2    0.0%     <t>  error",
        "missions/docs.mission.yaml                        1/1  100.0%     <t>  passed",
    ]
    assert "missions: 1/3 passed (33.3%)" in lines
    assert "steps:    3/8 passed (37.5%), 1 skipped step not counted" in lines
    crashed = validate_report(pytester.path / "run.json")["missions"][1]
    assert (crashed["name"], crashed["status"], crashed["steps_total"], crashed["steps_passed"]) == (
        "crash", "error", 2, 0)  # fmt: skip
    assert [(s["id"], s["status"], s["counted"]) for s in crashed["steps"]] == [
        ("first", "lost", True), ("kill-my-worker", "lost", True)]  # fmt: skip
    assert re.search(r"worker 'gw\d' crashed while running 'missions/crash.mission.yaml::crash'", crashed["message"])
    assert result.ret == 1
