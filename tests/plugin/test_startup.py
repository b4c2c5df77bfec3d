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


def test_noop_mission_loads_only_its_step_types(pytester: pytest.Pytester) -> None:
    """A mission of noop steps loads neither the model nor the HTTP step modules (nor httpx or Jinja)."""
    pytester.makefile(".mission.yaml", one="name: one\nsteps: [{id: a, step_type: noop}]\n")
    pytester.makeconftest(
        """
        import sys

        def pytest_sessionfinish(session):
            unwanted = ("pytest_rustchain.steps.llm", "pytest_rustchain.steps.agent", "pytest_rustchain.steps.http",
                        "pytest_rustchain.llm.transport", "pytest_rustchain.jinjaenv", "httpx", "jinja2.sandbox")
            loaded = [name for name in unwanted if name in sys.modules]
            print("LOADED", loaded)
        """
    )
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", "-p", "no:html", "--mission-sandbox=none")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*LOADED []"])


def test_builtin_step_table_matches_the_modules() -> None:
    """Every built-in step type is listed with the module that registers it, its aliases and its own expect keys."""
    import importlib

    from pytest_rustchain.steps import base

    for name, (module, aliases, *expect) in base.BUILTIN_MODULES.items():
        importlib.import_module(f"pytest_rustchain.steps.{module}")
        step_type = base.BUILTINS[name]
        assert step_type.run.__module__ == f"pytest_rustchain.steps.{module}", name
        assert step_type.aliases == aliases, name
        assert step_type.expect_keys == frozenset(*expect), name
    assert sorted(base.BUILTINS) == sorted(base.BUILTIN_MODULES)


def test_expect_key_owners_without_importing() -> None:
    """A session registry names the owners of a type's own expect key before their modules load."""
    from pytest_rustchain.steps import base

    fresh = base.Registry()
    for name, (module, aliases, *expect) in base.BUILTIN_MODULES.items():
        fresh.add_lazy(name, f"pytest_rustchain.steps.{module}", aliases, *expect)
    assert fresh.expect_key_owners("contains") == ["agent", "chain", "llm"]
    assert fresh.expect_key_owners("stdout_contains") == []
    assert fresh._types == {}


def test_runtime_key_matches() -> None:
    """The runner names the model runtime in a step's extras as the model layer looks it up."""
    from pytest_rustchain import runner
    from pytest_rustchain.llm import runtime

    assert runner._RUNTIME_KEY == runtime.RUNTIME_KEY
