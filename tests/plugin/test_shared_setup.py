"""Black-box tests of shared setup: pytest fixtures and setup files named in a mission's `fixtures:`."""

from __future__ import annotations

import json
import textwrap
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from junitparser import JUnitXml

from pytest_rustchain.sandbox import probe_sandbox

REPORT_SCHEMA = "schema/report.schema.json"

CONFTEST = """
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def project_venv(tmp_path_factory):
    with open(os.environ["RC_COUNTER"], "a") as out:
        out.write(os.environ.get("PYTEST_XDIST_WORKER", "main") + "\\n")
    return tmp_path_factory.mktemp("shared-venv")


@pytest.fixture
def build_info(project_venv):
    return {"venv": project_venv, "jobs": 3, "tags": ["fast", "lint"]}
"""

TOOLS_SETUP = """
name: tools
steps:
  - id: count
    step_type: command
    parameters: {shell: true, command: 'echo "${PYTEST_XDIST_WORKER:-main}" >> {{ vars.counter }}'}
  - id: make
    step_type: command
    parameters: {shell: true, command: 'echo ready > made.txt; echo "token=$$-$(date +%s%N)" >> "$MISSION_OUTPUT"'}
"""


def _mission(name: str, fixtures: str, *steps: str) -> str:
    body = "".join(textwrap.indent(textwrap.dedent(s).strip("\n"), "  ") + "\n" for s in steps)
    return f"name: {name}\nfixtures: {fixtures}\nsteps:\n{body}"


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


@pytest.fixture
def counter(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = pytester.path / "counter.txt"
    monkeypatch.setenv("RC_COUNTER", str(path))
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # this suite's own worker, when under -n
    pytester.makeini(
        f"""
        [pytest]
        mission_pass_env = PYTEST_XDIST_WORKER
        mission_vars = counter={path}
        mission_safety = permissive
        """
    )
    return path


def _use_fixtures(index: int) -> str:
    return _mission(
        f"m{index}",
        "[project_venv, build_info]",
        """
        - id: show
          step_type: command
          parameters:
            command: echo
            args:
              - "venv={{ fixtures.project_venv }} jobs={{ fixtures.build_info.jobs }}"
              - "tag={{ fixtures.build_info.tags[1] }}"
          expect: {stdout_contains: "jobs=3 tag=lint"}
        """,
        """
        - id: same
          step_type: noop
          if: fixtures.build_info.venv == fixtures.project_venv
        """,
    )


def test_session_fixture_runs_once_and_reaches_templates(pytester: pytest.Pytester, counter: Path) -> None:
    """A session-scoped conftest fixture named in fixtures: is made once for three missions; paths are text."""
    pytester.makeconftest(CONFTEST)
    for index in range(3):
        pytester.makefile(".mission.yaml", **{f"m{index}": _use_fixtures(index)})
    result = pytester.runpytest("-v", "-p", "no:cacheprovider", "--mission-sandbox=none", "--mission-report=r.json")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*SUBPASSED[[]same[]]*"])
    assert _lines(counter) == ["main"]
    report = json.loads((pytester.path / "r.json").read_text())
    shown = {m["steps"][0]["outputs"]["stdout"].split()[0] for m in report["missions"]}
    assert len(shown) == 1 and "shared-venv" in shown.pop()


def test_fixtures_and_setup_files_run_once_per_xdist_worker(pytester: pytest.Pytester, counter: Path) -> None:
    """Under -n 2 each worker makes a session fixture and runs a setup file at most once."""
    pytester.makeconftest(CONFTEST)
    pytester.makefile(".setup.yaml", **{"common/tools": TOOLS_SETUP})
    for index in range(6):
        mission = _mission(
            f"m{index}",
            "[project_venv, common/tools.setup.yaml]",
            """
            - id: use
              step_type: command
              parameters: {command: cat, args: ["{{ fixtures.tools.workspace }}/made.txt"]}
              expect: {stdout_contains: ready}
            """,
        )
        pytester.makefile(".mission.yaml", **{f"m{index}": mission})
    result = pytester.runpytest("-p", "no:cacheprovider", "-n", "2", "--mission-sandbox=none")
    result.assert_outcomes(passed=6)
    workers = _lines(counter)
    # One line from the conftest fixture and one from the setup file per worker that ran missions.
    assert workers and set(workers) <= {"gw0", "gw1"}
    assert all(workers.count(worker) == 2 for worker in set(workers)), workers


def test_setup_file_outputs_and_directory_reach_templates(pytester: pytest.Pytester, counter: Path) -> None:
    """fixtures.<setup>.workspace and .steps.<id>.<output> are the setup's, the same for every mission."""
    pytester.makefile(".setup.yaml", **{"common/tools": TOOLS_SETUP})
    for index in range(2):
        mission = _mission(
            f"m{index}",
            "[common/tools.setup.yaml]",
            """
            - id: show
              step_type: command
              parameters: {command: echo, args: ["{{ fixtures.tools.steps.make.token }} {{ fixtures.tools.status }}"]}
              expect: {stdout_contains: passed}
            """,
        )
        pytester.makefile(".mission.yaml", **{f"m{index}": mission})
    result = pytester.runpytest("-p", "no:cacheprovider", "--mission-sandbox=none", "--mission-report=r.json")
    result.assert_outcomes(passed=2)
    assert _lines(counter) == ["main"]
    report = json.loads((pytester.path / "r.json").read_text())
    tokens = {m["steps"][0]["outputs"]["stdout"] for m in report["missions"]}
    assert len(tokens) == 1


def test_failed_setup_fails_every_mission_that_needs_it(pytester: pytest.Pytester, counter: Path) -> None:
    """A failing setup runs once; each mission naming it fails with the setup file and step, steps counted."""
    pytester.makefile(
        ".setup.yaml",
        **{
            "common/venv": """
            name: venv
            steps:
              - id: count
                step_type: command
                parameters: {shell: true, command: 'echo once >> {{ vars.counter }}'}
              - id: install
                step_type: command
                parameters: {command: sh, args: [-c, "echo no matching distribution >&2; exit 3"]}
            """
        },
    )
    needs = """
    - id: test
      step_type: noop
    """
    pytester.makefile(
        ".mission.yaml", a=_mission("a", "[common/venv.setup.yaml]", needs, needs.replace("test", "lint"))
    )
    pytester.makefile(".mission.yaml", b=_mission("b", "[common/venv.setup.yaml]", needs))
    pytester.makefile(".mission.yaml", c="name: c\nsteps:\n  - id: alone\n    step_type: noop\n")
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--mission-sandbox=none", "--mission-report=r.json", "--junitxml=j.xml"
    )
    result.assert_outcomes(passed=1, failed=2)
    report = json.loads((pytester.path / "r.json").read_text())
    jsonschema.validate(report, json.loads(resources.files("pytest_rustchain").joinpath(REPORT_SCHEMA).read_text()))
    assert {m["path"]: (m["status"], m["steps_total"], m["steps_passed"]) for m in report["missions"]} == {
        "a.mission.yaml": ("error", 2, 0),
        "b.mission.yaml": ("error", 1, 0),
        "c.mission.yaml": ("passed", 1, 1),
    }
    cases = {case.name: case for suite in JUnitXml.fromfile(str(pytester.path / "j.xml")) for case in suite}
    assert not cases["a"].is_passed and not cases["a"].is_skipped and cases["c"].is_passed
    result.stdout.fnmatch_lines(
        [
            "setup common/venv.setup.yaml (fixtures: at a.mission.yaml:2) failed, so no step of this mission ran",
            "  step 'install' (command) failed at common/venv.setup.yaml:6",
            "*no matching distribution*",
            "  HINT: fix the setup file*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "a.mission.yaml*0/2*0.0%*error",
            "b.mission.yaml*0/1*0.0%*error",
            "c.mission.yaml*1/1*100.0%*passed",
            "steps:    1/4 passed (25.0%)",
        ]
    )
    assert _lines(counter) == ["once"]
    assert result.ret == 1


def test_unknown_fixture_is_a_clean_error_at_the_mission_line(pytester: pytest.Pytester, counter: Path) -> None:
    """A fixture name that no conftest defines fails that mission at its fixtures: line, with a hint."""
    pytester.makeconftest(CONFTEST)
    pytester.makefile(
        ".mission.yaml",
        a=_mission("a", "[projct_venv]", "- id: x\n  step_type: noop"),
        b=_mission("b", "[]", "- id: x\n  step_type: noop"),
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--mission-sandbox=none")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "a.mission.yaml:2:12: unknown fixture 'projct_venv'",
            "  at $.fixtures[[]0[]]",
            "  HINT: did you mean 'project_venv'? Or define it in a conftest.py*",
        ]
    )
    assert "plugin.py" not in result.stdout.str() and "Traceback" not in result.stdout.str()


def test_setup_steps_go_through_the_safety_check(pytester: pytest.Pytester, counter: Path) -> None:
    """A setup step the policy blocks fails the setup (named in the message) and shows in the dry run."""
    pytester.makeini("[pytest]\n")  # the default policy: standard
    pytester.makefile(
        ".setup.yaml",
        **{
            "common/tools": """
            name: tools
            steps:
              - id: wipe
                step_type: command
                parameters: {shell: true, command: 'rm -rf /srv/data'}
            """
        },
    )
    pytester.makefile(".mission.yaml", a=_mission("a", "[common/tools.setup.yaml]", "- id: x\n  step_type: noop"))
    result = pytester.runpytest("-p", "no:cacheprovider", "--mission-sandbox=none")
    result.stdout.fnmatch_lines(
        [
            "setup common/tools.setup.yaml (fixtures: at a.mission.yaml:2) failed*",
            "  BLOCKED step 'wipe' (common/tools.setup.yaml:3) risk 100 (critical), policy standard",
        ]
    )
    assert result.ret == 1
    dry = pytester.runpytest("-p", "no:cacheprovider", "--mission-dry-run")
    dry.stdout.fnmatch_lines(["*BLOCKED  risk 100  setup/tools/wipe*RC-FS-001*"])
    assert dry.ret == 1


@pytest.mark.parametrize(
    ("setup", "fixtures", "expected"),
    [
        ("name: s\nconfig: {workspace: project}\nsteps:\n  - {id: a, step_type: noop}\n", "[s.setup.yaml]",
         "*setup file s.setup.yaml runs in the project checkout*"),
        ("name: s\nfixtures: [tmp_path]\nsteps:\n  - {id: a, step_type: noop}\n", "[s.setup.yaml]",
         "*setup file s.setup.yaml asks for fixtures itself*"),
        ("name: s\nsteps:\n  - {id: a, step_type: noop}\n", "[missing.setup.yaml]",
         "*setup file 'missing.setup.yaml' does not exist*"),
        ("name: s\nsteps:\n  - {id: a, step_type: noop}\n", "[s.setup.yaml, sub/s.setup.yaml]",
         "*'sub/s.setup.yaml' and 's.setup.yaml' are both reached as fixtures.s*"),
    ],
)  # fmt: skip
def test_setup_file_mistakes_are_collection_errors(
    pytester: pytest.Pytester, setup: str, fixtures: str, expected: str
) -> None:
    """Setup files are loaded with the mission: a missing file, a clash or a project workspace fail it."""
    pytester.makefile(".setup.yaml", s=setup, **{"sub/s": setup})
    pytester.makefile(".mission.yaml", a=_mission("a", fixtures, "- id: x\n  step_type: noop"))
    result = pytester.runpytest("-p", "no:cacheprovider", "--collect-only", "-q")
    assert result.ret == 0
    run = pytester.runpytest("-p", "no:cacheprovider", "--mission-sandbox=none")
    run.stdout.fnmatch_lines([expected])
    assert run.ret == 1


@pytest.mark.skipif(probe_sandbox()[0] is None, reason="no working bubblewrap")
def test_fixture_directories_are_readable_inside_the_sandbox(
    pytester: pytest.Pytester, counter: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Under bubblewrap, whose /tmp is private, a mission reads the files of its setup file's directory and
    of a pytest fixture's directory, wherever pytest's temporary directory is."""
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def data_dir(tmp_path_factory):
            path = tmp_path_factory.mktemp("data")
            (path / "data.txt").write_text("from the fixture")
            return path
        """
    )
    maker = "name: tools\nsteps:\n  - id: make\n    step_type: create_file\n"
    maker += "    parameters: {path: made.txt, content: ready}\n"
    pytester.makefile(".setup.yaml", **{"common/tools": maker})
    mission = _mission(
        "reader",
        "[common/tools.setup.yaml, data_dir]",
        """
        - id: setup-file
          step_type: command
          parameters: {command: cat, args: ["{{ fixtures.tools.workspace }}/made.txt"]}
          expect: {stdout_contains: ready}
        """,
        """
        - id: fixture-file
          step_type: command
          parameters: {command: cat, args: ["{{ fixtures.data_dir }}/data.txt"]}
          expect: {stdout_contains: from the fixture}
        """,
    )
    pytester.makefile(".mission.yaml", reader=mission)
    elsewhere = tmp_path_factory.mktemp("basetemp-outside-the-project")
    result = pytester.runpytest("-p", "no:cacheprovider", "--mission-sandbox=bwrap", f"--basetemp={elsewhere}")
    result.assert_outcomes(passed=1)
