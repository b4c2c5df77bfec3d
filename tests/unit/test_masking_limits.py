"""Masking of keys and cheap encodings, workflow-command neutralisation, and template limits."""

from __future__ import annotations

import pytest

from pytest_rustchain import templating
from pytest_rustchain.masking import Masker, neutralise_workflow_commands, one_line

SECRET = "ghp_S3cr3tT0kenValue/42+xyz"


def test_output_names_are_masked_like_values() -> None:
    """A secret used as a mapping key (an output name) is masked, at any depth."""
    masker = Masker(secrets=(SECRET,))
    masked = masker.value({"outputs": {SECRET: "1", "ok": [{f"{SECRET}=x": SECRET}]}})
    assert SECRET not in repr(masked)
    assert masked["outputs"] == {"***": "1", "ok": [{"***=x": "***"}]}


@pytest.mark.parametrize(
    "form",
    [
        SECRET[::-1],
        SECRET.encode().hex(),
        SECRET.encode().hex().upper(),
        "ghp_S3cr3tT0kenValue%2f42%2bxyz",
    ],
    ids=["reversed", "hex", "HEX", "lowercase-percent"],
)
def test_cheap_encodings_are_masked(form: str) -> None:
    """Reversed, hex and lowercase percent-encoded forms of a secret are masked."""
    assert Masker(secrets=(SECRET,)).text(f"out: {form} end") == "out: *** end"


@pytest.mark.parametrize(
    "line",
    ["##[add-mask]ghp_x", "build ok ##[stop-commands]tok", "x #\u200b#[error]y", "::error::x"],
)
def test_legacy_workflow_commands_anywhere_in_a_line(line: str) -> None:
    """``##[`` anywhere in a line and ``::`` at its start are neutralised, zero-width tricks included."""
    out = neutralise_workflow_commands(line)
    assert "##[" not in out.replace("\u200b", "")
    assert not out.startswith("::")


def test_one_line_for_mission_strings() -> None:
    """A name with a newline stays on one line: the workflow command after it cannot start a line."""
    shown = one_line("harmless\n::error title=x::forged ##[add-mask]y")
    assert "\n" not in shown
    assert "\\n" in shown and "##\\[" in shown


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}done", "loop iterations"),
        ("{% for i in range(10**9) %}{% endfor %}", "loop iterations"),
        ("{{ ('x' * 300000000) | length }}", "characters"),
        ("{% for i in range(2000) %}{{ 'x' * 10000 }}{% endfor %}", "characters"),
        ("{{ 2 ** 100000 }}", "too large"),
    ],
)
def test_template_limits(text: str, limit: str) -> None:
    """Nested loops, repetition and huge numbers stop the rendering with the limit named."""
    with pytest.raises(templating.TemplateError, match=limit):
        templating.render_string(text, {})


def test_template_recursion_is_a_template_error() -> None:
    """A macro that calls itself is a clean template failure, not a crash with the context in locals."""
    with pytest.raises(templating.TemplateError, match="recursion"):
        templating.render_string("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(env.T) }}", {"env": {"T": SECRET}})


def test_ordinary_templates_still_render() -> None:
    """Loops and repetition within the limits render as before."""
    assert templating.render_string("{% for i in range(3) %}{{ i }}{% endfor %}{{ '-' * 3 }}", {}) == "012---"
