"""Black-box tests of SPEC 5 and 6: templates, outputs, inferred dependencies and composition."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

WriteMission = Callable[[str, str], None]


def _write(pytester: pytest.Pytester, rel: str, text: str) -> None:
    path = pytester.path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_vars_precedence_command_line_over_ini_over_file(
    pytester: pytest.Pytester, write_mission: WriteMission
) -> None:
    """--mission-var wins over ini mission_vars, which wins over the mission's vars."""
    pytester.makeini("[pytest]\nmission_vars =\n    region=ini\n    tier=ini\n")
    write_mission(
        "v",
        """
        name: v
        vars: {region: file, tier: file, size: file}
        steps:
          - id: show
            step_type: noop
            parameters: {message: "{{ vars.region }}/{{ vars.tier }}/{{ vars.size }}"}
            expect:
              output: {message: cli/ini/file}
        """,
    )
    result = pytester.runpytest("-v", "--mission-var", "region=cli")
    assert result.ret == 0, result.stdout.str()


def test_step_output_file_and_reference(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """name=value lines written to $MISSION_OUTPUT become outputs a later step can use."""
    write_mission(
        "out",
        """
        name: out
        steps:
          - id: probe
            step_type: command
            parameters:
              shell: true
              command: |
                echo "version=2.1" >> "$MISSION_OUTPUT"
                printf 'notes<<EOF\\nline one\\nline two\\nEOF\\n' >> "$MISSION_OUTPUT"
          - id: use
            step_type: create_file
            parameters: {path: v.txt, content: "{{ steps.probe.outputs.version }}|{{ steps.probe.notes }}"}
            expect:
              file_contains: {path: v.txt, text: "2.1|line one\\nline two"}
        """,
    )
    result = pytester.runpytest("-v")
    assert result.ret == 0, result.stdout.str()


def test_reference_to_unknown_or_later_step_is_collection_error(
    pytester: pytest.Pytester, write_mission: WriteMission
) -> None:
    """Using steps.x of a step that does not exist or runs later fails at collection, naming both."""
    write_mission(
        "unknown",
        """
        name: u
        steps:
          - id: build
            step_type: noop
          - id: use
            step_type: noop
            parameters: {message: "{{ steps.biuld.message }}"}
        """,
    )
    write_mission(
        "later",
        """
        name: l
        steps:
          - id: early
            step_type: noop
            parameters: {message: "{{ steps.late.message }}"}
          - id: late
            step_type: noop
            depends_on: [early]
        """,
    )
    result = pytester.runpytest("-v")
    out = result.stdout.str()
    assert "step 'use' uses steps.biuld, but there is no step 'biuld'" in out
    assert "did you mean 'build'?" in out
    assert "step 'early' uses steps.late, but 'late' runs after it" in out
    result.assert_outcomes(failed=2)


def test_render_false_keeps_braces(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """`render: false` writes `{{ }}` content (a GitHub workflow) as it is."""
    write_mission(
        "raw",
        """
        name: raw
        steps:
          - id: wf
            step_type: create_file
            render: false
            parameters: {path: ci.yml, content: "run: echo ${{ secrets.X }}"}
            expect:
              file_contains: {path: ci.yml, text: "${{ secrets.X }}"}
        """,
    )
    result = pytester.runpytest("-v")
    assert result.ret == 0, result.stdout.str()


def test_rendered_text_is_not_rendered_again(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A file whose text contains `{{ vars.x }}` stays text when passed on through an output."""
    write_mission(
        "once",
        """
        name: once
        vars: {x: SHOULD-NOT-APPEAR}
        steps:
          - id: write
            step_type: create_file
            render: false
            parameters: {path: t.txt, content: "{{ vars.x }}"}
          - id: read
            step_type: read_file
            parameters: {path: t.txt}
          - id: copy
            step_type: create_file
            parameters: {path: u.txt, content: "{{ steps.read.content }}"}
            expect:
              file_contains: {path: u.txt, text: "{{ '{{ vars.x }}' }}"}
        """,
    )
    result = pytester.runpytest("-v")
    assert result.ret == 0, result.stdout.str()


def test_template_file_is_rendered(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """create_file with template: renders a file next to the mission."""
    _write(pytester, "templates/module.py.j2", '"""{{ vars.name }} module."""\nVERSION = "{{ vars.version }}"\n')
    write_mission(
        "tpl",
        """
        name: tpl
        vars: {name: demo, version: "0.3"}
        steps:
          - id: gen
            step_type: create_file
            parameters: {path: demo.py, template: templates/module.py.j2}
            expect:
              file_contains: {path: demo.py, text: 'VERSION = "0.3"'}
        """,
    )
    result = pytester.runpytest("-v")
    assert result.ret == 0, result.stdout.str()


def test_template_outside_project_is_refused(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """template: ../../etc/passwd is refused at collection."""
    write_mission(
        "esc",
        """
        name: esc
        steps:
          - id: gen
            step_type: create_file
            parameters: {path: x, template: ../../../../../../etc/passwd}
        """,
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(failed=1)
    assert "template '../../../../../../etc/passwd' is outside the project" in result.stdout.str()


def test_inferred_dependency_skip_names_the_reason(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A step writing under a directory an earlier mkdir creates is skipped when that mkdir fails."""
    write_mission(
        "infer",
        """
        name: infer
        config: {fail_fast: false}
        steps:
          - id: mkdir
            step_type: command
            parameters: {command: "mkdir build/deep/nested"}
          - id: write
            step_type: create_file
            parameters: {path: build/deep/nested/out.txt, content: x}
          - id: other
            step_type: noop
        """,
    )
    result = pytester.runpytest("-v", "-rs")
    result.stdout.fnmatch_lines(["*SUBFAILED[[]mkdir[]]*", "*SUBSKIPPED[[]write[]]*", "*SUBPASSED[[]other[]]*"])
    assert "dependency 'mkdir' failed (inferred: path build/deep/nested/out.txt is under build/deep/nested/)" in (
        result.stdout.str()
    )


def test_extends_merges_and_replaces(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A child mission keeps the base's steps, replaces one by id, appends its own, and wins on vars."""
    _write(
        pytester,
        "base/common.yaml",
        """
        name: base
        vars: {greeting: hello, target: base}
        steps:
          - id: one
            step_type: noop
            parameters: {message: "{{ vars.greeting }} {{ vars.target }}"}
            expect:
              output: {message: hello child}
          - id: two
            step_type: command
            parameters: {command: "false"}
        """,
    )
    write_mission(
        "child",
        """
        name: child
        extends: base/common.yaml
        vars: {target: child}
        steps:
          - id: two
            step_type: noop
          - id: three
            step_type: noop
        """,
    )
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(["*SUBPASSED[[]one[]]*", "*SUBPASSED[[]two[]]*", "*SUBPASSED[[]three[]]*"])
    assert result.ret == 0


def test_extends_cycle_is_named(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """An extends cycle is a collection error naming the chain."""
    _write(pytester, "a.yaml", "extends: b.yaml\nsteps: [{id: x, step_type: noop}]\n")
    _write(pytester, "b.yaml", "extends: a.yaml\nsteps: [{id: y, step_type: noop}]\n")
    write_mission("cyc", "name: c\nextends: a.yaml\n")
    result = pytester.runpytest("-v")
    result.assert_outcomes(failed=1)
    assert "extends cycle: cyc.mission.yaml -> a.yaml -> b.yaml -> a.yaml" in result.stdout.str()


def test_include_inserts_steps(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """`- include: file` inserts that file's steps in place; errors in it point at the included file."""
    _write(
        pytester,
        "common/setup.steps.yaml",
        """
        steps:
          - id: setup
            step_type: create_file
            parameters: {path: ready.txt, content: ok}
        """,
    )
    write_mission(
        "inc",
        """
        name: inc
        steps:
          - include: common/setup.steps.yaml
          - id: check
            step_type: read_file
            parameters: {path: ready.txt}
        """,
    )
    _write(pytester, "common/bad.steps.yaml", "steps:\n  - id: oops\n    step_type: noop\n    tmeout: 3\n")
    write_mission("incbad", "name: b\nsteps:\n  - include: common/bad.steps.yaml\n")
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(["*SUBPASSED[[]setup[]]*", "*SUBPASSED[[]check[]]*"])
    assert "common/bad.steps.yaml:4:5: unknown key 'tmeout'" in result.stdout.str()
    result.assert_outcomes(passed=1, failed=1)


def test_next_missions_share_workspace_and_item(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """next_missions run after the mission, in its workspace, as subtests next/<stem>/<step>."""
    _write(
        pytester,
        "follow/verify.mission.yaml",
        """
        name: verify
        steps:
          - id: check
            step_type: read_file
            parameters: {path: built.txt}
            expect:
              output: {content: built}
        """,
    )
    write_mission(
        "build",
        """
        name: build
        next_missions: [follow/verify.mission.yaml]
        steps:
          - id: make
            step_type: create_file
            parameters: {path: built.txt, content: built}
        """,
    )
    result = pytester.runpytest("-v", "build.mission.yaml")
    result.stdout.fnmatch_lines(["*SUBPASSED[[]make[]]*", "*SUBPASSED[[]next/verify/check[]]*", "*build PASSED*"])
    result.assert_outcomes(passed=1)


def test_unknown_mark_under_strict_markers_is_clean(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """An unregistered mark under --strict-markers fails that mission cleanly with a hint."""
    write_mission("m", "name: m\nmarks: [nightly]\nsteps: [{id: a, step_type: noop}]\n")
    write_mission("ok", "name: ok\nsteps: [{id: a, step_type: noop}]\n")
    result = pytester.runpytest("-v", "--strict-markers")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "unknown mark 'nightly'" in out
    assert "HINT: register it" in out
    assert "Traceback" not in out


def test_marks_select_with_m(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """`marks: [smoke]` is selectable with -m smoke; `skip` skips."""
    pytester.makeini("[pytest]\nmarkers =\n    smoke: quick\n")
    write_mission("s", "name: s\nmarks: [smoke]\nsteps: [{id: a, step_type: noop}]\n")
    write_mission("n", "name: n\nsteps: [{id: a, step_type: noop}]\n")
    write_mission("k", "name: k\nmarks: [smoke, {skip: not today}]\nsteps: [{id: a, step_type: noop}]\n")
    result = pytester.runpytest("-v", "-m", "smoke", "-rs")
    result.assert_outcomes(passed=1, skipped=1, deselected=1)
    assert "not today" in result.stdout.str()
