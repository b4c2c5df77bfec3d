"""A mission's ``matrix:`` expanded into combinations, in a stable order, each with its item id.

The rules are GitHub Actions' (``jobs.<id>.strategy.matrix``): the cartesian product of the axes, the
first axis varying slowest; ``exclude`` entries remove the combinations they match (an entry may name
some of the axes); then each ``include`` entry is added to every combination whose axis values it
matches, and becomes a combination of its own when it matches none.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from itertools import product
from typing import Any

from pytest_rustchain.errors import MissionError
from pytest_rustchain.model import Combination

__all__ = ["MAX_COMBINATIONS", "MatrixError", "expand", "item_id", "select", "value_text"]

MAX_COMBINATIONS = 256
"""The most combinations one matrix may make (GitHub Actions' limit too)."""
_RESERVED = ("include", "exclude")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")

Where = tuple[str | int, ...]


class MatrixError(MissionError):
    """A matrix that cannot be expanded; ``where`` is the JSON path under the mission."""

    def __init__(self, what: str, where: Where, hint: str = "") -> None:
        self.what = what
        self.where = where
        self.hint = hint
        super().__init__(what + (f"\n  HINT: {hint}" if hint else ""))


def value_text(value: Any) -> str:
    """A matrix value as text: ``true``/``false`` for booleans (as YAML writes them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _id_part(value: Any) -> str:
    # Ids end up in node ids, -k expressions, file and directory names: one safe word per value.
    return _UNSAFE.sub("_", value_text(value))


def item_id(values: Mapping[str, Any], names: Sequence[str]) -> str:
    """``os=linux-python=3.12``: each name with its value, joined with ``-`` as pytest joins parameters."""
    return "-".join(f"{name}={_id_part(values[name])}" for name in names)


def _same(a: Any, b: Any) -> bool:
    return value_text(a) == value_text(b)


def _matches(combination: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
    return all(name in combination and _same(combination[name], value) for name, value in entry.items())


def _closest(word: str, choices: Sequence[str]) -> str:
    found = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean '{found[0]}'? " if found else ""


def _check_exclude(entries: Sequence[Mapping[str, Any]], axes: Mapping[str, Sequence[Any]]) -> None:
    for index, entry in enumerate(entries):
        for name, value in entry.items():
            where: Where = ("matrix", "exclude", index, name)
            if name not in axes:
                names = ", ".join(axes) or "none"
                raise MatrixError(
                    f"matrix exclude entry {index + 1} names '{name}', which is not an axis of the matrix",
                    where,
                    f"{_closest(name, list(axes))}exclude entries name axes of the matrix (axes: {names})",
                )
            if not any(_same(value, v) for v in axes[name]):
                shown = ", ".join(value_text(v) for v in axes[name])
                raise MatrixError(
                    f"matrix exclude entry {index + 1}: {name}: {value_text(value)} is not a value of the axis {name}",
                    where,
                    f"the values of {name} are: {shown}",
                )


def expand(raw: Mapping[str, Any], *, limit: int = MAX_COMBINATIONS) -> tuple[Combination, ...]:
    """The combinations of ``raw`` (a mission's ``matrix:`` mapping, its shape already checked by the
    schema): values are text, numbers or booleans; axis lists are non-empty and without repeats."""
    axes: dict[str, list[Any]] = {k: list(v) for k, v in raw.items() if k not in _RESERVED}
    excludes: list[Mapping[str, Any]] = list(raw.get("exclude") or ())
    includes: list[Mapping[str, Any]] = list(raw.get("include") or ())
    if not axes and not includes:
        raise MatrixError(
            "the matrix has no axes",
            ("matrix",),
            'give at least one axis, a name with a list of values: matrix: {python: ["3.11", "3.12"]}',
        )
    size = math.prod(len(v) for v in axes.values()) if axes else 0
    if size > limit * 64:
        # Not even built: exclude could not bring this many down to the limit in a readable file.
        raise _too_many(size, axes, limit)
    _check_exclude(excludes, axes)
    names = list(axes)
    combos: list[dict[str, Any]] = []
    if axes:
        combos = [dict(zip(names, values, strict=True)) for values in product(*axes.values())]
        combos = [c for c in combos if not any(_matches(c, e) for e in excludes)]
        if not combos:
            raise MatrixError(
                "the matrix exclude list removes every combination",
                ("matrix", "exclude"),
                "remove an exclude entry, or give an axis more values",
            )
    out: list[tuple[dict[str, Any], list[str]]] = [(c, names) for c in combos]
    originals = len(out)
    for index, entry in enumerate(includes):
        on_axes = {k: v for k, v in entry.items() if k in axes}
        extra = {k: v for k, v in entry.items() if k not in axes}
        matched = False
        for combo, _ in out[:originals]:
            if _matches(combo, on_axes):
                # GitHub's rule: an include never changes an axis value; what earlier includes added it may.
                combo.update(extra)
                matched = True
        if not matched:
            if any(_matches(c, entry) and len(c) == len(entry) for c, _ in out[originals:]):
                raise MatrixError(
                    f"matrix include entry {index + 1} repeats an earlier include entry",
                    ("matrix", "include", index),
                    "remove one of them",
                )
            out.append((dict(entry), list(entry)))
    if len(out) > limit:
        raise _too_many(len(out), axes, limit)
    result: list[Combination] = []
    seen: dict[str, int] = {}
    for position, (values, shown) in enumerate(out):
        ident = item_id(values, shown)
        if ident in seen:
            raise MatrixError(
                f"two matrix combinations have the same id '{ident}' (numbers {seen[ident] + 1} and {position + 1})",
                ("matrix",),
                "ids keep letters, digits, '.', '_', '+' and '-' of each value, other characters become '_':"
                " make the values differ in those",
            )
        seen[ident] = position
        result.append(Combination(id=ident, values=values))
    return tuple(result)


def _too_many(count: int, axes: Mapping[str, Sequence[Any]], limit: int) -> MatrixError:
    sizes = " x ".join(f"{len(v)} {k}" for k, v in axes.items())
    return MatrixError(
        f"the matrix makes {count:,} combinations{f' ({sizes})' if sizes else ''}, more than the limit of {limit}",
        ("matrix",),
        "drop values or axes, or remove combinations with exclude: (each combination is one test item)",
    )


def select(combinations: Sequence[Combination], wanted: Mapping[str, Any] | None, *, path: str) -> Combination | None:
    """The combination ``wanted`` names (its values, all or enough of them to pick one), for running a
    mission outside pytest's collection; None for a mission without a matrix."""
    if not combinations:
        if wanted:
            raise MatrixError(f"{path}: matrix={dict(wanted)!r} given, but the mission has no matrix", ("matrix",))
        return None
    ids = ", ".join(c.id for c in combinations)
    if not wanted:
        raise MatrixError(
            f"{path}: the mission has a matrix; say which combination to run",
            ("matrix",),
            f"pass matrix={dict(combinations[0].values)!r} (combinations: {ids})",
        )
    found = [c for c in combinations if _matches(c.values, wanted)]
    if len(found) != 1:
        what = "matches no combination" if not found else f"matches {len(found)} combinations"
        raise MatrixError(f"{path}: matrix={dict(wanted)!r} {what}", ("matrix",), f"combinations: {ids}")
    return found[0]
