"""Black-box tests: what the plugin costs a pytest run that holds no mission, and when it checks the sandbox."""

from __future__ import annotations

import pytest

from pytest_rustchain import plugin, sandbox

# Modules a run without missions must not load: the loader, runner, safety analyser, model and
# reporting aggregation, the sandbox check, templating and the model transport.
HEAVY = (
    "pytest_rustchain.loader",
    "pytest_rustchain.runner",
    "pytest_rustchain.guard",
    "pytest_rustchain.safety",
    "pytest_rustchain.steps",
    "pytest_rustchain.model",
    "pytest_rustchain.summary",
    "pytest_rustchain.graph",
    "pytest_rustchain.sandbox",
    "pytest_rustchain.templating",
    "pytest_rustchain.llm.config",
    "pytest_rustchain.llm.transport",
)

NO_HEAVY_MODULES = f"""
import sys

def test_plugin_loaded_little():
    assert "pytest_rustchain.plugin" in sys.modules
    assert [name for name in {HEAVY!r} if name in sys.modules] == []
"""


def test_run_without_missions_loads_no_mission_machinery(pytester: pytest.Pytester) -> None:
    """A pytest run of plain tests, with the plugin installed, loads none of the mission machinery and
    does not check the sandbox (which starts bwrap), also with the header shown."""
    pytester.makepyfile(test_plain=NO_HEAVY_MODULES)
    result = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert "rustchain: safety policy standard" in out
    assert "rustchain: sandbox" not in out


def test_sandbox_line_follows_the_collection_of_missions(pytester: pytest.Pytester) -> None:
    """Under the default sandbox mode the header's sandbox line comes once missions are collected."""
    pytester.makefile(".mission.yaml", one="name: one\nsteps: [{id: a, step_type: noop}]\n")
    result = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["rustchain: safety policy standard*", "*collected 1 item", "rustchain: *sandbox*"])


def test_sandbox_asked_for_by_name_is_checked_at_the_start(pytester: pytest.Pytester) -> None:
    """A sandbox mode named on the command line is settled before collection: the header says it."""
    pytester.makepyfile(test_plain="def test_a():\n    pass\n")
    result = pytester.runpytest_subprocess("-v", "-p", "no:cacheprovider", "--mission-sandbox=none")
    result.stdout.fnmatch_lines(["rustchain: sandbox none (set by --mission-sandbox=none)", "*collected 1 item"])


def test_sandbox_modes_match() -> None:
    """The option's choices are the sandbox module's modes (the plugin names them without importing it)."""
    assert plugin.SANDBOX_MODES == sandbox.MODES
