"""Unit tests of the sandboxed template environment."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_rustchain import templating
from pytest_rustchain.templating import (
    NumericText,
    TemplateError,
    evaluate,
    numeric_text,
    render_string,
    render_value,
    values_equal,
)

CONTEXT = {"vars": {"name": "demo", "deploy": False, "n": 3}, "steps": {"probe": {"stdout": "x; rm -rf ~"}}}

DUNDERS = ["__class__", "__globals__", "__subclasses__", "__init__", "__mro__", "__builtins__", "__code__", "__dict__"]


@settings(max_examples=200, deadline=None)
@given(
    base=st.sampled_from(["vars", "vars.name", "steps", "''", "()", "[]", "lipsum", "cycler", "range", "namespace"]),
    chain=st.lists(st.sampled_from([*DUNDERS, "mro()", "__subclasses__()", "__getitem__(0)"]), min_size=1, max_size=4),
    style=st.sampled_from(["attr", "item"]),
)
def test_sandbox_refuses_dunder_access(base: str, chain: list[str], style: str) -> None:
    """No attribute path through __class__, __globals__ and the like renders to Python internals."""
    expr = base
    for part in chain:
        if style == "item" and not part.endswith(")"):
            expr += f"[{part!r}]"
        else:
            expr += "." + part
    try:
        out = render_string("{{ " + expr + " }}", CONTEXT)
    except TemplateError:
        return
    assert "<class" not in out and "function" not in out and "module" not in out


@pytest.mark.parametrize(
    "text",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.system('id') }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ vars.__class__.__init__.__globals__ }}",
    ],
)
def test_known_escapes_are_refused(text: str) -> None:
    """Classic Jinja sandbox escapes fail with a clean TemplateError."""
    with pytest.raises(TemplateError):
        render_string(text, CONTEXT)


def test_shell_lines_quote_each_inserted_value() -> None:
    """In shell command lines an inserted value is one word; `unquoted` opts out."""
    line = render_value({"command": "echo {{ steps.probe.stdout }}"}, CONTEXT, shell_keys=frozenset({"command"}))[
        "command"
    ]
    assert line == "echo 'x; rm -rf ~'"
    raw = render_value(
        {"command": "echo {{ steps.probe.stdout | unquoted }}"}, CONTEXT, shell_keys=frozenset({"command"})
    )["command"]
    assert raw == "echo x; rm -rf ~"


def test_expressions_are_evaluated_not_rendered() -> None:
    """`vars.deploy` is False (not the truthy string "False"); arithmetic works."""
    assert evaluate("vars.deploy", CONTEXT) is False
    assert evaluate("vars.n > 2 and not vars.deploy", CONTEXT) is True


def test_undefined_name_lists_what_exists() -> None:
    """An undefined name names the names that exist."""
    with pytest.raises(TemplateError, match=r"'nope' is undefined; names that exist: steps, vars"):
        render_string("{{ nope }}", CONTEXT)


def test_compat_mode_keeps_unknown_names() -> None:
    """In RustChain compatibility mode an undefined name stays as written."""
    assert render_string("v={{ rustchain_version }}", CONTEXT, strict=False) == "v={{ rustchain_version }}"


def test_syntax_errors_are_found_without_rendering() -> None:
    """check_syntax reports an unclosed tag; valid text passes."""
    assert templating.check_syntax("{{ vars.x ") is not None
    assert templating.check_syntax("{{ vars.x }}") is None


_names = st.sampled_from(["vars", "steps", "mission", "env", "nope", "items", "probe", "name", "n", "deploy"])


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(
        st.one_of(
            st.text(alphabet="ab {}-_.%#", max_size=6),
            st.lists(_names, min_size=1, max_size=3).map(lambda p: "{{ " + ".".join(p) + " }}"),
        ),
        max_size=5,
    ),
    shell=st.booleans(),
)
def test_fast_lookup_path_matches_jinja(pieces: list[str], shell: bool) -> None:
    """Plain `{{ a.b }}` lookups render exactly as Jinja would, errors included."""
    text = "".join(pieces)
    context = {**CONTEXT, "mission": {"name": "m"}, "env": {"n": "1"}}

    def via(render: object) -> tuple[str, str]:
        try:
            return ("ok", render())  # type: ignore[operator]
        except TemplateError as exc:
            return ("error", str(exc))
        except Exception as exc:
            return ("other", type(exc).__name__)

    env = templating._env(True, shell)
    slow = via(lambda: env.from_string(text).render(context))
    fast = via(lambda: render_string(text, context, shell=shell))
    if slow[0] == "ok":
        assert fast == slow
    else:
        assert fast[0] != "ok" or slow[0] == "other"


def test_missing_step_attribute_names_the_step_with_a_hint() -> None:
    """`steps.x.stdoutt` says which step lacks it, suggests `stdout` and lists what the step has."""
    context = {"steps": {"build": templating.StepView("build", {"stdout": "ok", "outcome": "success"})}}
    with pytest.raises(TemplateError) as caught:
        render_string("{{ steps.build.stdoutt }}", context)
    assert str(caught.value).splitlines() == [
        "step 'build' has no attribute 'stdoutt'",
        "HINT: did you mean 'stdout'? steps.build has: outcome, stdout",
    ]
    with pytest.raises(TemplateError) as caught:
        evaluate("steps.build.zzz == 1", context)
    first, hint = str(caught.value).splitlines()
    assert first == "step 'build' has no attribute 'zzz' in expression 'steps.build.zzz == 1'"
    assert hint == "HINT: steps.build has: outcome, stdout"


@pytest.mark.parametrize(
    ("text", "number"),
    [("3", True), (" 2.5\n", True), ("-1", True), ("+1", True), (".5", True), ("1e3", True), ("1_000", True),
     ("\u0663", True), ("", False), ("  ", False), ("inf", False), ("-inf", False), ("nan", False),
     ("1e400", False), ("0x10", False), ("_1", False), ("\u00b2", False), ("true", False), ("v1", False),
     ("-", False), (".", False)],
)  # fmt: skip
def test_text_reads_as_a_number_exactly_when_python_reads_a_finite_number(text: str, number: bool) -> None:
    """A step output compares with numbers (`if:`, `expect`) when it is text Python reads as a finite
    number (any script's digits, a sign, a point, an exponent); inf, nan and other text stay text."""
    assert isinstance(numeric_text(text), NumericText) is number
    assert values_equal(text, 3) is (text.strip() in ("3", "\u0663"))
