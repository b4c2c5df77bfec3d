"""Black-box tests of everyday features: step outcomes in if:, file checks, venv symlinks, bare-list includes."""

from __future__ import annotations

import hashlib
import textwrap

import pytest


def _run(pytester: pytest.Pytester, text: str, *args: str) -> pytest.RunResult:
    pytester.makefile(".mission.yaml", m=textwrap.dedent(text))
    return pytester.runpytest("--mission-sandbox=none", "-v", *args)


def test_step_outcome_and_conclusion_in_if(pytester: pytest.Pytester) -> None:
    """steps.<id>.outcome is success/failure/skipped and .conclusion counts continue_on_error, as in GitHub."""
    result = _run(
        pytester,
        """
        name: outcomes
        steps:
          - id: lint
            step_type: command
            continue_on_error: true
            parameters: {command: sh, args: [-c, "exit 1"]}
          - id: optional
            step_type: noop
            if: "false"
          - id: on-lint-failure
            step_type: noop
            if: steps.lint.outcome == 'failure' and steps.lint.conclusion == 'success'
          - id: on-lint-success
            step_type: noop
            if: steps.lint.outcome == 'success'
          - id: after-skip
            step_type: noop
            if: steps.optional.outcome == 'skipped'
        """,
    )
    result.stdout.fnmatch_lines(["*SUBPASSED[[]on-lint-failure[]]*", "*SUBSKIPPED[[]on-lint-success[]]*"])
    result.stdout.fnmatch_lines(["*SUBPASSED[[]after-skip[]]*"])
    assert result.ret == 0


def test_unknown_step_attribute_in_if_names_the_step_and_what_it_has(pytester: pytest.Pytester) -> None:
    """A typo like `steps.lint.outcomee` fails the step naming step, attribute and the known ones, no internals."""
    result = _run(
        pytester,
        """
        name: typo
        steps:
          - id: lint
            step_type: command
            parameters: {command: "true"}
          - id: report
            step_type: noop
            if: steps.lint.outcomee == 'failure'
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "*SUBFAILED[[]report[]]*",
            "  if: step 'lint' has no attribute 'outcomee' in expression \"steps.lint.outcomee == 'failure'\"",
            "  HINT: did you mean 'outcome'? steps.lint has: *conclusion, *outcome, outputs, status, *stdout*",
        ]
    )
    assert "_StepView" not in result.stdout.str() and "runner" not in result.stdout.str()
    assert result.ret == 1


def test_file_sha256_matches_and_size(pytester: pytest.Pytester) -> None:
    """expect.file_sha256, file_matches and file_size pass on the right file and say what differs otherwise."""
    digest = hashlib.sha256(b"hello world\n").hexdigest()
    result = _run(
        pytester,
        f"""
        name: file checks
        config: {{fail_fast: false}}
        steps:
          - id: write
            step_type: create_file
            parameters: {{path: hello.txt, content: "hello world\\n"}}
          - id: good
            step_type: noop
            expect:
              file_sha256: {{path: hello.txt, sha256: {digest}}}
              file_matches: {{path: hello.txt, pattern: '^hello \\w+$'}}
              file_size: {{path: hello.txt, equals: 12, max: 100}}
          - id: bad
            step_type: noop
            expect:
              file_sha256: {{path: hello.txt, sha256: {"f" * 64}}}
              file_matches: [{{path: hello.txt, pattern: '^bye'}}]
              file_size: {{path: hello.txt, min: 100}}
        """,
    )
    result.stdout.fnmatch_lines(["*SUBPASSED[[]good[]]*", "*SUBFAILED[[]bad[]]*"])
    result.stdout.fnmatch_lines(
        [
            f"  file_sha256: 'hello.txt' has sha256 {digest} (expected {'f' * 64})",
            "  file_matches: /^bye/ does not match 'hello.txt': 'hello world'",
            "  file_size: 'hello.txt' is 12 bytes (expected at least 100)",
        ]
    )


def test_file_exists_through_a_symlink_that_points_outside(pytester: pytest.Pytester) -> None:
    """A venv's bin/python (a symlink out of the workspace) exists for expect.file_exists; reading it is refused."""
    result = _run(
        pytester,
        """
        name: venv
        steps:
          - id: venv
            step_type: command
            parameters: {command: "{{ python }}", args: [-m, venv, --without-pip, .venv]}
            expect: {file_exists: .venv/bin/python}
          - id: missing
            step_type: noop
            expect: {file_not_exists: [.venv/bin/nothing-here]}
          - id: read
            step_type: read_file
            parameters: {path: .venv/bin/python}
        """,
    )
    result.stdout.fnmatch_lines(["*SUBPASSED[[]venv[]]*", "*SUBPASSED[[]missing[]]*", "*SUBFAILED[[]read[]]*"])
    result.stdout.fnmatch_lines(["*path escapes the workspace*"])


def test_include_file_may_be_a_bare_list_of_steps(pytester: pytest.Pytester) -> None:
    """An included steps file may be a plain list of steps; its errors point at its own lines."""
    pytester.mkdir("common")
    pytester.path.joinpath("common", "setup.steps.yaml").write_text(
        "- id: one\n  step_type: noop\n- id: two\n  step_type: noop\n"
    )
    result = _run(
        pytester, "name: inc\nsteps:\n  - include: common/setup.steps.yaml\n  - id: three\n    step_type: noop\n"
    )
    result.stdout.fnmatch_lines(["*SUBPASSED[[]one[]]*", "*SUBPASSED[[]two[]]*", "*SUBPASSED[[]three[]]*"])
    assert result.ret == 0
    pytester.path.joinpath("common", "setup.steps.yaml").write_text("- id: one\n  step_type: noop\n  colour: red\n")
    result = pytester.runpytest("--mission-sandbox=none")
    result.stdout.fnmatch_lines(["common/setup.steps.yaml:3:3: unknown key 'colour'", "  at $.steps[[]0[]].colour"])


def test_workspace_copy_excludes_names(pytester: pytest.Pytester) -> None:
    """workspace: {copy: dir, exclude: [...]} leaves the named files and directories out, at any depth."""
    for rel in ("proj/src/app.py", "proj/src/app.pyc", "proj/.git/HEAD", "proj/node_modules/x/index.js"):
        target = pytester.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("x\n")
    result = _run(
        pytester,
        """
        name: copy
        config:
          workspace: {copy: proj, exclude: [.git, node_modules, "*.pyc"]}
        steps:
          - id: check
            step_type: noop
            expect:
              file_exists: src/app.py
              file_not_exists: [src/app.pyc, node_modules]
          - id: no-git
            step_type: command
            parameters: {command: sh, args: [-c, "test ! -e .git"]}
        """,
    )
    result.stdout.fnmatch_lines(["*SUBPASSED[[]check[]]*", "*SUBPASSED[[]no-git[]]*"])
    assert result.ret == 0
