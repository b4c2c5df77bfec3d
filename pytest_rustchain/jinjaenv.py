"""The sandboxed Jinja2 environments of :mod:`.templating`, imported when a string needs Jinja."""

from __future__ import annotations

from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from pytest_rustchain.templating import (
    MAX_RENDERED_CHARS,
    StepView,
    _counted_range,
    _Limit,
    _shell_finalize,
    _unquoted,
)

__all__ = ["ENVS"]


class _StrictUndefined(jinja2.StrictUndefined):
    """Undefined names are errors; a missing step attribute says which step and what it has."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        owner, name = self._undefined_obj, self._undefined_name
        if not isinstance(owner, StepView) or not isinstance(name, str):
            return str(super()._undefined_message)
        import difflib  # only to explain a mistake: kept off the start-up path

        known = sorted(k for k in owner if isinstance(k, str))
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return (
            f"step '{owner.step_id}' has no attribute '{name}'\n"
            f"HINT: {hint}steps.{owner.step_id} has: {', '.join(known) or 'nothing yet'}"
        )


class _KeepUndefined(jinja2.ChainableUndefined):
    """RustChain compatibility: an undefined name stays as the text that named it."""

    def __str__(self) -> str:
        return "{{ " + (self._undefined_name or "") + " }}"


class _Sandbox(SandboxedEnvironment):
    """The Jinja2 sandbox with bounds: string and list repetition, powers, loop iterations."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, (str, list, tuple))
                    and isinstance(times, int)
                    and len(seq) * times > MAX_RENDERED_CHARS
                ):
                    raise _Limit(
                        f"repeating a value {times:,} times is more than the limit of {MAX_RENDERED_CHARS:,} characters"
                    )
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 4096:
            raise _Limit(f"{left} ** {right} is too large a number")
        return super().call_binop(context, operator, left, right)


def _make(undefined: type[jinja2.Undefined], *, shell: bool) -> SandboxedEnvironment:
    env = _Sandbox(
        undefined=undefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_shell_finalize if shell else None,
    )
    env.filters["unquoted"] = _unquoted
    env.globals["range"] = _counted_range
    return env


ENVS: dict[tuple[bool, bool], SandboxedEnvironment] = {
    (strict, shell): _make(_StrictUndefined if strict else _KeepUndefined, shell=shell)
    for strict in (True, False)
    for shell in (True, False)
}
