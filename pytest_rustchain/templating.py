"""The sandboxed Jinja2 environment that renders mission strings, and the names it exposes."""

from __future__ import annotations

import contextvars
import functools
import json
import math
import re
import shlex
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pytest_rustchain.errors import MissionError

if TYPE_CHECKING:
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

# Jinja is imported by ``jinjaenv`` when a string needs more than plain ``{{ a.b }}`` lookups.

__all__ = [
    "MAX_LOOP_ITERATIONS",
    "MAX_RENDERED_CHARS",
    "NumericText",
    "TemplateError",
    "Unquoted",
    "check_syntax",
    "has_template",
    "numeric_text",
    "render_native",
    "render_value",
    "values_equal",
]

MAX_RENDERED_CHARS = 10_000_000
"""The most characters one rendered string may hold (also what ``'x' * n`` may build)."""
MAX_LOOP_ITERATIONS = 1_000_000
"""The most ``range()`` iterations one rendering may run, nested loops counted together."""


class TemplateError(MissionError):
    """A template could not be rendered (undefined name, syntax error, sandbox violation)."""


class Unquoted(str):
    """A value the ``unquoted`` filter marked as shell syntax, inserted without quoting."""

    __slots__ = ()


class StepView(dict[str, Any]):
    """``steps.<id>``: a step's outputs, ``outputs``, ``status``, ``outcome`` and ``conclusion``.

    ``steps.x.stdout`` and ``steps.x.outputs.stdout`` both work; an attribute it does not have is an
    error that names the step and the attributes it has.
    """

    __slots__ = ("step_id",)

    def __init__(self, step_id: str, values: Mapping[str, Any] | None = None) -> None:
        super().__init__(values or {})
        self.step_id = step_id


def _split_hint(message: str) -> tuple[str, str]:
    """(first line, the ``HINT:`` lines after it with their newline) of an undefined-name message."""
    first, newline, rest = message.partition("\n")
    return first, newline + rest


def _number(value: Any) -> int | float | None:
    """``value`` as a number when it is one or is text that reads as one (``"3"``, ``" 2.5"``), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip()
        # A number starts with a digit, a sign or a point ("inf" and "nan" are no numbers here): most
        # text (command output, names) is ruled out without raising and catching two exceptions.
        if not text or not (text[0].isdecimal() or text[0] in "+-."):
            return None
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def values_equal(seen: Any, want: Any) -> bool:
    """The one comparison rule of ``expect``: equal values are equal; a number and text that reads as
    a number compare as numbers (``"3"`` equals ``3`` and ``3.0``); text expected against another
    value compares with that value's JSON or text form (``"true"`` equals ``True``)."""
    if seen == want:
        return True
    a, b = _number(seen), _number(want)
    if a is not None and b is not None and (isinstance(seen, (int, float)) or isinstance(want, (int, float))):
        return a == b
    if isinstance(want, str) and not isinstance(seen, str):
        return json.dumps(seen) == want or str(seen) == want
    if isinstance(seen, str) and not isinstance(want, str) and isinstance(want, bool):
        return json.dumps(want) == seen
    return False


class NumericText(str):
    """Text that reads as a number (a ``$MISSION_OUTPUT`` value ``3``): in ``if:`` and templates it
    compares with numbers as the number, and with text as the text."""

    __slots__ = ()

    def _num(self, other: Any) -> tuple[int | float, int | float] | None:
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            mine = _number(str(self))
            if mine is not None:
                return mine, other
        return None

    def __eq__(self, other: object) -> bool:
        pair = self._num(other)
        return pair[0] == pair[1] if pair is not None else str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = str.__hash__

    def __lt__(self, other: Any) -> bool:
        pair = self._num(other)
        return pair[0] < pair[1] if pair is not None else str.__lt__(self, other)

    def __le__(self, other: Any) -> bool:
        pair = self._num(other)
        return pair[0] <= pair[1] if pair is not None else str.__le__(self, other)

    def __gt__(self, other: Any) -> bool:
        pair = self._num(other)
        return pair[0] > pair[1] if pair is not None else str.__gt__(self, other)

    def __ge__(self, other: Any) -> bool:
        pair = self._num(other)
        return pair[0] >= pair[1] if pair is not None else str.__ge__(self, other)


def numeric_text(value: Any) -> Any:
    """``value`` as ``NumericText`` when it is text that reads as a number; otherwise unchanged."""
    if isinstance(value, str) and not isinstance(value, NumericText) and _number(value) is not None:
        return NumericText(value)
    return value


def _is_undefined(value: Any) -> bool:
    """True for Jinja's undefined values (which exist only once Jinja is imported)."""
    jinja = sys.modules.get("jinja2")
    return jinja is not None and isinstance(value, jinja.Undefined)


def _shell_finalize(value: Any) -> Any:
    # Every inserted value becomes one shell word, so a step output such as
    # "x; rm -rf ~" is printed by `echo`, never executed.
    if isinstance(value, Unquoted):
        return str(value)
    if _is_undefined(value):
        return value
    return shlex.quote(str(value))


def _unquoted(value: Any) -> Unquoted:
    return Unquoted(str(value))


class _Limit(Exception):
    """A rendering ran into one of the limits."""


_ITERATIONS: contextvars.ContextVar[list[int]] = contextvars.ContextVar("rustchain_template_iterations")


def _counted_range(*args: int) -> Iterator[int]:
    numbers = range(*args)
    if len(numbers) > MAX_LOOP_ITERATIONS:
        raise _Limit(
            f"range() of {len(numbers):,} numbers is more than the limit of {MAX_LOOP_ITERATIONS:,} loop iterations"
        )
    return _count(numbers)


def _count(numbers: range) -> Iterator[int]:
    counter = _ITERATIONS.get(None)
    for n in numbers:
        if counter is not None:
            counter[0] += 1
            if counter[0] > MAX_LOOP_ITERATIONS:
                raise _Limit(f"more than the limit of {MAX_LOOP_ITERATIONS:,} loop iterations in one template")
        yield n


def _env(strict: bool, shell: bool) -> SandboxedEnvironment:
    """The sandboxed environment for strict (or RustChain-compatible) rendering, shell-quoting or not."""
    from pytest_rustchain.jinjaenv import ENVS

    return ENVS[(strict, shell)]


def has_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def check_syntax(text: str) -> str | None:
    """Return a syntax error message (with the template's own line) or None."""
    if "{%" not in text and "{#" not in text and "{{" not in _SIMPLE.sub("", text):
        return None
    import jinja2

    try:
        _env(True, False).parse(text)
    except jinja2.TemplateSyntaxError as exc:
        return f"template syntax error on template line {exc.lineno}: {exc.message}"
    return None


@functools.lru_cache(maxsize=4096)
def _compiled(text: str, strict: bool, shell: bool) -> jinja2.Template:
    # Missions repeat the same strings across steps and retries; compiling is most of the cost.
    return _env(strict, shell).from_string(text)


_SIMPLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}")
_DICT_ATTRS = frozenset(dir(dict))


def _render_simple(text: str, context: Mapping[str, Any], shell: bool) -> str | None:
    """Render ``{{ a.b.c }}`` lookups in mappings without Jinja; None when anything else is there.

    Most mission strings only look names up, and compiling a Jinja template per distinct string
    costs far more than the lookup; anything beyond plain lookups goes to Jinja.
    """
    if "{%" in text or "{#" in text:
        return None
    out: list[str] = []
    pos = 0
    for match in _SIMPLE.finditer(text):
        between = text[pos : match.start()]
        if "{{" in between:
            return None
        value: Any = context
        for name in match.group(1).split("."):
            if name in _DICT_ATTRS or not isinstance(value, Mapping) or name not in value:
                return None
            value = value[name]
        if isinstance(value, (Mapping, list)) or value is None or _is_undefined(value):
            return None
        rendered = str(value)
        out.append(between)
        out.append(shlex.quote(rendered) if shell and not isinstance(value, Unquoted) else rendered)
        pos = match.end()
    rest = text[pos:]
    if "{{" in rest:
        return None
    out.append(rest)
    return "".join(out)


def render_string(text: str, context: Mapping[str, Any], *, strict: bool = True, shell: bool = False) -> str:
    if not has_template(text):
        return text
    fast = _render_simple(text, context, shell)
    if fast is not None:
        return fast
    # No name in this frame holds the context: under ``-l`` pytest would print it, secrets included.
    __tracebackhide__ = True
    import jinja2

    token = _ITERATIONS.set([0])
    try:
        return _bounded(_compiled(text, strict, shell).generate(context))
    except jinja2.UndefinedError as exc:
        first, hint = _split_hint(exc.message or "")
        if hint:
            raise TemplateError(first + hint) from None
        names = ", ".join(sorted(k for k in context if not k.startswith("_")))
        raise TemplateError(f"{first}; names that exist: {names}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error: {exc.message}") from None
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(f"template refused by the sandbox: {exc}") from None
    except _Limit as exc:
        raise TemplateError(f"template stopped: {exc}") from None
    except RecursionError:
        raise TemplateError("template failed: recursion too deep (a macro that calls itself?)") from None
    except MemoryError:
        raise TemplateError("template failed: out of memory") from None
    except Exception as exc:
        raise TemplateError(f"template failed: {type(exc).__name__}: {exc}") from None
    finally:
        _ITERATIONS.reset(token)


def _bounded(chunks: Iterator[str]) -> str:
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_RENDERED_CHARS:
            raise _Limit(f"the rendered text is longer than the limit of {MAX_RENDERED_CHARS:,} characters")
        out.append(chunk)
    return "".join(out)


_SINGLE = re.compile(r"\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}", re.DOTALL)


def _native(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _native(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_native(v) for v in value]
    return str(value) if isinstance(value, str) else value


def render_native(text: str, context: Mapping[str, Any], *, strict: bool = True) -> Any:
    """A string that is exactly one ``{{ expression }}`` gives the expression's value (a list, a
    mapping, a number, a boolean); anything else renders to text as ``render_string`` does."""
    match = _SINGLE.fullmatch(text)
    if match is not None:
        try:
            value = evaluate(match.group("expr"), context)
        except TemplateError:
            value = None  # render_string below gives the error its usual wording (or compat's text)
        else:
            if isinstance(value, (bool, int, float, Mapping, list, tuple)) and not _is_undefined(value):
                return _native(value)
    return render_string(text, context, strict=strict)


def render_value(
    value: Any,
    context: Mapping[str, Any],
    *,
    strict: bool = True,
    shell_keys: frozenset[str] = frozenset(),
    native: bool = False,
) -> Any:
    """Render every string inside ``value`` (mappings and lists are walked), once.

    ``shell_keys`` names the top-level keys whose strings are shell command lines: values inserted
    there are shell-quoted. With ``native``, a string that is exactly one template expression keeps
    the expression's value (``data: "{{ steps.p.data }}"`` is the list, not its text).
    """
    if isinstance(value, str):
        if native:
            return render_native(value, context, strict=strict)
        return render_string(value, context, strict=strict)
    if isinstance(value, Mapping):
        return {
            k: (
                render_string(v, context, strict=strict, shell=True)  # noqa: S604 - quoting, nothing is run
                if k in shell_keys and isinstance(v, str)
                else render_value(v, context, strict=strict, native=native)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [render_value(v, context, strict=strict, native=native) for v in value]
    return value


def check_expression(text: str) -> str | None:
    """Return a syntax error message for an ``if:`` expression, or None."""
    import jinja2

    try:
        _env(True, False).compile_expression(text)
    except jinja2.TemplateSyntaxError as exc:
        return f"expression syntax error: {exc.message}"
    return None


def evaluate(text: str, context: Mapping[str, Any]) -> Any:
    """Evaluate an expression to a Python value (``vars.deploy`` is ``False``, not ``"False"``)."""
    __tracebackhide__ = True
    import jinja2

    token = _ITERATIONS.set([0])
    try:
        return _env(True, False).compile_expression(text, undefined_to_none=False)(**context)
    except jinja2.UndefinedError as exc:
        first, hint = _split_hint(exc.message or "")
        raise TemplateError(f"{first} in expression {text!r}{hint}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"expression syntax error: {exc.message}") from None
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(f"expression refused by the sandbox: {exc}") from None
    except _Limit as exc:
        raise TemplateError(f"expression stopped: {exc}") from None
    except RecursionError:
        raise TemplateError("expression failed: recursion too deep") from None
    except Exception as exc:
        raise TemplateError(f"expression failed: {type(exc).__name__}: {exc}") from None
    finally:
        _ITERATIONS.reset(token)
