"""Unit tests of the runner through the Python API (no pytest session involved)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_rustchain import MissionFormatError, StepStatus, load_mission, run_mission
from pytest_rustchain.model import MissionStatus, SkipKind
from pytest_rustchain.runner import ChainRun, RunSettings, run_steps


def _write(tmp_path: Path, text: str, name: str = "m.mission.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_run_mission_returns_outputs_and_rate(tmp_path: Path) -> None:
    """run_mission gives each step's outputs and the success rate."""
    path = _write(
        tmp_path,
        """
        name: api
        vars: {greeting: hi}
        steps:
          - id: build
            step_type: command
            parameters: {command: echo, args: ["{{ vars.greeting }}"]}
          - id: check
            step_type: noop
            parameters: {message: "{{ steps.build.stdout | trim }} {{ steps.build.outputs.exit_code }}"}
        """,
    )
    result = run_mission(path, workspace=tmp_path / "ws", vars={"greeting": "hello"}, rootdir=tmp_path)
    assert result.status is MissionStatus.PASSED
    assert result.steps["build"].outputs["exit_code"] == 0
    assert result.steps["check"].outputs["message"] == "hello 0"
    assert result.success_rate == 1.0


def test_rate_counts_failure_skips_but_not_condition_skips(tmp_path: Path) -> None:
    """passed / (passed + failed + tolerated + failure-skipped); if:-skipped steps are not counted."""
    path = _write(
        tmp_path,
        """
        name: rate
        config: {fail_fast: false}
        steps:
          - id: ok
            step_type: noop
          - id: tolerated
            step_type: command
            continue_on_error: true
            parameters: {command: "false"}
          - id: broken
            step_type: command
            parameters: {command: "false"}
          - id: child
            step_type: noop
            depends_on: [broken]
          - id: never
            step_type: noop
            if: "false"
        """,
    )
    result = run_mission(path, rootdir=tmp_path)
    statuses = {k: v.status for k, v in result.steps.items()}
    assert statuses == {
        "ok": StepStatus.PASSED,
        "tolerated": StepStatus.TOLERATED,
        "broken": StepStatus.FAILED,
        "child": StepStatus.SKIPPED,
        "never": StepStatus.SKIPPED,
    }
    assert result.steps["child"].skip_kind is SkipKind.FAILURE
    assert result.steps["never"].skip_kind is SkipKind.CONDITION
    assert (result.steps_passed, result.steps_total) == (1, 4)
    assert result.success_rate == 0.25
    assert result.message.startswith("1 of 4 steps failed: broken")


def test_retries_pass_on_later_attempt_is_flaky(tmp_path: Path) -> None:
    """A step that passes on its second attempt counts as passed and is flagged flaky."""
    path = _write(
        tmp_path,
        """
        name: retry
        steps:
          - id: flaky
            step_type: command
            retries: {count: 2, delay_seconds: 0}
            parameters:
              command: sh
              args: [-c, "if [ -f seen ]; then exit 0; fi; touch seen; exit 1"]
        """,
    )
    result = run_mission(path, rootdir=tmp_path)
    step = result.steps["flaky"]
    assert step.status is StepStatus.PASSED
    assert step.attempts == 2
    assert step.flaky


def test_retries_last_attempt_decides(tmp_path: Path) -> None:
    """A step failing every attempt fails after count + 1 attempts."""
    path = _write(
        tmp_path,
        """
        name: retry
        steps:
          - id: always-bad
            step_type: command
            retries: {count: 2}
            parameters: {command: sh, args: [-c, "echo x >> tries; exit 1"]}
        """,
    )
    result = run_mission(path, workspace=tmp_path / "ws", rootdir=tmp_path)
    assert result.steps["always-bad"].attempts == 3
    assert (tmp_path / "ws" / "tries").read_text() == "x\nx\nx\n"


def test_undefined_template_name_fails_step_with_names(tmp_path: Path) -> None:
    """An undefined name fails the step and lists the names that exist."""
    path = _write(
        tmp_path,
        """
        name: t
        steps:
          - id: a
            step_type: noop
            parameters: {message: "{{ nope }}"}
        """,
    )
    result = run_mission(path, rootdir=tmp_path)
    reason = result.steps["a"].reason
    assert "parameters: message: 'nope' is undefined" in reason
    assert "names that exist" in reason and "vars" in reason


def test_shell_insertions_are_quoted(tmp_path: Path) -> None:
    """A step output inserted into a shell line is one word: `x; touch pwned` prints, runs nothing."""
    path = _write(
        tmp_path,
        """
        name: quoting
        steps:
          - id: probe
            step_type: command
            parameters: {command: printf, args: ["x; touch pwned"]}
          - id: use
            step_type: command
            parameters:
              shell: true
              command: "echo {{ steps.probe.stdout }}"
            expect:
              stdout_contains: "x; touch pwned"
              file_not_exists: pwned
        """,
    )
    result = run_mission(path, rootdir=tmp_path)
    assert result.status is MissionStatus.PASSED, result.message


def test_load_mission_error_is_clean(tmp_path: Path) -> None:
    """load_mission raises MissionFormatError whose text has path:line:col and a HINT."""
    path = _write(tmp_path, "name: x\nsteps:\n  - id: a\n    step_type: noop\n    depend_on: [b]\n")
    with pytest.raises(MissionFormatError) as info:
        load_mission(path, rootdir=tmp_path)
    text = str(info.value)
    assert text.startswith("m.mission.yaml:5:5: unknown key 'depend_on'")
    assert "HINT: did you mean 'depends_on'?" in text


def test_camel_case_and_type_alias(tmp_path: Path) -> None:
    """RustChain spellings `CreateFile` and `type:` load as create_file."""
    path = _write(
        tmp_path,
        """
        name: aliases
        steps:
          - id: a
            type: CreateFile
            parameters: {path: a.txt, content: x}
          - id: b
            step_type: Command
            parameters: {command: "true"}
        """,
    )
    mission = load_mission(path, rootdir=tmp_path)
    assert [s.step_type for s in mission.steps] == ["create_file", "command"]


def test_compat_mode_warns_and_aliases(tmp_path: Path) -> None:
    """Compat mode drops unknown keys with a warning and maps working_directory to working_dir."""
    path = _write(
        tmp_path,
        """
        name: compat
        config: {max_parallel: 2}
        steps:
          - id: a
            step_type: command
            parameters: {command: pwd, working_directory: sub}
        """,
    )
    with pytest.raises(MissionFormatError):
        load_mission(path, rootdir=tmp_path)
    mission = load_mission(path, rootdir=tmp_path, compat=True)
    assert mission.steps[0].parameters["working_dir"] == "sub"
    assert any("max_parallel" in w for w in mission.warnings)


def test_single_brace_names_of_earlier_steps_only(tmp_path: Path) -> None:
    """`{probe}` in create_file content is the probe step's output; f-string braces stay as written."""
    path = _write(
        tmp_path,
        """
        name: braces
        steps:
          - id: probe
            step_type: command
            parameters: {command: printf, args: ["{{ '{{' }} not rendered }}"]}
          - id: write
            step_type: create_file
            parameters:
              path: out.py
              content: |
                answer = "{probe}"
                print(f"{answer} {missing}")
                data = {"a": 1}
        """,
    )
    result = run_mission(path, workspace=tmp_path / "ws", rootdir=tmp_path)
    assert result.status is MissionStatus.PASSED, result.message
    text = (tmp_path / "ws" / "out.py").read_text()
    assert text == 'answer = "{{ not rendered }}"\nprint(f"{answer} {missing}")\ndata = {"a": 1}\n'


def test_retries_stop_when_the_mission_time_is_up(tmp_path: Path) -> None:
    """A retried step does not outlive mission_timeout_seconds; the message names the mission limit."""
    path = _write(
        tmp_path,
        """
        name: out-of-time
        config: {mission_timeout_seconds: 0.6}
        steps:
          - id: slow
            step_type: command
            retries: {count: 5, delay_seconds: 0}
            parameters: {command: sleep 0.4}
            expect: {exit_code: 1}
        """,
    )
    result = run_mission(path, rootdir=tmp_path)
    step = result.steps["slow"]
    assert step.status is StepStatus.FAILED
    assert step.attempts == 2
    assert "mission timeout 0.6 s" in step.reason


def test_mission_result_survives_to_dict_and_from_dict(tmp_path: Path) -> None:
    """What a worker sends (to_dict) rebuilds the same typed result on the controller (from_dict)."""
    from pytest_rustchain.model import MissionResult

    path = _write(
        tmp_path,
        """
        name: round trip
        config: {fail_fast: false}
        steps:
          - id: ok
            step_type: noop
          - id: tolerated
            step_type: command
            continue_on_error: true
            parameters: {command: "false"}
          - id: broken
            step_type: command
            parameters: {command: "false"}
          - id: child
            step_type: noop
            depends_on: [broken]
        """,
    )
    result = run_mission(path, rootdir=tmp_path)
    again = MissionResult.from_dict(result.to_dict())
    assert (again.status, again.steps_passed, again.steps_total) == (result.status, 1, 4)
    assert again.steps["tolerated"].tolerated_by == "continue_on_error"
    assert again.steps["child"].skipped_because == "broken"
    assert again.steps["broken"].phase == "expect"
    assert again.steps["ok"].source == result.steps["ok"].source == "m.mission.yaml"
    assert again.to_dict() == result.to_dict()


def test_each_command_finds_its_own_empty_output_file(tmp_path: Path) -> None:
    """Every command step finds `$MISSION_OUTPUT` as an empty private file, whatever the steps before it
    wrote there or did to it (removed, moved away, opened up), and none is left behind after the run."""
    fresh = 'test -f "$MISSION_OUTPUT" && test ! -L "$MISSION_OUTPUT" && test ! -s "$MISSION_OUTPUT"'
    fresh += ' && test "$(stat -c %a "$MISSION_OUTPUT")" = 600'
    path = _write(
        tmp_path,
        f"""
        name: outputs
        steps:
          - id: first
            step_type: command
            parameters: {{shell: true, command: '{fresh} && echo a=1 >> "$MISSION_OUTPUT"'}}
          - id: second
            step_type: command
            parameters: {{shell: true, command: '{fresh} && echo "tmp=$TMPDIR" >> "$MISSION_OUTPUT"'}}
          - id: quiet
            step_type: command
            parameters: {{shell: true, command: '{fresh}'}}
          - id: removes
            step_type: command
            parameters: {{shell: true, command: '{fresh} && rm "$MISSION_OUTPUT"'}}
          - id: moves
            step_type: command
            parameters: {{shell: true, command: '{fresh} && mv "$MISSION_OUTPUT" moved.txt'}}
          - id: opens
            step_type: command
            parameters: {{shell: true, command: '{fresh} && chmod 644 "$MISSION_OUTPUT"'}}
          - id: links
            step_type: command
            parameters: {{shell: true, command: '{fresh} && ln "$MISSION_OUTPUT" linked.txt'}}
          - id: last
            step_type: command
            parameters: {{shell: true, command: '{fresh} && echo b=2 >> "$MISSION_OUTPUT"'}}
        """,
    )
    workspace, home, tmpdir = (tmp_path / name for name in ("ws", "home", "tmp"))
    for directory in (workspace, home, tmpdir):
        directory.mkdir()
    chain = ChainRun(
        load_mission(path, rootdir=tmp_path), workspace=workspace, home=home, tmpdir=tmpdir,
        settings=RunSettings(rootdir=tmp_path),
    )  # fmt: skip
    result = run_steps(chain)
    failed = {k: v.reason for k, v in result.steps.items() if v.status is not StepStatus.PASSED}
    assert failed == {}
    assert result.steps["first"].outputs["outputs"] == {"a": "1"}
    assert result.steps["second"].outputs["outputs"] == {"tmp": str(tmpdir)}
    assert result.steps["quiet"].outputs["outputs"] == {}
    assert result.steps["last"].outputs["outputs"] == {"b": "2"}
    assert (workspace / "moved.txt").is_file() and (workspace / "linked.txt").is_file()
    assert list(tmpdir.iterdir()) == []
