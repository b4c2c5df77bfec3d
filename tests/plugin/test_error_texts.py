"""Black-box tests: failure texts keep the reason, show diffs, print each failure once, list every
independent error of a file and say how a value of the wrong type is written."""

from __future__ import annotations

import textwrap

import pytest

LONG = "x" * 253


def _run(pytester: pytest.Pytester, name: str, text: str, *args: str) -> pytest.RunResult:
    pytester.makefile(".mission.yaml", **{name: textwrap.dedent(text)})
    return pytester.runpytest("--mission-sandbox=none", *args)


def test_schema_error_keeps_its_reason_for_long_values(pytester: pytest.Pytester) -> None:
    """validate_schema cuts the long quoted value, never the reason that follows it."""
    items = ", ".join(['{"name": "iniconfig", "version": "2.0.0"}'] * 20)
    result = _run(
        pytester,
        "schema",
        f"""
        name: long values
        config: {{fail_fast: false}}
        steps:
          - id: name
            step_type: validate_schema
            parameters:
              data: {{name: "{LONG}"}}
              schema: {{type: object, properties: {{name: {{type: string, maxLength: 20}}}}}}
          - id: list
            step_type: validate_schema
            parameters:
              data: [{items}]
              schema: {{type: object}}
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "  $.name: 'xxxxxxxx*...' (255 chars) is too long",
            "  $: [[]{'name': 'iniconfig'*...] (* chars) is not of type 'object'",
        ]
    )


def test_long_multiline_values_show_a_line_diff(pytester: pytest.Pytester) -> None:
    """expect.output on a multi-line value shows a line diff, so the differing row is visible."""
    result = _run(
        pytester,
        "table",
        r"""
        name: table
        steps:
          - id: render
            step_type: command
            parameters:
              command: printf
              args: ["| Planet | R |\n| Sun | 696000 |\n| Earth | 6371 |\n| Moon | 1737 |\n"]
            expect:
              output:
                stdout: |
                  | Planet | R |
                  | Sun | 69600 |
                  | Earth | 6371 |
                  | Moon | 1737 |
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "  output: stdout differs from the expected value (-expected +actual):",
            "    --- expected",
            "    +++ actual",
            "    @@ *",
            "     | Planet | R |",
            "    -| Sun | 69600 |",
            "    +| Sun | 696000 |",
            "     | Earth | 6371 |",
        ]
    )


def test_output_mismatch_shows_the_types(pytester: pytest.Pytester) -> None:
    """A text output compared with a number shows the quotes, not two identical-looking values."""
    result = _run(
        pytester,
        "count",
        """
        name: count
        steps:
          - id: count
            step_type: command
            parameters: {shell: true, command: 'echo "count=3" >> "$MISSION_OUTPUT"'}
            expect: {output: {count: 4}}
        """,
    )
    result.stdout.fnmatch_lines(["  output: count is '3' (expected 4)"])


def test_each_failure_is_printed_once_at_default_verbosity(pytester: pytest.Pytester) -> None:
    """The step's own failure prints its output; the mission's roll-up names it without repeating it."""
    result = _run(
        pytester,
        "once",
        """
        name: once
        steps:
          - id: lint
            step_type: command
            parameters: {command: sh, args: [-c, "for i in 1 2 3; do echo finding-$((i*7)) >&2; done; exit 1"]}
        """,
        "--junitxml=junit.xml",
    )
    out = result.stdout.str()
    assert out.count("finding-14") == 1
    result.stdout.fnmatch_lines(
        [
            "_* once _*",
            "1 of 1 steps failed: lint",
            "",
            "step 'lint' (command) failed at once.mission.yaml:3",
            "  exit code 1 (expected 0)",
            "  [[]... the full text is in the failure of step 'lint'[]]",
        ]
    )
    assert (pytester.path / "junit.xml").read_text().count("finding-14") == 1


def test_every_independent_error_of_a_file_is_reported(pytester: pytest.Pytester) -> None:
    """One run lists each independent mistake of a file, with its line, not only the first."""
    result = _run(
        pytester,
        "many",
        """
        name: many mistakes
        security_mode: strict
        steps:
          - id: build
            step_type: command
            depend_on: [x]
            paramters: {command: make}
          - id: test
            step_type: comand
            parameters: {command: make}
          - id: lint
            step_type: command
            depends_on: [biuld]
            parameters: {command: make}
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "many.mission.yaml:2:1: unknown key 'security_mode'",
            "*",
            "many.mission.yaml:6:5: unknown key 'depend_on'",
            "*",
            "many.mission.yaml:7:5: unknown key 'paramters'",
            "*",
            "many.mission.yaml:9:16: step 'test': step type 'comand' is not supported",
            "*",
            "many.mission.yaml:11: step 'lint' depends on unknown step 'biuld'",
            "  HINT: did you mean 'build'?",
            "",
            "5 errors in many.mission.yaml",
        ]
    )
    result.stdout.fnmatch_lines(["FAILED many.mission.yaml::many - many.mission.yaml:2:1: unknown*"])


def test_errors_of_a_file_are_capped(pytester: pytest.Pytester) -> None:
    """A file with very many mistakes lists the first ten and says how many there are."""
    steps = "".join(f"  - id: s{i}\n    step_type: noop\n    colour: red\n" for i in range(12))
    result = _run(pytester, "capped", "name: capped\nsteps:\n" + steps)
    out = result.stdout.str()
    assert out.count("unknown key 'colour'") == 10
    result.stdout.fnmatch_lines(["12 errors in capped.mission.yaml; the first 10 are shown"])


@pytest.mark.parametrize(
    ("step", "message", "hint"),
    [
        ("retries: 3", "expected object, got number 3", "retries is a mapping: retries: {count: 3}*"),
        ("if: ${{ always() }}", "step 'a': if: is an expression already*", "write if: always()"),
        ("depends_on: b", "expected array, got string 'b'", "write a list: depends_on: [[]b[]]"),
        (
            "timeout_seconds: 10s",
            "expected number, got string '10s'",
            "write the number of seconds: timeout_seconds: 10",
        ),
        (
            "expect: {exit_code: '1'}",
            "'1' is not of type 'integer'",
            "drop the quotes to make it a number: exit_code: 1",
        ),
        (
            "parameters: {command: python, args: '-m pytest -q'}",
            "expected array, got string '-m pytest -q'*",
            "write a list: args: [[]-m, pytest, -q[]]",
        ),
    ],
)
def test_value_type_mistakes_get_a_hint(pytester: pytest.Pytester, step: str, message: str, hint: str) -> None:
    """A value of the wrong type says how it is written (habits from GitHub Actions and elsewhere)."""
    if "parameters" not in step:
        step += "\n    parameters: {command: make}"
    text = f"name: hints\nsteps:\n  - id: b\n    step_type: noop\n  - id: a\n    step_type: command\n    {step}\n"
    result = _run(pytester, "hints", text)
    result.stdout.fnmatch_lines([f"hints.mission.yaml:*: {message}", "*", f"  HINT: {hint}"])


def test_success_threshold_in_percent_gets_a_hint(pytester: pytest.Pytester) -> None:
    """success_threshold: 80 says that 80% is written 0.8."""
    result = _run(
        pytester, "rate", "name: rate\nconfig: {success_threshold: 80}\nsteps:\n  - id: a\n    step_type: noop\n"
    )
    result.stdout.fnmatch_lines(
        ["rate.mission.yaml:2:*: number 80 is out of range*", "*", "  HINT: a rate of 80% is written 0.8"]
    )


def test_rustchain_tool_name_gets_a_hint_and_is_an_alias_in_compat_mode(pytester: pytest.Pytester) -> None:
    """RustChain's tool_name: a hint to write tool in strict mode; read as tool under --mission-compat."""
    pytester.makeconftest(
        "def pytest_rustchain_tools():\n    return {'echo_tool': lambda params, ctx: {'said': 'hi'}}\n"
    )
    text = "name: tool\nsteps:\n  - id: t\n    step_type: tool\n    parameters: {tool_name: echo_tool}\n"
    result = _run(pytester, "tool", text)
    result.stdout.fnmatch_lines(
        ["*'tool' is a required property*", "*HINT: RustChain's tool_name is written tool here*"]
    )
    result = pytester.runpytest("--mission-sandbox=none", "--mission-compat=rustchain")
    result.assert_outcomes(passed=1)


def test_parameter_written_on_the_step_says_where_it_goes(pytester: pytest.Pytester) -> None:
    """`command:` written beside `step_type: command` says it belongs under parameters."""
    result = _run(pytester, "flat", "name: flat\nsteps:\n  - id: a\n    type: command\n    command: make\n")
    result.stdout.fnmatch_lines(
        [
            "flat.mission.yaml:5:5: unknown key 'command'",
            "*",
            "  HINT: 'command' is a parameter of command steps: write it under parameters: {command: ...}",
        ]
    )


def test_github_dollar_expression_in_a_parameter_is_refused(pytester: pytest.Pytester) -> None:
    """`${{ vars.x }}` in a rendered parameter is a collection error, not `$` plus the value."""
    text = (
        "name: gh\nvars: {python: '3.12'}\nsteps:\n  - id: a\n    step_type: command\n"
        "    parameters: {command: echo, args: ['py ${{ vars.python }}']}\n"
    )
    result = _run(pytester, "gh", text)
    result.stdout.fnmatch_lines(
        [
            "gh.mission.yaml:6:*: step 'a': '${{ vars.python }}' is GitHub Actions syntax*",
            "*",
            "  HINT: write {{ vars.python }}; for text meant for GitHub Actions*render: false*",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_github_dollar_expression_stays_text_without_rendering(pytester: pytest.Pytester) -> None:
    """With render: false a GitHub workflow's `${{ secrets.X }}` is written to the file as it is."""
    text = (
        "name: wf\nsteps:\n  - id: a\n    step_type: create_file\n    render: false\n"
        "    parameters: {path: ci.yml, content: 'token: ${{ secrets.TOKEN }}'}\n"
        "    expect: {file_contains: {path: ci.yml, text: '${{ secrets.TOKEN }}'}}\n"
    )
    result = _run(pytester, "wf", text)
    result.assert_outcomes(passed=1)
