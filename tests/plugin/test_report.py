"""Black-box tests of SPEC 8: the success-rate section, the gate, JUnit XML, the JSON and Markdown reports."""

from __future__ import annotations

import json
import re
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

WriteMission = Callable[[str, str], None]

ALPHA = """
name: Alpha writes a file
steps:
  - id: write
    step_type: create_file
    parameters: {path: out.txt, content: hello}
  - id: read
    step_type: read_file
    parameters: {path: out.txt}
    expect: {output: {content: hello}}
  - id: on-failure
    step_type: noop
    if: failure()
"""

BETA = """
name: Beta builds and lints
steps:
  - id: fetch
    step_type: noop
  - id: build
    step_type: command
    continue_on_error: true
    parameters: {command: sh, args: [-c, "exit 2"]}
  - id: lint
    step_type: command
    parameters: {command: sh, args: [-c, "echo 'E501 | line `too` long' >&2; exit 1"]}
  - id: package
    step_type: noop
    depends_on: [lint]
  - id: cleanup
    step_type: noop
    if: always()
"""

GAMMA = """
name: Gamma is broken
steps:
  - id: only
    step_type: noop
    depend_on: [x]
"""

SECTION = [
    "mission                                         steps    rate      time  verdict",
    "alpha.mission.yaml                                2/2  100.0%     <t>  passed",
    "beta.mission.yaml                                 2/5   40.0%     <t>  failed",
    "gamma.mission.yaml                                0/0     n/a     <t>  error",
    "",
    "step type                                       steps    rate",
    "command                                           0/2    0.0%",
    "create_file                                       1/1  100.0%",
    "noop                                              2/3   66.6%",
    "read_file                                         1/1  100.0%",
    "",
    "missions: 1/3 passed (33.3%)",
    "steps:    4/7 passed (57.1%), 1 skipped step not counted",
    "",
    "slowest steps:",
]


@pytest.fixture(autouse=True)
def _no_github(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite itself may run in GitHub Actions; these runs must not see it unless a test says so."""
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fleet(write_mission: WriteMission) -> None:
    """Three missions: one passes, one fails a step (and tolerates another), one is a broken file."""
    write_mission("alpha", ALPHA)
    write_mission("beta", BETA)
    write_mission("gamma", GAMMA)


def section(result: pytest.RunResult) -> list[str]:
    """The lines of the mission success rates section, durations replaced by <t>."""
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if re.fullmatch(r"=+ mission success rates =+", line))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("="))
    return [re.sub(r"\d+\.\d\ds", "<t>", line) for line in lines[start + 1 : end]]


def test_section_after_pytest_summary(pytester: pytest.Pytester, fleet: None) -> None:
    """The section lists each mission, each step type, the overall rates and the five slowest steps."""
    result = pytester.runpytest()
    lines = section(result)
    assert lines[: len(SECTION)] == SECTION
    slowest = lines[len(SECTION) :]
    assert len(slowest) == 5
    # Which steps are slowest depends on the machine; which steps can be listed does not.
    assert {row.split()[1] for row in slowest} <= {"write", "read", "fetch", "build", "lint", "package", "cleanup"}
    assert all(re.fullmatch(r" +<t>  \S+ \(\w+\)  \w+\.mission\.yaml:\d+", row) for row in slowest)
    out = result.stdout.str()
    assert out.index("short test summary info") < out.index("mission success rates")
    assert result.ret == 1


def test_quiet_is_one_line(pytester: pytest.Pytester, fleet: None) -> None:
    """-q gives one line of rates and no section."""
    result = pytester.runpytest("-q")
    result.stdout.fnmatch_lines(["mission success rates: 1/3 missions passed (33.3%), 4/7 steps passed (57.1%)"])
    assert "= mission success rates =" not in result.stdout.str()


def test_verbose_names_missions_and_steps_that_did_not_pass(pytester: pytest.Pytester, fleet: None) -> None:
    """-v adds each mission's name and one line per step that did not pass, with why."""
    result = pytester.runpytest("-v")
    lines = section(result)
    assert lines[:13] == [
        "mission                                         steps    rate      time  verdict",
        "alpha.mission.yaml                                2/2  100.0%     <t>  passed",
        "    Alpha writes a file",
        "    on-failure (noop) skipped (not counted): if: failure() and no earlier ste...",
        "beta.mission.yaml                                 2/5   40.0%     <t>  failed",
        "    Beta builds and lints",
        "    build (command) tolerated (continue_on_error): exit code 2 (expected 0)",
        "    lint (command) failed: exit code 1 (expected 0)",
        "    package (noop) skipped: dependency 'lint' failed",
        "gamma.mission.yaml                                0/0     n/a     <t>  error",
        "    gamma",
        "    gamma.mission.yaml:6:5: unknown key 'depend_on'",
        "",
    ]
    assert lines[13:18] == [
        "step type                                       steps    rate  not counted",
        "command                                           0/2    0.0%            0",
        "create_file                                       1/1  100.0%            0",
        "noop                                              2/3   66.6%            1",
        "read_file                                         1/1  100.0%            0",
    ]


def test_section_fits_80_columns(pytester: pytest.Pytester) -> None:
    """Long paths and names are cut so every line of the section fits 80 columns."""
    deep = pytester.mkpydir("a_rather_long_directory_name_for_missions") / "and_a_subdirectory_too"
    deep.mkdir()
    (deep / "a_mission_with_a_very_long_file_name_indeed.mission.yaml").write_text(
        textwrap.dedent(
            """
            name: A mission whose name goes on and on well past the edge of any terminal window
            steps:
              - id: a-step-id-that-is-long-enough-to-matter-in-the-table
                step_type: noop
                retries: {count: 1}
            """
        )
    )
    result = pytester.runpytest("-v")
    lines = section(result)
    assert lines[1] == "..._very_long_file_name_indeed.mission.yaml       1/1  100.0%     <t>  passed"
    assert max(len(line) for line in lines) <= 80


def test_no_missions_no_section(pytester: pytest.Pytester) -> None:
    """A run without missions prints nothing of ours and the gate does not apply."""
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest("--mission-min-success-rate=0.9")
    assert "mission success rate" not in result.stdout.str()
    assert result.ret == 0


def _ten_steps_one_tolerated(write_mission: WriteMission) -> None:
    steps = "".join(f"  - id: s{i}\n    step_type: noop\n" for i in range(9))
    steps += "  - id: flaky-probe\n    step_type: command\n    continue_on_error: true\n"
    steps += "    parameters: {command: 'false'}\n"
    write_mission("ten", "name: nine of ten\nsteps:\n" + steps)


@pytest.mark.parametrize(
    ("threshold", "ret", "line"),
    [
        ("0.89", 0, "mission success rate 0.90 meets the required 0.89 (9 of 10 counted steps passed)"),
        ("0.9", 0, "mission success rate 0.90 meets the required 0.90 (9 of 10 counted steps passed)"),
        ("0.91", 1, "mission success rate 0.90 is below the required 0.91 (9 of 10 counted steps passed)"),
        (
            "0.9000001",
            1,
            "mission success rate 0.9000000 is below the required 0.9000001 (9 of 10 counted steps passed)",
        ),
    ],
)
def test_gate_flips_exactly_at_threshold(
    pytester: pytest.Pytester, write_mission: WriteMission, threshold: str, ret: int, line: str
) -> None:
    """9 of 10 steps (the mission itself passes): exit 0 at and below 0.9, exit 1 just above."""
    _ten_steps_one_tolerated(write_mission)
    result = pytester.runpytest(f"--mission-min-success-rate={threshold}")
    result.stdout.fnmatch_lines([line, "*1 passed*"])
    assert result.ret == ret


def test_gate_from_ini(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """ini mission_min_success_rate gates the run; the command line wins over it."""
    _ten_steps_one_tolerated(write_mission)
    pytester.makeini("[pytest]\nmission_min_success_rate = 0.95\n")
    result = pytester.runpytest("-q")
    result.stdout.fnmatch_lines(["mission success rate 0.90 is below the required 0.95 (9 of 10 counted steps passed)"])
    assert result.ret == 1
    assert pytester.runpytest("-q", "--mission-min-success-rate=0.5").ret == 0


def test_bad_gate_value_is_a_usage_error(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A percentage where a fraction belongs stops the run before it starts, with a hint."""
    _ten_steps_one_tolerated(write_mission)
    result = pytester.runpytest("--mission-min-success-rate=90")
    result.stderr.fnmatch_lines(
        [
            "ERROR: --mission-min-success-rate: '90' is not a success rate between 0 and 1",
            "  HINT: a rate of 90% is written 0.9",
        ]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_gate_counts_what_spec_counts(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """Condition-skipped steps are shown but not counted; a run with nothing counted is n/a and passes."""
    write_mission(
        "deploy",
        """
        name: deploy when asked
        vars: {deploy: false}
        steps:
          - id: build
            step_type: noop
          - id: deploy
            step_type: noop
            if: vars.deploy
          - id: on-failure
            step_type: noop
            if: failure()
        """,
    )
    result = pytester.runpytest("--mission-min-success-rate=1")
    result.stdout.fnmatch_lines(
        [
            "deploy.mission.yaml * 1/1  100.0% * passed",
            "steps:    1/1 passed (100.0%), 2 skipped steps not counted",
            "mission success rate 1.00 meets the required 1.00 (1 of 1 counted steps passed)",
        ]
    )
    assert result.ret == 0
    write_mission("deploy", "name: handler only\nsteps:\n  - id: h\n    step_type: noop\n    if: failure()\n")
    result = pytester.runpytest("--mission-min-success-rate=1")
    result.stdout.fnmatch_lines(
        ["mission success rate n/a (no counted steps): the required 1.00 does not apply", "*1 passed*"]
    )
    assert result.ret == 0


def test_junit_properties_and_one_line_message(pytester: pytest.Pytester, fleet: None) -> None:
    """Each mission's testcase carries its numbers; its own <failure message> is the one-line roll-up."""
    result = pytester.runpytest("--junitxml=junit.xml")
    tree = ET.parse(pytester.path / "junit.xml")  # noqa: S314 - the file this test's own run wrote
    cases = {c.get("name"): c for c in tree.getroot().iter("testcase")}
    props = {name: {p.get("name"): p.get("value") for p in case.iter("property")} for name, case in cases.items()}
    assert props == {
        "alpha": {
            "mission_status": "passed",
            "steps_total": "2",
            "steps_passed": "2",
            "success_rate": "1.0000",
            "risk_max": "0",
        },
        "beta": {
            "mission_status": "failed",
            "steps_total": "5",
            "steps_passed": "2",
            "success_rate": "0.4000",
            "risk_max": "0",
        },
        "gamma": {"mission_status": "error", "steps_total": "0", "steps_passed": "0", "success_rate": "n/a"},
    }
    beta = [
        (e.tag, e.get("type"), (e.get("message") or "").split("\n")[0]) for e in cases["beta"] if e.tag != "properties"
    ]
    assert beta == [
        ("failure", None, "step 'lint' (command) failed at beta.mission.yaml:10"),
        ("failure", None, "1 of 5 steps failed: lint"),
        ("system-out", None, ""),
    ]
    notes = cases["beta"].findtext("system-out") or ""
    assert notes.startswith("tolerated (continue_on_error): step 'build' (command) failed at beta.mission.yaml:6")
    assert "step 'package' (noop) skipped: dependency 'lint' failed" in notes
    own = cases["beta"].findall("failure")[-1]
    assert own.get("message") == "1 of 5 steps failed: lint"
    assert own.text is not None and "exit code 1 (expected 0)" in own.text
    assert cases["gamma"].find("failure").get("message") == "gamma.mission.yaml:6:5: unknown key 'depend_on'"  # type: ignore[union-attr]
    result.stdout.fnmatch_lines(["FAILED beta.mission.yaml::beta - 1 of 5 steps failed: lint"])
    result.stdout.fnmatch_lines(["_* beta: Beta builds and lints _*", "1 of 5 steps failed: lint", "", "step 'lint'*"])


def _schema() -> dict[str, Any]:
    text = resources.files("pytest_rustchain").joinpath("schema/report.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_report(path: Path) -> dict[str, Any]:
    """Load a JSON report and validate it against the schema that ships in the package."""
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(_schema()).validate(document)
    return document


def test_json_report_matches_schema_and_section(pytester: pytest.Pytester, fleet: None) -> None:
    """--mission-report writes every mission and step with the same numbers as the section."""
    result = pytester.runpytest("--mission-report=reports/run.json", "--mission-min-success-rate=0.5")
    document = validate_report(pytester.path / "reports" / "run.json")
    assert document["exit_status"] == result.ret == 1
    assert document["totals"] == {
        "missions": 3,
        "missions_passed": 1,
        "missions_failed": 2,
        "missions_skipped": 0,
        "mission_success_rate": 1 / 3,
        "steps": 8,
        "steps_counted": 7,
        "steps_passed": 4,
        "steps_not_counted": 1,
        "step_success_rate": 4 / 7,
        "step_statuses": {"failed": 1, "passed": 4, "skipped": 2, "tolerated": 1},
    }
    assert document["gate"] == {
        "min_success_rate": 0.5,
        "passed": True,
        "message": "mission success rate 0.57 meets the required 0.50 (4 of 7 counted steps passed)",
        "statistic": "point",
    }
    beta = document["missions"][1]
    assert [(s["id"], s["status"], s["counted"]) for s in beta["steps"]] == [
        ("fetch", "passed", True),
        ("build", "tolerated", True),
        ("lint", "failed", True),
        ("package", "skipped", True),
        ("cleanup", "passed", True),
    ]
    assert beta["steps"][2]["outputs"]["stderr"] == "E501 | line `too` long\n"
    assert document["missions"][2]["status"] == "error"
    assert document["missions"][2]["message"].startswith("gamma.mission.yaml:6:5: unknown key 'depend_on'")
    result.stdout.fnmatch_lines([f"mission report: {pytester.path / 'reports' / 'run.json'}"])


def test_json_report_outputs_trimmed_and_masked(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """Large outputs are trimmed and secret values masked in the JSON report."""
    write_mission(
        "noisy",
        """
        name: noisy
        env: {API_TOKEN: s3cr3t-value-42}
        steps:
          - id: spill
            step_type: command
            parameters:
              command: sh
              args: [-c, 'echo "token=$API_TOKEN"; head -c 9000 /dev/zero | tr "\\0" x']
        """,
    )
    pytester.runpytest("--mission-report=run.json")
    document = validate_report(pytester.path / "run.json")
    stdout = document["missions"][0]["steps"][0]["outputs"]["stdout"]
    assert "s3cr3t-value-42" not in json.dumps(document)
    assert stdout.startswith("token=***\n")
    assert "chars omitted" in stdout
    assert len(stdout) < 4100


MARKDOWN = """\
## Mission success rates

**Missions:** 1/3 passed (33.3%). **Steps:** 4/7 passed (57.1%), 1 skipped step not counted.

| mission | file | steps | rate | time | verdict | flaky |
|---|---|--:|--:|--:|---|---|
| Alpha writes a file | alpha.mission.yaml | 2/2 | 100.0% | <t> | passed |  |
| Beta builds and lints | beta.mission.yaml | 2/5 | 40.0% | <t> | failed |  |
| gamma | gamma.mission.yaml | 0/0 | n/a | <t> | error |  |

| step type | steps | rate | not counted |
|---|--:|--:|--:|
| command | 0/2 | 0.0% | 0 |
| create\\_file | 1/1 | 100.0% | 0 |
| noop | 2/3 | 66.6% | 1 |
| read\\_file | 1/1 | 100.0% | 0 |

### Failures

- **Beta builds and lints**, step **lint** (command, beta.mission.yaml line 10): failed

  ```text
  step 'lint' (command) failed at beta.mission.yaml:10
    exit code 1 (expected 0)
    command: sh -c 'echo '"'"'E501 | line `too` long'"'"' >&2; exit 1'
    stderr (last lines):
      E501 | line `too` long
    workspace: <ws>
  ```

- **gamma** (gamma.mission.yaml): error

  ```text
  gamma.mission.yaml:6:5: unknown key 'depend_on'
    at $.steps[0].depend_on
    HINT: did you mean 'depends_on'? Free-form data goes under 'metadata' or a key starting with 'x-'.
  ```

### Graphs of failed missions

**Beta builds and lints** (beta.mission.yaml)

```mermaid
flowchart LR
  classDef passed fill:#d7f5dd,stroke:#1a7f37,color:#1f2328
  classDef failed fill:#ffd8d3,stroke:#cf222e,color:#1f2328
  classDef blocked fill:#ffd8d3,stroke:#8b0000,color:#1f2328
  classDef tolerated fill:#fff1c2,stroke:#9a6700,color:#1f2328
  classDef skipped fill:#eaeef2,stroke:#6e7781,color:#1f2328
  s0["fetch (noop): passed"]:::passed
  s1["build (command): tolerated"]:::tolerated
  s2["lint (command): failed"]:::failed
  s3["package (noop): skipped"]:::skipped
  s4["cleanup (noop): passed"]:::passed
  s2 --> s3
```
"""


def normalise_markdown(text: str) -> str:
    text = re.sub(r"\d+\.\d\ds", "<t>", text)
    return re.sub(r"workspace: \S+", "workspace: <ws>", text)


def test_markdown_summary_and_github_step_summary(
    pytester: pytest.Pytester, fleet: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--mission-summary writes the tables and failures; GITHUB_STEP_SUMMARY gets the same appended."""
    step_summary = tmp_path / "step_summary.md"
    step_summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    pytester.runpytest("--mission-summary=summary.md")
    written = (pytester.path / "summary.md").read_text()
    assert normalise_markdown(written) == MARKDOWN
    assert step_summary.read_text() == "# earlier step\n" + written + "\n"


def test_github_annotations_on_yaml_lines(
    pytester: pytest.Pytester, write_mission: WriteMission, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under GitHub Actions each failed step gets an ::error annotation on its line; output cannot inject one."""
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path.parent))
    write_mission(
        "inject",
        """
        name: inject
        steps:
          - id: ok
            step_type: noop
          - id: evil
            step_type: command
            parameters: {command: sh, args: [-c, "echo '::error::forged'; exit 1"]}
        """,
    )
    result = pytester.runpytest("-v", "--mission-summary=summary.md")
    where = f"{pytester.path.name}/inject.mission.yaml"
    annotations = [line for line in result.stdout.lines if line.startswith("::")]
    assert len(annotations) == 1
    assert annotations[0].startswith(
        f"::error file={where},line=6,title=mission inject%3A step evil failed::"
        f"step 'evil' (command) failed at inject.mission.yaml:6%0A  exit code 1 (expected 0)"
    )
    assert not any(line.lstrip().startswith("::error::forged") for line in result.stdout.lines)


def test_skipped_and_xfail_missions_in_reports(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A skipped mission is listed, not counted; an expected-failure mission counts as passed."""
    write_mission("later", "name: later\nmarks: [{skip: not today}]\nsteps:\n  - id: a\n    step_type: noop\n")
    write_mission(
        "known",
        """
        name: known bug
        marks: [{xfail: issue 12}]
        steps:
          - id: a
            step_type: command
            parameters: {command: 'false'}
        """,
    )
    result = pytester.runpytest("--mission-report=run.json")
    lines = section(result)
    assert lines[1:3] == [
        "known.mission.yaml                                0/1    0.0%     <t>  xfailed",
        "later.mission.yaml                                0/0     n/a     <t>  skipped",
    ]
    assert "missions: 1/1 passed (100.0%), 1 skipped" in lines
    document = validate_report(pytester.path / "run.json")
    assert [(m["name"], m["status"], m["message"]) for m in document["missions"]][1] == (
        "later",
        "skipped",
        "not today",
    )


def test_unwritable_report_fails_the_run(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A report that cannot be written is said in red and fails an otherwise green run."""
    write_mission("fine", "name: fine\nsteps:\n  - id: a\n    step_type: noop\n")
    pytester.path.joinpath("blocker").write_text("a file, not a directory")
    result = pytester.runpytest("--mission-report=blocker/run.json")
    result.stdout.fnmatch_lines(["could not write the mission report */blocker/run.json: *"])
    assert result.ret == 1
    result = pytester.runpytest(f"--mission-report={pytester.path}")
    result.stderr.fnmatch_lines([f"ERROR: --mission-report={pytester.path} is a directory"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
