"""A step's life from start to result: whatever fails, where, is counted once in every report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest
from prockit import alive_with, default_signals

from pytest_rustchain.sandbox import probe_sandbox

WriteMission = Callable[[str, str], None]

BOOM_CONFTEST = """
from pytest_rustchain.steps.base import StepType


def _boom(params, ctx):
    raise ValueError("bad input 42")


def pytest_rustchain_step_types():
    return [StepType(name="boom", schema={"type": "object"}, run=_boom)]
"""


def _report(pytester: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    return data


def _junit_props(pytester: pytest.Pytester) -> dict[str, str]:
    root = ET.parse(pytester.path / "j.xml").getroot()  # noqa: S314 - the file this test run wrote
    return {p.get("name", ""): p.get("value", "") for p in root.iter("property")}


def test_step_type_raising_any_exception_fails_step_and_counts(
    pytester: pytest.Pytester, write_mission: WriteMission
) -> None:
    """A step type raising ValueError fails its step with the type and text, skips its dependents, and
    every report (section, JSON, JUnit, Markdown, gate) counts it as not passed."""
    pytester.makeconftest(BOOM_CONFTEST)
    write_mission(
        "boom",
        """
        name: boom
        steps:
          - id: explode
            step_type: boom
          - id: after
            step_type: noop
            depends_on: [explode]
        """,
    )
    result = pytester.runpytest(
        "-v", "--mission-report=r.json", "--junitxml=j.xml", "--mission-summary=s.md", "--mission-min-success-rate=1.0"
    )
    result.stdout.fnmatch_lines(
        [
            "*SUBFAILED[[]explode[]]*",
            "*SUBSKIPPED[[]after[]] (dependency 'explode' failed)*",
            "*run: ValueError: bad input 42*",
        ]
    )
    assert "steps:    0/2 passed (0.0%)" in result.stdout.lines
    totals = _report(pytester)["totals"]
    assert (totals["steps_counted"], totals["steps_passed"]) == (2, 0)
    assert _report(pytester)["gate"]["passed"] is False
    props = _junit_props(pytester)
    assert (props["steps_total"], props["steps_passed"]) == ("2", "0")
    assert "**Steps:** 0/2 passed (0.0%)" in (pytester.path / "s.md").read_text(encoding="utf-8")
    assert result.ret == 1


def test_recursive_template_is_a_counted_failure(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A template whose macro recurses forever fails its step (RecursionError, in the render phase) and
    the step counts: the JSON report and the gate do not say 100%."""
    write_mission(
        "recurse",
        """
        name: recurse
        steps:
          - id: ok
            step_type: noop
          - id: deep
            step_type: noop
            parameters:
              message: "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"
        """,
    )
    result = pytester.runpytest("-v", "--mission-report=r.json", "--mission-min-success-rate=1.0")
    result.stdout.fnmatch_lines(["*SUBFAILED[[]deep[]]*", "*template failed: recursion too deep*"])
    report = _report(pytester)
    assert (report["totals"]["steps_counted"], report["totals"]["steps_passed"]) == (2, 1)
    deep = report["missions"][0]["steps"][1]
    assert (deep["id"], deep["status"], deep["phase"]) == ("deep", "failed", "render")
    assert report["gate"]["passed"] is False
    assert result.ret == 1


def _target_mission(write_mission: WriteMission, name: str, parameters: str, env: str = "") -> None:
    write_mission(
        name,
        f"""
        name: {name}
        steps:
          - id: danger
            step_type: command
            {env}
            parameters: {parameters}
        """,
    )


def test_guard_sees_shell_args_quoted_as_they_run(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """With shell: true, an args element `#` cannot hide the rest of the line from the check."""
    target = pytester.path / "target"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    _target_mission(write_mission, "hash", f'{{shell: true, command: "rm -rf", args: ["#", "{target}"]}}')
    result = pytester.runpytest("-v", "--mission-sandbox=none")
    result.stdout.fnmatch_lines(["*BLOCKED step 'danger'*"])
    assert (target / "keep.txt").exists()


def test_guard_reads_stdin_given_to_a_shell(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A script sent to `sh` on stdin is judged like the same script on the command line."""
    _target_mission(write_mission, "stdin", '{command: sh, stdin: "rm -rf ~\\n"}')
    result = pytester.runpytest("-v", "--mission-sandbox=none")
    result.stdout.fnmatch_lines(["*BLOCKED step 'danger'*", "*RC-FS-001*rm -rf ~*"])


def test_guard_uses_path_from_the_step_env_parameter(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """PATH set in a command step's own `env:` parameter is what the check resolves programs with."""
    (pytester.path / "bin").mkdir()
    _target_mission(write_mission, "pathenv", "{command: ls, env: {PATH: bin}}")
    result = pytester.runpytest("-v", "--mission-safety=strict", "--mission-sandbox=none")
    result.stdout.fnmatch_lines(["*BLOCKED step 'danger'*"])
    _target_mission(write_mission, "pathenv", "{command: ls}")
    assert pytester.runpytest("-v", "--mission-safety=strict", "--mission-sandbox=none").ret == 0


def test_guard_rereads_a_script_changed_after_it_was_written(
    pytester: pytest.Pytester, write_mission: WriteMission
) -> None:
    """A script a step wrote and a later step changed is judged as it is when it runs."""
    victim = pytester.path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("x")
    write_mission(
        "swap",
        f"""
        name: swap
        steps:
          - id: write
            step_type: create_file
            parameters: {{path: run.sh, content: "echo hello\\n"}}
          - id: change
            step_type: command
            parameters: {{shell: true, command: "echo 'rm -rf {victim}' > run.sh"}}
          - id: run
            step_type: command
            parameters: {{command: sh, args: [run.sh]}}
        """,
    )
    result = pytester.runpytest("-v", "--mission-sandbox=none")
    result.stdout.fnmatch_lines(["*BLOCKED step 'run'*"])
    assert (victim / "keep.txt").exists()


def test_lone_expression_keeps_native_value_and_numbers_compare(
    pytester: pytest.Pytester, write_mission: WriteMission
) -> None:
    """`data: "{{ steps.p.data }}"` is the parsed list, and `$MISSION_OUTPUT` text 3 equals YAML 3 in
    `expect` and in `if:`."""
    write_mission(
        "native",
        """
        name: native
        steps:
          - id: p
            step_type: parse_json
            parameters: {content: "[1, 2, 3]"}
          - id: v
            step_type: validate_schema
            parameters: {data: "{{ steps.p.data }}", schema: {type: array, maxItems: 3}}
          - id: count
            step_type: command
            parameters: {shell: true, command: 'echo count=3 >> "$MISSION_OUTPUT"'}
            expect: {output: {count: 3}}
          - id: when
            step_type: noop
            if: "steps.count.count == 3 and steps.count.count > 2"
        """,
    )
    result = pytester.runpytest("-v", "--mission-sandbox=none")
    result.stdout.fnmatch_lines(["*SUBPASSED[[]v[]]*", "*SUBPASSED[[]count[]]*", "*SUBPASSED[[]when[]]*"])
    assert result.ret == 0


def test_included_steps_carry_their_own_file(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A failing step from an `include:` file is reported at that file and line in the JSON report,
    the slowest steps and the GitHub annotation."""
    (pytester.path / "common").mkdir()
    (pytester.path / "common" / "setup.steps.yaml").write_text(
        "steps:\n  - id: pre\n    step_type: noop\n  - id: bad\n    step_type: command\n"
        "    parameters: {command: 'false'}\n",
        encoding="utf-8",
    )
    write_mission("inc", "name: inc\nsteps:\n  - include: common/setup.steps.yaml\n  - id: own\n    step_type: noop\n")
    summary = pytester.path / "s.md"
    os.environ["GITHUB_ACTIONS"] = "true"
    try:
        result = pytester.runpytest("--mission-report=r.json", f"--mission-summary={summary}", "--mission-sandbox=none")
    finally:
        del os.environ["GITHUB_ACTIONS"]
    bad = next(s for s in _report(pytester)["missions"][0]["steps"] if s["id"] == "bad")
    assert (bad["source"], bad["line"]) == ("common/setup.steps.yaml", 4)
    slowest = _report(pytester)["slowest_steps"]
    assert {(s["step"], s["path"]) for s in slowest} >= {("bad", "common/setup.steps.yaml")}
    result.stdout.fnmatch_lines(["::error file=common/setup.steps.yaml,line=4,*"])


def test_run_mission_refuses_a_looser_safety_level(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """`config.safety` looser than the policy is an error through run_mission too, as under pytest."""
    write_mission("loose", "name: loose\nconfig: {safety: permissive}\nsteps: [{id: a, step_type: noop}]\n")
    pytester.makepyfile(
        test_loose_safety="""
        import pytest
        from pytest_rustchain import MissionFormatError, run_mission

        def test_loose(tmp_path):
            with pytest.raises(MissionFormatError, match="looser than the configured policy standard"):
                run_mission("loose.mission.yaml", workspace=tmp_path)
        """
    )
    result = pytester.runpytest("-v", "test_loose_safety.py")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
@pytest.mark.parametrize("sandbox", ["none", "bwrap"])
def test_sigterm_stops_the_step_tree_and_writes_reports(
    pytester: pytest.Pytester, write_mission: WriteMission, sandbox: str, sig: signal.Signals
) -> None:
    """SIGTERM/SIGHUP to pytest kill everything the running step started (bwrap too), write the JSON
    report with the interrupted mission's steps counted, and exit as an interrupt does."""
    if sandbox == "bwrap" and probe_sandbox()[0] is None:
        pytest.skip("bubblewrap cannot run here")
    marker = f"37.{os.getpid()}{int(time.time() * 1000) % 100000}{int(sig)}"
    write_mission(
        "long",
        f"""
        name: long
        steps:
          - id: first
            step_type: noop
          - id: hang
            step_type: command
            parameters: {{shell: true, command: "sleep {marker} & sleep {marker}1"}}
          - id: later
            step_type: noop
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", f"--mission-sandbox={sandbox}",
         "--mission-report=r.json"],
        cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=default_signals,  # the suite may run under nohup, which would make pytest ignore SIGHUP
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(alive_with(marker)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert alive_with(marker), "the step never started"
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # never leave the pytest under test running, whatever failed above
            proc.kill()
            proc.communicate()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert alive_with(marker) == []
    report = _report(pytester)
    mission = report["missions"][0]
    assert mission["status"] == "error"
    assert [(s["id"], s["status"]) for s in mission["steps"]] == [
        ("first", "passed"),
        ("hang", "skipped"),
        ("later", "skipped"),
    ]
    assert (report["totals"]["steps_counted"], report["totals"]["steps_passed"]) == (3, 1)


def test_third_party_step_type_paths_are_checked_and_infer_dependencies(
    pytester: pytest.Pytester, write_mission: WriteMission
) -> None:
    """A conftest step type that declares `paths` gets the safety check on them and inferred edges."""
    pytester.makeconftest(
        """
        from pytest_rustchain import StepType

        def _peek(params, ctx):
            return {"text": (ctx.workspace / params["file"]).read_text()}

        def pytest_rustchain_step_types():
            schema = {"type": "object", "properties": {"file": {"type": "string"}}}
            return [StepType(name="peek", schema=schema, run=_peek, paths={"file": "read"})]
        """
    )
    write_mission(
        "peek",
        """
        name: peek
        config: {fail_fast: false}
        steps:
          - id: make
            step_type: create_file
            parameters: {path: out/a.txt, content: hi}
          - id: look
            step_type: peek
            parameters: {file: out/a.txt}
          - id: secret
            step_type: peek
            parameters: {file: .git/config}
        """,
    )
    result = pytester.runpytest("-v", "--mission-dry-run")
    result.stdout.fnmatch_lines(["*look*peek*after: make (inferred: uses out/a.txt)*", "*BLOCKED*secret*"])
    assert "RC-SEC-003" in result.stdout.str()


def test_sub_steps_are_counted_subtests(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """Sub-steps a step type reports through ctx.substep are subtests `<step>/<name>`, counted once
    each in the section and the JSON report; a failed one fails the mission."""
    pytester.makeconftest(
        """
        from pytest_rustchain import StepType

        def _agent(params, ctx):
            ctx.substep("call-1", passed=True, outputs={"tool": "ls"})
            ctx.substep("call-2", passed=False, reason="the tool said no")
            return {"answer": 42}

        def pytest_rustchain_step_types():
            return [StepType(name="planner", schema={"type": "object"}, run=_agent)]
        """
    )
    write_mission("agent", "name: agent\nsteps:\n  - id: think\n    step_type: planner\n")
    result = pytester.runpytest("-v", "--mission-report=r.json")
    result.stdout.fnmatch_lines(
        ["*SUBPASSED[[]think[]]*", "*SUBPASSED[[]think/call-1[]]*", "*SUBFAILED[[]think/call-2[]]*"]
    )
    assert "steps:    2/3 passed (66.6%)" in result.stdout.lines
    steps = _report(pytester)["missions"][0]["steps"]
    assert [(s["id"], s["status"]) for s in steps] == [
        ("think", "passed"),
        ("think/call-1", "passed"),
        ("think/call-2", "failed"),
    ]
    assert result.ret == 1


def test_conftest_step_types_belong_to_their_session(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A step type added by conftest.py exists only in that session: the built-in table is untouched."""
    from pytest_rustchain.steps import base

    pytester.makeconftest(BOOM_CONFTEST)
    write_mission("uses", "name: uses\nsteps: [{id: a, step_type: boom}]\n")
    assert pytester.runpytest("-v").ret == 1  # the step type exists and fails its step
    assert "boom" not in base.registry()
    (pytester.path / "conftest.py").unlink()
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(["*step type 'boom' is not supported*"])
