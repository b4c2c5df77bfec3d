"""Bad mission files: one failing item with a clean message; the other missions still run."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

WriteMission = Callable[[str, str], None]

GOOD = """
name: good
steps:
  - id: ok
    step_type: noop
"""

# (mission text, fragments the failure text must contain)
BAD: list[tuple[str, str, list[str]]] = [
    (
        "unknown-type",
        """
        name: x
        steps:
          - id: a
            step_type: redis_set
        """,
        ["step type 'redis_set' is not supported", "HINT:", "supported: ", "command"],
    ),
    (
        "typo-type",
        """
        name: x
        steps:
          - id: a
            step_type: comand
            parameters: {command: "true"}
        """,
        ["did you mean 'command'?"],
    ),
    (
        "bad-id",
        """
        name: x
        steps:
          - id: "../etc"
            step_type: noop
        """,
        ["invalid step id '../etc'", "bad-id.mission.yaml:4:", "HINT: ids start with a letter"],
    ),
    (
        "missing-id",
        """
        name: x
        steps:
          - step_type: noop
        """,
        ["'id' is a required property", "$.steps[0]"],
    ),
    (
        "duplicate-id",
        """
        name: x
        steps:
          - id: a
            step_type: noop
          - id: a
            step_type: noop
        """,
        ["duplicate step id 'a' (first at line 4)", ":6:"],
    ),
    (
        "cycle",
        """
        name: x
        steps:
          - id: a
            step_type: noop
            depends_on: [b]
          - id: b
            step_type: noop
            depends_on: [a]
        """,
        ["dependency cycle: a -> b -> a"],
    ),
    (
        "self-dep",
        """
        name: x
        steps:
          - id: a
            step_type: noop
            depends_on: [a]
        """,
        ["dependency cycle: a -> a"],
    ),
    (
        "unknown-dep",
        """
        name: x
        steps:
          - id: build
            step_type: noop
          - id: test
            step_type: noop
            depends_on: [buidl]
        """,
        ["step 'test' depends on unknown step 'buidl'", "did you mean 'build'?"],
    ),
    (
        "unknown-key",
        """
        name: x
        steps:
          - id: a
            step_type: noop
            depend_on: [b]
        """,
        ["unknown key 'depend_on'", "did you mean 'depends_on'?", "unknown-key.mission.yaml:6:"],
    ),
    (
        "timeout-typo",
        """
        name: x
        steps:
          - id: a
            step_type: noop
            timout: 5
        """,
        ["unknown key 'timout'", "did you mean 'timeout_seconds'?"],
    ),
    (
        "unknown-param",
        """
        name: x
        steps:
          - id: a
            step_type: command
            parameters: {command: "true", workdir: src}
        """,
        ["unknown key 'workdir'", "did you mean 'working_dir'?"],
    ),
    (
        "timeout-string",
        """
        name: x
        steps:
          - id: a
            step_type: noop
            timeout_seconds: "ten"
        """,
        ["expected number, got string 'ten'", "$.steps[0].timeout_seconds"],
    ),
    (
        "timeout-zero",
        """
        name: x
        steps:
          - id: a
            step_type: noop
            timeout_seconds: 0
        """,
        ["out of range"],
    ),
    (
        "timeout-huge",
        """
        name: x
        steps:
          - id: a
            step_type: noop
            timeout_seconds: 1000000000
        """,
        ["out of range"],
    ),
    (
        "retries-huge",
        """
        name: x
        steps:
          - id: a
            step_type: noop
            retries: {count: 1000000}
        """,
        ["out of range"],
    ),
    (
        "steps-mapping",
        """
        name: x
        steps: {}
        """,
        ["expected array, got a mapping", "$.steps"],
    ),
    (
        "command-no",
        """
        name: x
        steps:
          - id: a
            step_type: command
            parameters:
              command: no
        """,
        ["expected string, got boolean false", "HINT:", "quote"],
    ),
    (
        "loader-env",
        """
        name: x
        env:
          LD_PRELOAD: /tmp/evil.so
        steps:
          - id: a
            step_type: noop
        """,
        ["env may not set LD_PRELOAD"],
    ),
    (
        "no-steps",
        """
        name: x
        steps: []
        """,
        ["a mission needs at least one step"],
    ),
    (
        "template-syntax",
        """
        name: x
        steps:
          - id: a
            step_type: noop
            parameters: {message: "{{ vars.x "}
        """,
        ["template syntax error"],
    ),
    (
        "too-many-steps",
        "name: x\nsteps:\n" + "".join(f"  - {{id: s{i}, step_type: noop}}\n" for i in range(1001)),
        ["1001 steps is more than the allowed 1000", "HINT: split the mission, or raise mission_max_steps"],
    ),
    (
        "missing-extends",
        """
        name: x
        extends: base/nowhere.yaml
        """,
        ["extends 'base/nowhere.yaml' does not exist"],
    ),
    (
        "include-outside",
        """
        name: x
        steps:
          - include: ../../../../../../etc/passwd
        """,
        ["include '../../../../../../etc/passwd' is outside the project"],
    ),
    (
        "bad-expression",
        """
        name: x
        steps:
          - id: a
            step_type: noop
            if: "vars.x =="
        """,
        ["step 'a': if: expression syntax error"],
    ),
    (
        "top-level-list",
        """
        - id: a
          step_type: noop
        """,
        ["one mapping"],
    ),
]


@pytest.mark.parametrize(("stem", "text", "fragments"), BAD, ids=[b[0] for b in BAD])
def test_bad_file_is_one_clean_failing_item(
    pytester: pytest.Pytester, write_mission: WriteMission, stem: str, text: str, fragments: list[str]
) -> None:
    """A bad file fails as its own item with path:line, the fix, no traceback; good missions still pass."""
    write_mission(stem, text)
    write_mission("good", GOOD)
    result = pytester.runpytest("-v")
    out = result.stdout.str()
    result.assert_outcomes(passed=1, failed=1)
    assert f"{stem}.mission.yaml::{stem} FAILED" in out
    for fragment in fragments:
        assert fragment in out, f"{fragment!r} missing from:\n{out}"
    assert "Traceback" not in out
    assert "pytest_rustchain/" not in out


def test_broken_file_is_not_deselected_by_m(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """`-m smoke` keeps a broken mission, so a typo cannot hide a mission from CI."""
    pytester.makeini("[pytest]\nmarkers =\n    smoke: quick\n")
    write_mission("good", GOOD + "marks: [smoke]\n")
    write_mission("other", GOOD)
    write_mission("broken", "name: x\nsteps: {}\n")
    result = pytester.runpytest("-v", "-m", "smoke")
    result.assert_outcomes(passed=1, failed=1, deselected=1)


def test_nothing_runs_after_a_validation_error(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A mission with an error in step 2 does not run step 1."""
    write_mission(
        "half",
        """
        name: x
        steps:
          - id: first
            step_type: create_file
            parameters: {path: marker.txt, content: ran}
          - id: second
            step_type: nope
        """,
    )
    result = pytester.runpytest("-v", "--mission-keep-workspace=always", f"--basetemp={pytester.path / 'bt'}")
    result.assert_outcomes(failed=1)
    assert not list((pytester.path / "bt").rglob("marker.txt"))


def test_tabs_and_duplicate_keys(pytester: pytest.Pytester) -> None:
    """Tab indentation and duplicate keys get line:col messages, not a traceback."""
    pytester.path.joinpath("tabs.mission.yaml").write_text("name: x\nsteps:\n\t- id: a\n", encoding="utf-8")
    pytester.path.joinpath("dup.mission.yaml").write_text(
        textwrap.dedent(
            """\
            name: x
            steps:
              - id: a
                step_type: command
                parameters:
                  command: "true"
                  command: "false"
            """
        ),
        encoding="utf-8",
    )
    result = pytester.runpytest("-v")
    out = result.stdout.str()
    result.assert_outcomes(failed=2)
    assert "tabs" in out
    assert "duplicate key 'command'" in out
    assert "Traceback" not in out


def test_compat_warning_as_error_fails_only_that_mission(
    pytester: pytest.Pytester, write_mission: WriteMission
) -> None:
    """With filterwarnings = error, a compatibility warning fails its own mission; the others run."""
    pytester.makeini("[pytest]\nfilterwarnings = error\nmission_compat = rustchain\n")
    write_mission("old", "name: old\nconfig: {max_parallel: 2}\nsteps: [{id: a, step_type: noop}]\n")
    write_mission("good", GOOD)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1, failed=1)
    assert "unknown key 'max_parallel'" in result.stdout.str()
