"""Step types and tools added by a project's conftest.py through the plugin's hooks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

WriteMission = Callable[[str, str], None]

CONFTEST = """
from pytest_rustchain.steps.base import StepError, StepType


def _word_count(params, ctx):
    text = (ctx.workspace / params["path"]).read_text()
    return {"words": len(text.split())}


def _shout(params, ctx):
    if not params.get("text"):
        raise ValueError("nothing to shout")
    return {"text": params["text"].upper()}


def pytest_rustchain_step_types():
    schema = {"type": "object", "additionalProperties": False, "required": ["path"],
              "properties": {"path": {"type": "string"}}}
    return [StepType(name="word_count", schema=schema, run=_word_count, family="text")]


def pytest_rustchain_tools():
    return {"shout": _shout}
"""


def test_conftest_step_type_and_tool(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A step type and a tool from conftest.py run like built-ins, with outputs and expect."""
    pytester.makeconftest(CONFTEST)
    write_mission(
        "ext",
        """
        name: ext
        steps:
          - id: text
            step_type: create_file
            parameters: {path: a.txt, content: "one two three"}
          - id: count
            step_type: word_count
            parameters: {path: a.txt}
            expect: {output: {words: 3}}
          - id: loud
            step_type: tool
            parameters: {tool: shout, parameters: {text: "{{ steps.count.words }} words"}}
            expect: {output: {text: 3 WORDS}}
        """,
    )
    write_mission("raises", "name: r\nsteps: [{id: broken, step_type: tool, parameters: {tool: shout}}]\n")
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(
        ["*SUBPASSED[[]count[]]*", "*SUBPASSED[[]loud[]]*", "*ext PASSED*", "*raises SUBFAILED[[]broken[]]*"]
    )
    assert "tool 'shout' raised ValueError: nothing to shout" in result.stdout.str()


def test_unknown_tool_and_parameters_are_collection_errors(
    pytester: pytest.Pytester, write_mission: WriteMission
) -> None:
    """An unknown tool name and a parameter the step type does not have fail at collection, with hints."""
    pytester.makeconftest(CONFTEST)
    write_mission("t", "name: t\nsteps: [{id: a, step_type: tool, parameters: {tool: shuot}}]\n")
    write_mission("p", "name: p\nsteps: [{id: a, step_type: word_count, parameters: {pth: x}}]\n")
    result = pytester.runpytest("-v")
    out = result.stdout.str()
    result.assert_outcomes(failed=2)
    assert "unknown tool 'shuot'" in out and "did you mean 'shout'?" in out
    assert "unknown key 'pth'" in out and "did you mean 'path'?" in out


def test_unknown_tool_hint_says_how_to_add_one(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """An unknown tool lists the registered ones (RustChain's built-ins among them) and the hook to add one."""
    write_mission("t", "name: t\nsteps: [{id: a, step_type: tool, parameters: {tool: frobnicate}}]\n")
    result = pytester.runpytest("-v")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "registered tools: create_file, csv_loader, file_read, http" in out
    assert "add one with the pytest_rustchain_tools hook in conftest.py" in out


def test_rustchain_internal_tool_says_why(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """RustChain's wait_for_parallel is refused at collection with the reason it has no meaning here."""
    write_mission("t", "name: t\nsteps: [{id: a, step_type: tool, parameters: {tool: wait_for_parallel}}]\n")
    result = pytester.runpytest("-v")
    result.assert_outcomes(failed=1)
    assert "RustChain-internal tool and is not available" in result.stdout.str()


def test_a_taken_name_is_a_usage_error(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A plugin step type named like a built-in stops the run with a clear message."""
    pytester.makeconftest(
        "from pytest_rustchain.steps.base import StepType\n"
        "def pytest_rustchain_step_types():\n"
        "    return [StepType(name='command', schema={'type': 'object'}, run=lambda p, c: {})]\n"
    )
    write_mission("t", "name: t\nsteps: [{id: a, step_type: noop}]\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "step type 'command' is already registered" in result.stderr.str()
