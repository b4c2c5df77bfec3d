"""Mission files to ``Mission`` objects: hardened YAML, JSON Schema, cross-field checks."""

from __future__ import annotations

import functools
import importlib
import json
import posixpath
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import fastjsonschema

from pytest_rustchain import plan, steps, templating
from pytest_rustchain.errors import MissionFormatError, MissionFormatErrors, shorten_values
from pytest_rustchain.model import (
    Combination,
    FixtureUse,
    Limits,
    LoadOptions,
    Mission,
    MissionConfig,
    MissionJudge,
    Retries,
    Step,
    WorkspaceSpec,
    mission_stem,
)
from pytest_rustchain.steps import tool as tool_steps
from pytest_rustchain.yamlload import JsonPath, LoadedYaml, load_yaml_file, read_mission_bytes

if TYPE_CHECKING:
    import jsonschema
    from jsonschema.exceptions import ValidationError

# jsonschema (for the explanation of an invalid file) and the shell analyser (for env names) load
# only when needed: valid files are checked by the compiled validator, and most steps set no env.

__all__ = [
    "Limits",
    "LoadOptions",
    "forget_step_schemas",
    "load_mission",
    "load_self_contained",
    "mission_schema",
    "mission_stem",
    "setup_key",
    "sniff_mission",
]

_T = TypeVar("_T")

#: RustChain's parameter spellings, accepted in compatibility mode.
COMPAT_PARAM_ALIASES = {
    "working_directory": "working_dir",
    "file_path": "path",
    "cwd": "working_dir",
    "tool_name": "tool",
}


@functools.cache
def mission_schema() -> dict[str, Any]:
    text = resources.files("pytest_rustchain").joinpath("schema/mission.schema.json").read_text("utf-8")
    schema: dict[str, Any] = dict(json.loads(text))
    return schema


def _subschema(name: str) -> dict[str, Any]:
    """The shipped schema narrowed to the top level (steps checked one by one) or to one step."""
    schema = mission_schema()
    if name == "step":
        return {"$defs": schema["$defs"], "allOf": [{"$ref": "#/$defs/step"}]}
    top: dict[str, Any] = json.loads(json.dumps(schema))
    top.pop("anyOf", None)  # "no steps" is explained after extends and includes are applied
    top["properties"]["steps"] = {"type": "array", "maxItems": 10000, "items": {"type": "object"}}
    return top


@functools.cache
def _top_validator() -> jsonschema.Draft202012Validator:
    import jsonschema

    return jsonschema.Draft202012Validator(_subschema("top"))


@functools.cache
def _step_validator() -> jsonschema.Draft202012Validator:
    import jsonschema

    return jsonschema.Draft202012Validator(_subschema("step"))


@functools.cache
def _param_validator(step_type: str) -> jsonschema.Draft202012Validator:
    import jsonschema

    schema = steps.registry()[step_type].schema
    return jsonschema.Draft202012Validator(schema)


#: Keywords whose meaning differs from draft 7; a schema using them skips the compiled fast path.
_NEWER_KEYWORDS = frozenset(
    {
        "prefixItems",
        "dependentRequired",
        "dependentSchemas",
        "unevaluatedProperties",
        "unevaluatedItems",
        "$dynamicRef",
        "$dynamicAnchor",
        "$anchor",
        "$recursiveRef",
    }
)


def _uses_newer_keywords(schema: Any) -> bool:
    if isinstance(schema, dict):
        return any(k in _NEWER_KEYWORDS or _uses_newer_keywords(v) for k, v in schema.items())
    if isinstance(schema, list):
        return any(_uses_newer_keywords(v) for v in schema)
    return False


@functools.cache
def _fast_check(key: str) -> Any:
    """A compiled validator that only says valid or not; jsonschema explains the invalid files.

    Valid files are the common case, and compiled validation is about ten times faster than
    jsonschema's, which matters when a repository holds a thousand missions. The checks of the
    top level and of a step ship compiled (``schemagen``) and are used while the schema is the one
    they were made from.
    """
    from pytest_rustchain import schemagen

    if key in schemagen.CHECKS:
        shipped = importlib.import_module(f"pytest_rustchain._generated.{schemagen.CHECKS[key]}")
        if _schema_sha256() == shipped.SCHEMA_SHA256:
            return shipped.validate
    schema = _subschema(key) if key in ("top", "step") else steps.registry()[key].schema
    if _uses_newer_keywords(schema):
        return None
    return schemagen.compile_check(dict(schema))


@functools.cache
def _schema_sha256() -> str:
    from pytest_rustchain import schemagen

    return schemagen.schema_sha256()


def forget_step_schemas() -> None:
    """Step types changed (a plugin added or removed some): compiled parameter checks start over."""
    _fast_check.cache_clear()
    _param_validator.cache_clear()


def _is_valid_fast(key: str, data: Any) -> bool:
    check = _fast_check(key)
    if check is None:
        return False
    try:
        check(data)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def _fmt_path(path: Iterable[str | int]) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


class _Ctx:
    """Where errors point: the file, its node positions and its YAML 1.1 surprises."""

    def __init__(self, display: str, loaded: LoadedYaml, loaded_path: Path) -> None:
        self.display = display
        self.loaded = loaded
        self.loaded_path = loaded_path

    def error(
        self, what: str, path: JsonPath = (), *, hint: str = "", details: Iterable[str] = (), at_key: bool = False
    ) -> MissionFormatError:
        pos = (self.loaded.key_marks.get(path) if at_key else None) or self.loaded.position(path)
        line, col = pos if pos else (None, None)
        if not hint:
            hint = self._surprise_hint(path)
        return MissionFormatError(
            what,
            path=self.display,
            line=line,
            col=col,
            json_path=_fmt_path(path) if path else "",
            hint=hint,
            details=tuple(details),
        )

    def _surprise_hint(self, path: JsonPath) -> str:
        surprise = self.loaded.yaml11_surprises.get(path)
        if surprise:
            return f"YAML read this value as {surprise}; quote it to keep it as text"
        return ""


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if isinstance(value, str):
        short = value if len(value) <= 40 else value[:37] + "..."
        return f"string {short!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _best_match(errors: Iterable[ValidationError]) -> ValidationError:
    from jsonschema.exceptions import best_match

    error: ValidationError = best_match(errors)
    return error


def _unknown_keys(error: ValidationError) -> list[str]:
    if not isinstance(error.instance, dict):
        return []
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    props = schema.get("properties", {})
    return [k for k in error.instance if k not in props and not k.startswith("x-")]


def _misplaced_parameter(step: Any, key: str) -> str | None:
    """The step type when ``key``, written on the step itself, is one of that type's parameters."""
    if not isinstance(step, dict):
        return None
    name = step.get("step_type", step.get("type"))
    if not isinstance(name, str):
        return None
    canonical = steps.canonical_name(name)
    if canonical is None:
        return None
    spec = steps.registry()[canonical]
    return spec.name if key in spec.schema.get("properties", {}) else None


def _schema_error(
    ctx: _Ctx, error: ValidationError, *, where: str = "", known: Iterable[str] = (), key: str | None = None
) -> MissionFormatError:
    path: JsonPath = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        unknown = _unknown_keys(error)
        key = key or (unknown[0] if unknown else "?")
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        choices = list(known) or list(schema.get("properties", {}))
        match = steps.closest(key, choices)
        hint = f"did you mean '{match}'?" if match else f"allowed keys: {', '.join(sorted(choices))}."
        parameter = _misplaced_parameter(error.instance, key) if len(path) == 2 and path[0] == "steps" else None
        if parameter:
            hint = f"'{key}' is a parameter of {parameter} steps: write it under parameters: {{{key}: ...}}"
        elif not where:
            hint += " Free-form data goes under 'metadata' or a key starting with 'x-'."
        return ctx.error(f"unknown key '{key}'{where}", (*path, key), hint=hint, at_key=True)
    hint = _matrix_hint(path, error.instance, str(error.validator)) or _value_hint(path, error.instance)
    if error.validator == "type":
        expected = error.validator_value
        exp = " or ".join(expected) if isinstance(expected, list) else expected
        return ctx.error(f"expected {exp}, got {_describe(error.instance)}{where}", path, hint=hint)
    if error.validator == "required":
        if (
            "'tool' is a required" in error.message
            and isinstance(error.instance, dict)
            and "tool_name" in error.instance
        ):
            hint = "RustChain's tool_name is written tool here: tool: " + str(error.instance["tool_name"])
        return ctx.error(f"{error.message}{where}", path, hint=hint)
    if error.validator == "pattern" and path and path[-1] == "id":
        return ctx.error(
            f"invalid step id {error.instance!r}{where}",
            path,
            hint="ids start with a letter and use only letters, digits, '-' and '_' (at most 64)",
        )
    if error.validator in ("maximum", "exclusiveMinimum", "minimum", "exclusiveMaximum"):
        return ctx.error(f"{_describe(error.instance)} is out of range: {_message(error)}{where}", path, hint=hint)
    if error.validator == "minItems" and path == ("steps",):
        return ctx.error("a mission needs at least one step", path)
    if error.validator == "oneOf" and error.context:
        best = _best_match(error.context)
        return ctx.error(f"{_message(best)}{where}", path, hint=hint)
    return ctx.error(f"{_message(error)}{where}", path, hint=hint)


_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds|m|min|minutes|h)$")
_LIST_KEYS = frozenset({"depends_on", "args", "marks", "next_missions", "exclude"})


_MATRIX_EXAMPLE = 'matrix: {python: ["3.11", "3.12"], os: [linux]}'


def _matrix_hint(path: JsonPath, value: Any, validator: str) -> str:
    """How a ``matrix:`` is written, for the part of it that is wrong."""
    if path[:1] != ("matrix",):
        return ""
    if validator == "propertyNames" or (len(path) == 1 and validator == "pattern"):
        return "names start with a letter or '_' and hold letters, digits and '_' (templates use matrix.<name>)"
    if len(path) == 1:
        return f"a matrix maps names to lists of values: {_MATRIX_EXAMPLE}"
    key = path[1]
    if key in ("include", "exclude"):
        if len(path) == 2 or (len(path) == 3 and not isinstance(value, dict)) or validator == "minProperties":
            return f'{key} is a list of mappings of names to values: {key}: [{{os: windows, python: "3.11"}}]'
        return "a value in the matrix is text, a number or a boolean"
    if validator == "uniqueItems":
        return f"give each value of {key} once"
    if validator == "minItems":
        return f"give {key} at least one value, or remove it"
    if len(path) == 2 and not isinstance(value, list):
        shown = json.dumps(value) if isinstance(value, str) else value
        return f"an axis is a list of values: {key}: [{shown}]"
    if len(path) >= 3 and isinstance(value, (dict, list)):
        return (
            "a value in the matrix is text, a number or a boolean; for settings that go together, add them to"
            ' combinations with include: [{python: "3.12", experimental: true}]'
        )
    if len(path) >= 3:
        return "a value in the matrix is text, a number or a boolean; quote it to keep it as text"
    return ""


def _value_hint(path: JsonPath, value: Any) -> str:
    """How a value of the wrong type is written, for the mistakes people make coming from elsewhere."""
    key = next((p for p in reversed(path) if isinstance(p, str)), "")
    if path and path[0] == "judge":
        judge_hint = _judge_hint(path, value)
        if judge_hint:
            return judge_hint
    if key == "retries" and isinstance(value, int) and not isinstance(value, bool):
        return f"retries is a mapping: retries: {{count: {value}}} (add delay_seconds and backoff as needed)"
    if key == "success_threshold" and isinstance(value, (int, float)) and 1 < value <= 100:
        return f"a rate of {value:g}% is written {value / 100:g}"
    if key in _LIST_KEYS and isinstance(value, str):
        words = shlex.split(value) if key == "args" else [value]
        return f"write a list: {key}: [{', '.join(words)}]"
    if isinstance(value, str):
        if _NUMBER.match(value.strip()):
            return f"drop the quotes to make it a number: {key}: {value.strip()}"
        duration = _DURATION.match(value.strip())
        if duration:
            number = float(duration.group(1)) * {"m": 60, "min": 60, "minutes": 60, "h": 3600}.get(duration.group(2), 1)
            return f"write the number of seconds: {key}: {number:g}"
    return ""


def _judge_hint(path: JsonPath, value: Any) -> str:
    """How the mission-level ``judge:`` is written, for its common mistakes."""
    if path == ("judge",):
        method = value if value in ("ruler", "rubric") else "ruler"
        return f"judge is a mapping: judge: {{method: {method}, rubric: 'what a good run does'}}"
    if path == ("judge", "method"):
        return "method is ruler (the repeats ranked together) or rubric (each repeat scored alone)"
    if path == ("judge", "steps") and isinstance(value, str):
        return f"write a list of step ids: steps: [{value}]"
    if path == ("judge", "min_mean_score") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return "scores are between 0 and 1" + (f": {value:g}% is written {value / 100:g}" if 1 < value <= 100 else "")
    return ""


def _message(error: ValidationError) -> str:
    """jsonschema's message with a long quoted value cut, and its reason kept."""
    return shorten_values(error.message, (error.instance, error.validator_value))


def _walk_strings(value: Any, path: JsonPath) -> Iterable[tuple[JsonPath, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk_strings(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk_strings(v, (*path, i))


_MARK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_GITHUB_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.DOTALL)


def _compat_strip(ctx: _Ctx, data: Any, warnings: list[str]) -> Any:
    """RustChain ignores unknown keys: drop them with a warning instead of failing."""
    if not isinstance(data, dict):
        return data
    schema = mission_schema()
    top_known = set(schema["properties"])
    step_known = set(schema["$defs"]["step"]["properties"])
    config_known = set(schema["$defs"]["config"]["properties"])

    def strip(mapping: dict[str, Any], known: set[str], where: JsonPath) -> dict[str, Any]:
        out = {}
        for k, v in mapping.items():
            if k in known or k.startswith("x-"):
                out[k] = v
            else:
                pos = ctx.loaded.position((*where, k))
                line = f":{pos[0]}" if pos else ""
                warnings.append(
                    f"{ctx.display}{line}: unknown key '{k}' at {_fmt_path(where)} ignored (RustChain compatibility)"
                )
        return out

    data = strip(data, top_known, ())
    if isinstance(data.get("config"), dict):
        data["config"] = strip(data["config"], config_known, ("config",))
    if isinstance(data.get("steps"), list):
        data["steps"] = [
            strip(s, step_known, ("steps", i)) if isinstance(s, dict) else s for i, s in enumerate(data["steps"])
        ]
    return data


def _display(path: Path, rootdir: Path | None) -> str:
    if rootdir is not None:
        try:
            return str(path.resolve().relative_to(rootdir.resolve()))
        except ValueError:
            pass
    return str(path)


_DEFAULT_OPTIONS: Final = LoadOptions()
_NO_RETRIES: Final = Retries()  # one shared value: most steps never retry

#: While ``load_self_contained`` runs: what the loading looked at besides the mission file itself.
_ELSEWHERE: ContextVar[list[str] | None] = ContextVar("_ELSEWHERE", default=None)


def _looked_elsewhere(what: str) -> None:
    seen = _ELSEWHERE.get()
    if seen is not None:
        seen.append(what)


def _confined(ctx: _Ctx, rel: str, where: JsonPath, what: str, options: LoadOptions) -> Path:
    """Resolve ``rel`` next to the current file; it must stay inside the pytest rootdir."""
    _looked_elsewhere(rel)
    base = Path(ctx.loaded_path).parent
    target = (base / rel).resolve()
    root = (options.rootdir or base).resolve()
    if not target.is_relative_to(root):
        raise ctx.error(
            f"{what} '{rel}' is outside the project ({root})",
            where,
            hint="paths are relative to the file that names them and must stay inside the pytest rootdir",
        )
    if not target.is_file():
        raise ctx.error(f"{what} '{rel}' does not exist", where, hint=f"looked for {target}")
    return target


def _template_file(ctx: _Ctx, rel: str, where: JsonPath, options: LoadOptions) -> Path:
    """A ``create_file`` template: a file of the mission's own directory tree, never inside ``.git``
    (where a checkout keeps its token) and never reached through a link out of that tree."""
    target = _confined(ctx, rel, where, "template", options)
    base = Path(ctx.loaded_path).parent.resolve()
    if not target.is_relative_to(base):
        raise ctx.error(
            f"template '{rel}' is outside the mission's directory ({base})",
            where,
            hint="keep templates next to the mission file or below its directory",
        )
    if any(part.lower() == ".git" for part in target.relative_to(base).parts) or any(
        part.lower() == ".git" for part in Path(rel).parts
    ):
        raise ctx.error(f"template '{rel}' is inside .git", where, hint="templates never come from .git")
    return target


def _read(
    path: Path, display: str, options: LoadOptions, warnings: list[str], problems: list[MissionFormatError]
) -> tuple[_Ctx, dict[str, Any]]:
    """Load one YAML file and check the mission schema (steps are checked one by one later)."""
    loaded = load_yaml_file(path, display_path=display, max_bytes=options.limits.max_file_bytes)
    ctx = _Ctx(display, loaded, path)
    data = loaded.data
    if options.compat:
        data = _compat_strip(ctx, data, warnings)
    if not (_is_valid_fast("top", data)):
        errors = list(_top_validator().iter_errors(data))
        if errors:
            found = _schema_errors(ctx, errors)
            problems.extend(found)
            places = {
                e.absolute_path[0] if e.absolute_path else None for e in errors if e.validator != "additionalProperties"
            }
            if not isinstance(data, dict) or None in places or "steps" in places:
                # The file's shape is wrong: what it holds cannot be checked further.
                raise _together(problems)
            # Unknown keys and wrong values elsewhere than in the steps: leave them out and go on, so
            # the steps' errors are reported in the same run (the mission never runs).
            known = set(mission_schema().get("properties", {}))
            data = {k: v for k, v in data.items() if (k in known or k.startswith("x-")) and k not in places}
    result: dict[str, Any] = data
    return ctx, result


def _together(problems: list[MissionFormatError]) -> MissionFormatError:
    """One error for the user: the only one, or all of them (each once, by file, then line)."""
    unique = list({p.render(): p for p in problems}.values())
    files = list(dict.fromkeys(p.path for p in unique))
    unique.sort(key=lambda p: (files.index(p.path), p.line or 0, p.col or 0))
    return unique[0] if len(unique) == 1 else MissionFormatErrors(unique)


def _schema_errors(
    ctx: _Ctx, errors: list[ValidationError], *, where: str = "", known: Iterable[str] = ()
) -> list[MissionFormatError]:
    """One message per independent problem: each unknown key, and the best error of each other place."""
    out: list[MissionFormatError] = []
    by_place: dict[tuple[Any, ...], list[ValidationError]] = {}
    for error in errors:
        if error.validator == "additionalProperties":
            for key in _unknown_keys(error):
                out.append(_schema_error(ctx, error, where=where, known=known, key=key))
        else:
            by_place.setdefault(tuple(error.absolute_path), []).append(error)
    for group in by_place.values():
        out.append(_schema_error(ctx, _best_match(group), where=where, known=known))
    out.sort(key=lambda e: (e.line or 0, e.col or 0))
    return out


def _load_steps(
    ctx: _Ctx,
    items: list[Any],
    options: LoadOptions,
    warnings: list[str],
    chain: tuple[Path, ...],
    problems: list[MissionFormatError],
    broken: set[str],
) -> list[Step]:
    """The steps of ``items``; a step with errors is left out, its errors added to ``problems`` and
    its id to ``broken``, so the other steps are still checked and every error shows in one run."""
    out: list[Step] = []
    for index, raw in enumerate(items):
        where: JsonPath = ("steps", index)
        try:
            if isinstance(raw, dict) and "include" in raw and "id" not in raw:
                out.extend(_include(ctx, raw, where, options, warnings, chain, problems, broken))
                continue
            errors = [] if _is_valid_fast("step", raw) else list(_step_validator().iter_errors(raw))
            if errors:
                problems.extend(_schema_errors(ctx, [_shift(e, where) for e in errors]))
                if isinstance(raw, dict) and isinstance(raw.get("id"), str):
                    broken.add(raw["id"])
                continue
            step = _make_step(ctx, raw, where, options, warnings)
            if step.step_type == "chain" and "steps" in step.parameters:
                out.extend(_expand_chain(ctx, step, where, options, warnings))
            else:
                out.append(step)
        except MissionFormatErrors as exc:
            problems.extend(exc.errors)
        except MissionFormatError as exc:
            problems.append(exc)
            if isinstance(raw, dict) and isinstance(raw.get("id"), str):
                broken.add(raw["id"])
    return out


def _include(
    ctx: _Ctx,
    raw: dict[str, Any],
    where: JsonPath,
    options: LoadOptions,
    warnings: list[str],
    chain: tuple[Path, ...],
    problems: list[MissionFormatError],
    broken: set[str],
) -> list[Step]:
    if set(raw) != {"include"} or not isinstance(raw["include"], str):
        raise ctx.error("an include item holds only 'include: path/to/file.steps.yaml'", where)
    target = _confined(ctx, raw["include"], (*where, "include"), "include", options)
    if target in chain:
        names = " -> ".join(p.name for p in (*chain, target))
        raise ctx.error(f"include cycle: {names}", (*where, "include"))
    display = _display(target, options.rootdir)
    loaded = load_yaml_file(target, display_path=display, max_bytes=options.limits.max_file_bytes, list_ok=True)
    if isinstance(loaded.data, list):
        # A bare list of steps: its positions are shifted so errors point at "$.steps[i]" lines.
        inc_ctx = _Ctx(display, _as_steps(loaded), target)
        items: list[Any] = loaded.data
    else:
        inc_ctx, inc_data = _read(target, display, options, warnings, problems)
        if set(inc_data) - {"steps"} - {k for k in inc_data if k.startswith("x-")} or not inc_data.get("steps"):
            raise inc_ctx.error(
                "a steps file holds a list of steps, or one key, 'steps:', with that list",
                hint="write the included steps as a list, or under 'steps:'",
            )
        items = inc_data["steps"]
    if not items:
        raise inc_ctx.error("a steps file holds at least one step", hint="add a step, or remove the include")
    return _load_steps(inc_ctx, items, options, warnings, (*chain, target), problems, broken)


def _as_steps(loaded: LoadedYaml) -> LoadedYaml:
    """A bare list of steps read as if it were written under ``steps:``."""

    def shift(marks: Mapping[JsonPath, tuple[int, int]]) -> dict[JsonPath, tuple[int, int]]:
        return {("steps", *path): pos for path, pos in marks.items()}

    return replace(
        loaded,
        data={"steps": loaded.data},
        marks=shift(loaded.marks),
        key_marks=shift(loaded.key_marks),
        yaml11_surprises={("steps", *path): s for path, s in loaded.yaml11_surprises.items()},
    )


def _expand_chain(ctx: _Ctx, chain: Step, where: JsonPath, options: LoadOptions, warnings: list[str]) -> list[Step]:
    """A nested chain becomes its steps (``chain/name``, each after the one before) and then the
    chain itself, which gathers their outputs: every nested step is a counted subtest of its own."""
    params = dict(chain.parameters)
    nested_raw = params.pop("steps")
    conversation = params.pop("conversation", False)
    out: list[Step] = []
    previous: tuple[str, ...] = chain.depends_on
    for index, item in enumerate(nested_raw):
        name = item.get("step_name") or item.get("id") or f"step{index + 1}"
        item_where: JsonPath = (*where, "parameters", "steps", index)
        raw: dict[str, Any] = {
            "id": name,
            "step_type": item["step_type"],
            "parameters": dict(item.get("parameters") or {}),
        }
        for key in ("timeout_seconds", "expect"):
            if key in item:
                raw[key] = item[key]
        step = _make_step(ctx, raw, item_where, options, warnings)
        if step.step_type == "chain":
            raise ctx.error(f"step '{chain.id}': chains do not nest inside chains", (*item_where, "step_type"))
        nested_params = dict(step.parameters)
        if conversation and step.step_type == "llm" and "conversation" not in nested_params:
            nested_params["conversation"] = conversation if isinstance(conversation, str) else chain.id
        nested_id = f"{chain.id}/{name}"
        if any(s.id == nested_id for s in out):
            raise ctx.error(f"step '{chain.id}': two nested steps are named '{name}'", (*item_where, "step_name"))
        out.append(
            replace(step, id=nested_id, parameters=nested_params, depends_on=previous, condition=chain.condition)
        )
        previous = (nested_id,)
    params["nested_steps"] = [s.id for s in out]
    out.append(replace(chain, parameters=params, depends_on=(*chain.depends_on, *previous)))
    return out


_RUSTCHAIN_INTERNAL_TYPES = {
    "safety": "RustChain's safety validation runs inside its engine; here the safety analyser judges every "
    "step before it runs (see mission_safety)",
    "policy": "RustChain's policy engine is internal; here the policy comes from the pytest configuration "
    "(mission_safety, mission_allow_rules)",
    "audit": "RustChain's audit trail is internal; here the JSON report and trajectories record every step",
}


def _make_step(ctx: _Ctx, raw: dict[str, Any], where: JsonPath, options: LoadOptions, warnings: list[str]) -> Step:
    limits = options.limits
    sid = raw["id"]
    type_name = raw.get("step_type", raw.get("type"))
    if type_name is None:
        raise ctx.error(
            f"step '{sid}' has no step_type", where, hint=f"supported: {', '.join(sorted(steps.registry()))}"
        )
    if "step_type" in raw and "type" in raw:
        raise ctx.error(f"step '{sid}' has both step_type and type", (*where, "type"), hint="keep one of them")
    type_key = "step_type" if "step_type" in raw else "type"
    canonical = steps.canonical_name(type_name)
    if canonical is None:
        internal = _RUSTCHAIN_INTERNAL_TYPES.get(str(type_name).lower())
        if internal is not None:
            raise ctx.error(
                f"step '{sid}': step type '{type_name}' is RustChain-internal and not available: {internal}",
                (*where, type_key),
                hint="remove the step; safety checks, policy and the audit trail apply to every step here",
            )
        known_types = sorted(steps.registry())
        match = steps.closest(type_name, known_types)
        hint = (f"did you mean '{match}'? " if match else "") + f"supported: {', '.join(known_types)}"
        raise ctx.error(f"step '{sid}': step type '{type_name}' is not supported", (*where, type_key), hint=hint)
    params = dict(raw.get("parameters", {}))
    template: str | None = None
    template_path = ""
    if canonical == "create_file" and "template" in params:
        tpl = params.pop("template")
        if not isinstance(tpl, str) or "content" in params:
            raise ctx.error(
                f"step '{sid}': give create_file either content or template (a file path), not both",
                (*where, "parameters", "template"),
            )
        target = _template_file(ctx, tpl, (*where, "parameters", "template"), options)
        template_path = tpl
        template = read_mission_bytes(target, max_bytes=limits.max_file_bytes).decode("utf-8", "replace")
        if raw.get("render", True):
            problem = templating.check_syntax(template)
            if problem:
                raise ctx.error(f"step '{sid}': template {tpl}: {problem}", (*where, "parameters", "template"))
    continue_on_error = raw.get("continue_on_error", False)
    if canonical == "agent" and "agent_type" in params:
        warnings.append(
            f"{ctx.display}: step '{sid}': agent_type: {params.pop('agent_type')} ignored (RustChain's agent kinds "
            "are one loop here: the tools, objective and limits decide what the agent does)"
        )
    if canonical == "http" and "on_error" in params:
        value = params.pop("on_error")
        warnings.append(
            f"{ctx.display}: step '{sid}': on_error: {value} read as continue_on_error: "
            f"{str(value == 'continue').lower()} (RustChain's spelling; write continue_on_error on the step)"
        )
        continue_on_error = continue_on_error or value == "continue"
    params = _check_params(ctx, sid, canonical, params, (*where, "parameters"), options.compat, warnings)
    _check_expect_keys(ctx, sid, canonical, raw.get("expect", {}), (*where, "expect"))
    if canonical == "tool" and not templating.has_template(params["tool"]) and params["tool"] not in tool_steps.tools():
        raise ctx.error(
            f"step '{sid}': unknown tool '{params['tool']}'",
            (*where, "parameters", "tool"),
            hint=tool_steps.unknown_tool_hint(params["tool"]),
        )
    timeout = raw.get("timeout_seconds")
    if timeout is not None and timeout > limits.max_timeout_seconds:
        raise ctx.error(
            f"step '{sid}': timeout_seconds {timeout} is above the allowed {limits.max_timeout_seconds:g}",
            (*where, "timeout_seconds"),
            hint="a mission may lower the configured limits, never raise them",
        )
    env = _env(raw.get("env", {}))
    _check_env(ctx, env, (*where, "env"))
    condition = raw.get("if", "success()").strip()
    if raw.get("render", True):
        for spath, text in _walk_strings({"parameters": params, "expect": raw.get("expect", {})}, ()):
            if templating.has_template(text):
                dollar = _GITHUB_EXPRESSION.search(text)
                if dollar:
                    # `${{ x }}` would render as `$` followed by the value: a silent wrong value.
                    raise ctx.error(
                        f"step '{sid}': {dollar.group(0)!r} is GitHub Actions syntax; here the '$' would stay "
                        "in the text before the value",
                        (*where, *spath),
                        hint=f"write {{{{ {dollar.group(1)} }}}}; for text meant for GitHub Actions (a workflow "
                        "file's content) set render: false on the step",
                    )
                problem = templating.check_syntax(text)
                if problem:
                    raise ctx.error(f"step '{sid}': {problem}", (*where, *spath))
    github = re.fullmatch(r"\$\{\{\s*(.*?)\s*\}\}", condition, re.DOTALL)
    if github:
        raise ctx.error(
            f"step '{sid}': if: is an expression already; GitHub's ${{{{ }}}} around it is not read here",
            (*where, "if"),
            hint=f"write if: {github.group(1)}",
        )
    if condition not in ("success()", "failure()", "always()"):
        problem = templating.check_expression(condition)
        if problem:
            raise ctx.error(f"step '{sid}': if: {problem}", (*where, "if"))
    retries = raw.get("retries", {})
    return Step(
        id=sid,
        name=raw.get("name", sid),
        step_type=canonical,
        parameters=params,
        depends_on=tuple(raw.get("depends_on", ())),
        timeout_seconds=timeout,
        continue_on_error=continue_on_error,
        min_pass_rate=raw.get("min_pass_rate"),
        condition=condition,
        retries=Retries(
            count=retries.get("count", 0),
            delay_seconds=retries.get("delay_seconds", 0.0),
            backoff=retries.get("backoff", 1.0),
        )
        if retries
        else _NO_RETRIES,
        expect=raw.get("expect", {}),
        env=env,
        render=raw.get("render", True),
        line=(ctx.loaded.position(where) or (0, 0))[0],
        source=ctx.display,
        template=template,
        template_path=template_path,
    )


def _env(raw: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in raw.items()}


_MERGED_MAPPINGS = ("vars", "env", "config", "metadata")


def _load_raw(
    path: Path,
    display: str,
    options: LoadOptions,
    warnings: list[str],
    chain: tuple[Path, ...],
    problems: list[MissionFormatError],
    broken: set[str],
) -> tuple[_Ctx, dict[str, Any], list[Step]]:
    """A file's data and steps with its ``extends`` chain applied (the child's keys win)."""
    ctx, data = _read(path, display, options, warnings, problems)
    if "matrix" in data:
        data = {**data, "matrix": _collect(problems, _matrix, ctx, data["matrix"]) or ()}
    if isinstance(data.get("fixtures"), list):
        # Resolved here, next to the file that names them: an extending mission inherits them as they are.
        uses = _collect(problems, _fixture_uses, ctx, data["fixtures"], options, chain)
        data = {**data, "fixtures": uses or ()}
    own_steps = _load_steps(ctx, data.get("steps", []), options, warnings, (path.resolve(),), problems, broken)
    _collect(problems, _check_unique, own_steps)
    if "extends" not in data:
        return ctx, data, own_steps
    base_path = _confined(ctx, data["extends"], ("extends",), "extends", options)
    if base_path in chain or base_path == path.resolve():
        names = " -> ".join(_display(p, options.rootdir) for p in (*chain, base_path))
        raise ctx.error(f"extends cycle: {names}", ("extends",), hint="a mission cannot extend itself, directly or not")
    _, base_data, base_steps = _load_raw(
        base_path, _display(base_path, options.rootdir), options, warnings, (*chain, base_path), problems, broken
    )
    merged: dict[str, Any] = {k: v for k, v in base_data.items() if k not in ("steps", "extends")}
    for key, value in data.items():
        if key in _MERGED_MAPPINGS and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        elif key != "steps":
            merged[key] = value
    by_id = {s.id: i for i, s in enumerate(base_steps)}
    combined = list(base_steps)
    for step in own_steps:
        if step.id in by_id:
            combined[by_id[step.id]] = step
        else:
            combined.append(step)
    return ctx, merged, combined


SETUP_SUFFIXES = (".setup.yaml", ".setup.yml")


def setup_key(path: Path) -> str:
    """The name a setup file is reached by in templates: ``venv.setup.yaml`` is ``fixtures.venv``."""
    name = path.name
    for suffix in (*SETUP_SUFFIXES, ".yaml", ".yml"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _fixture_uses(ctx: _Ctx, raw: list[str], options: LoadOptions, chain: tuple[Path, ...]) -> tuple[FixtureUse, ...]:
    """``fixtures:``: pytest fixture names as they are, setup files loaded and checked now."""
    uses: list[FixtureUse] = []
    seen: dict[str, str] = {}
    for index, entry in enumerate(raw):
        where: JsonPath = ("fixtures", index)
        line, col = ctx.loaded.position(where) or (1, 1)
        if entry.endswith((".yaml", ".yml")):
            target = _confined(ctx, entry, where, "setup file", options)
            if target in chain:
                raise ctx.error(f"setup file '{entry}' is this mission itself", where, hint="name a *.setup.yaml file")
            setup = load_mission(target, options=options, _chain=(*chain, target))
            _check_setup(setup, ctx, where)
            use = FixtureUse(key=setup_key(target), setup=setup, source=ctx.display, index=index, line=line, col=col)
        else:
            use = FixtureUse(key=entry, fixture=entry, source=ctx.display, index=index, line=line, col=col)
        if use.key in seen:
            raise ctx.error(
                f"fixtures: '{entry}' and '{seen[use.key]}' are both reached as fixtures.{use.key}",
                where,
                hint="rename one of the setup files",
            )
        seen[use.key] = entry
        uses.append(use)
    return tuple(uses)


def _check_setup(setup: Mission, ctx: _Ctx, where: JsonPath) -> None:
    """What a setup file may not do: it runs once per session and xdist worker, shared by missions."""
    problem = hint = ""
    if setup.config.workspace.kind == "project":
        problem = "runs in the project checkout (workspace: project), where setups on two xdist workers would collide"
        hint = "use workspace: tmp (the default) or {copy: ..}: the setup keeps its own directory for the session"
    elif setup.fixtures:
        problem = "asks for fixtures itself"
        hint = "list those fixtures in the mission instead; a setup file's steps stand alone"
    if problem:
        raise ctx.error(f"setup file {setup.display_path} {problem}", where, hint=hint)


def _collect(problems: list[MissionFormatError], check: Callable[..., _T], *args: Any) -> _T | None:
    """``check(*args)``, with a format error it raises added to ``problems`` instead."""
    try:
        return check(*args)
    except MissionFormatErrors as exc:
        problems.extend(exc.errors)
    except MissionFormatError as exc:
        problems.append(exc)
    return None


def _step_error(step: Step, what: str, hint: str = "") -> MissionFormatError:
    return MissionFormatError(what, path=step.source, line=step.line or None, hint=hint)


def _check_unique(built: list[Step]) -> None:
    seen: dict[str, Step] = {}
    for step in built:
        first = seen.get(step.id)
        if first is not None:
            where = f"line {first.line}" if first.source == step.source else f"{first.source}:{first.line}"
            raise _step_error(step, f"duplicate step id '{step.id}' (first at {where})", "give every step its own id")
        seen[step.id] = step


def load_self_contained(path: Path, *, display_path: str, options: LoadOptions) -> tuple[Mission, bool]:
    """``load_mission``, and whether the result depends on nothing but the file's bytes (no other file
    or directory was looked at), so that it can be kept for the next run."""
    token = _ELSEWHERE.set([])
    try:
        mission = load_mission(path, display_path=display_path, options=options)
        return mission, not _ELSEWHERE.get()
    finally:
        _ELSEWHERE.reset(token)


def load_mission(
    path: Path,
    *,
    display_path: str | None = None,
    options: LoadOptions = _DEFAULT_OPTIONS,
    _chain: tuple[Path, ...] = (),
) -> Mission:
    """Load and check one mission file; raise ``MissionFormatError`` with a clean message."""
    display = display_path or _display(path, options.rootdir)
    warnings: list[str] = []
    problems: list[MissionFormatError] = []
    broken: set[str] = set()
    ctx, data, built = _load_raw(path, display, options, warnings, (path.resolve(),), problems, broken)
    limits = options.limits
    if not built and not problems:
        raise ctx.error("a mission needs at least one step", ("steps",), hint="add a 'steps:' list")
    if len(built) > limits.max_steps:
        raise ctx.error(
            f"{len(built)} steps is more than the allowed {limits.max_steps}",
            ("steps",),
            hint="split the mission, or raise mission_max_steps in the pytest configuration",
        )
    _collect(problems, _check_unique, built)
    ids = [s.id for s in built]
    for step in built:
        for dep in step.depends_on:
            if dep not in ids and dep not in broken:
                match = steps.closest(dep, [*ids, *sorted(broken)])
                hint = f"did you mean '{match}'?" if match else f"step ids: {', '.join(ids)}"
                problems.append(_step_error(step, f"step '{step.id}' depends on unknown step '{dep}'", hint))
    config = _collect(problems, _build_config, ctx, data.get("config", {}), path, options)
    mission_judge = _collect(problems, _build_judge, ctx, data.get("judge"), built) if "judge" in data else None
    env = _env(data.get("env", {}))
    _collect(problems, _check_env, ctx, env, ("env",))
    if problems:
        raise _together(problems)
    cycle = plan.find_cycle(built)
    if cycle:
        first = next(s for s in built if s.id == cycle[0])
        raise _step_error(first, f"dependency cycle: {' -> '.join(cycle)}", "remove one of these depends_on entries")
    built = infer_dependencies(built)
    assert config is not None
    marks, skip, xfail = _marks(data.get("marks", []))
    mark_positions: dict[str, tuple[int, int]] = {}
    for index, item in enumerate(data.get("marks", [])):
        pos = ctx.loaded.marks.get(("marks", index))
        if isinstance(item, str) and pos is not None:
            mark_positions.setdefault(item, pos)
    chain = (*_chain, path.resolve())
    next_missions: list[Mission] = []
    for index, rel in enumerate(data.get("next_missions", ())):
        target = _confined(ctx, rel, ("next_missions", index), "next mission", options)
        if target in chain:
            names = " -> ".join(_display(p, options.rootdir) for p in (*chain, target))
            raise ctx.error(f"next_missions cycle: {names}", ("next_missions", index))
        follower = load_mission(target, options=options, _chain=chain)
        if follower.matrix:
            raise ctx.error(
                f"next mission '{rel}' has a matrix; a next mission runs inside this mission's item",
                ("next_missions", index),
                hint="move the matrix to this mission (next missions see its matrix values), or run that"
                " mission on its own",
            )
        next_missions.append(follower)
    return Mission(
        path=path,
        display_path=display,
        stem=mission_stem(path),
        name=data.get("name") or mission_stem(path),
        steps=tuple(built),
        version=str(data.get("version", "1.0")),
        description=data.get("description", ""),
        config=config,
        vars=data.get("vars", {}),
        env=env,
        marks=marks,
        mark_positions=mark_positions,
        skip=skip,
        xfail=xfail,
        metadata=data.get("metadata", {}),
        reward=data.get("reward"),
        judge=mission_judge,
        next_missions=tuple(next_missions),
        fixtures=tuple(data.get("fixtures", ())),
        warnings=tuple(warnings),
        compat=options.compat,
        matrix=data.get("matrix", ()),
    )


def _matrix(ctx: _Ctx, raw: Mapping[str, Any]) -> tuple[Combination, ...]:
    """The combinations of a schema-valid ``matrix:``, or an error pointing at the entry that is wrong."""
    from pytest_rustchain.matrix import MatrixError, expand

    for where, surprise in ctx.loaded.yaml11_surprises.items():
        if where[:1] == ("matrix",) and len(where) > 1:
            key = next(p for p in reversed(where) if isinstance(p, str))
            written = re.search(r"\('([^']*)'", surprise)
            shown = f'"{written.group(1)}"' if written else "..."
            raise ctx.error(
                f"matrix value read as {surprise}",
                where,
                hint=f"quote the value to keep it as text: {key}: [{shown}]"
                if isinstance(where[-1], int)
                else f"quote the value to keep it as text: {key}: {shown}",
            )
    try:
        return expand(raw)
    except MatrixError as exc:
        raise ctx.error(exc.what, exc.where, hint=exc.hint) from None


# -- inferred dependencies ---------------------------------------------------------------------

# ``(?<![\w.])``: in ``steps.chain.steps.draft`` only ``chain`` names a step (``.steps`` is its output).
_STEP_REF = re.compile(
    r"(?<![\w.])steps\s*(?:\.\s*([A-Za-z][A-Za-z0-9_]*)|\[\s*['\"]([A-Za-z][A-Za-z0-9_/-]*)['\"]\s*\])"
)


def _norm(rel: str, base: str = "") -> str | None:
    if not isinstance(rel, str) or not rel or templating.has_template(rel) or rel.startswith(("/", "~")):
        return None
    joined = posixpath.normpath(posixpath.join(base, rel))
    return None if joined.startswith("..") else joined


def _created_paths(step: Step) -> list[str]:
    """What ``step`` makes, as its step type declares: its ``write`` paths and what ``creates`` reads."""
    spec = steps.registry()[step.step_type]
    made = [step.parameters.get(key, "") for key in spec.path_params("write")]
    if spec.creates is not None:
        made += spec.creates(step.parameters)
    return [p for p in (_norm(m) for m in made) if p and p != "."]


def _referenced_steps(step: Step) -> list[str]:
    found: list[str] = []
    texts = [text for _, text in _walk_strings({"p": dict(step.parameters), "e": dict(step.expect)}, ())]
    if step.condition not in ("success()", "failure()", "always()"):
        texts.append("{{ " + step.condition + " }}")
    if step.template:
        texts.append(step.template)
    for text in texts:
        if (step.render and templating.has_template(text)) or text is step.condition:
            for m in _STEP_REF.finditer(text):
                ref = m.group(1) or m.group(2)
                if ref not in found:
                    found.append(ref)
    return found


def infer_dependencies(built: list[Step]) -> list[Step]:
    """Add the edges SPEC 5 infers: paths under what an earlier step creates, and ``steps.x`` uses."""
    ids = {s.id for s in built}
    declared = {s.id: set(s.depends_on) for s in built}

    def reaches(start: str, goal: str) -> bool:
        todo, seen = [start], set()
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(declared.get(node, ()))
        return False

    # What each step creates, computed once: (step, paths) in file order.
    creators = [(i, s, paths) for i, s in enumerate(built) if (paths := _created_paths(s))]
    out: list[Step] = []
    for index, step in enumerate(built):
        inferred: list[tuple[str, str]] = []
        for ref in _referenced_steps(step):
            if ref == step.id or ref not in ids:
                if ref == step.id:
                    raise _step_error(step, f"step '{step.id}' uses its own outputs (steps.{ref})")
                match = steps.closest(ref, sorted(ids))
                hint = f"did you mean '{match}'?" if match else f"step ids: {', '.join(sorted(ids))}"
                raise _step_error(step, f"step '{step.id}' uses steps.{ref}, but there is no step '{ref}'", hint)
            if reaches(ref, step.id):
                raise _step_error(
                    step,
                    f"step '{step.id}' uses steps.{ref}, but '{ref}' runs after it",
                    "a step can only use the outputs of steps that run before it",
                )
            inferred.append((ref, f"inferred: uses steps.{ref}"))
            declared[step.id].add(ref)
        path_keys = steps.registry()[step.step_type].path_params()
        targets = [(key, p) for key in path_keys if (p := _norm(step.parameters.get(key, ""))) and p != "."]
        for position, earlier, created in creators if targets else ():
            if position >= index:
                break
            for made in created:
                for key, target in targets:
                    if target == made or target.startswith(made + "/"):
                        if earlier.id in step.depends_on or any(d == earlier.id for d, _ in inferred):
                            continue
                        if reaches(earlier.id, step.id):
                            continue  # a declared edge says otherwise: it wins
                        how = f"uses {made}" if target == made else f"{key} {target} is under {made}/"
                        inferred.append((earlier.id, f"inferred: {how}"))
                        declared[step.id].add(earlier.id)
        out.append(replace(step, inferred=tuple(inferred)) if inferred else step)
    return out


def _marks(raw: list[Any]) -> tuple[tuple[str, ...], str | None, str | None]:
    marks: list[str] = []
    skip: str | None = None
    xfail: str | None = None
    for item in raw:
        if isinstance(item, str):
            if item == "skip":
                skip = skip or "skipped by the mission's marks"
            elif item == "xfail":
                xfail = xfail or "marked xfail"
            else:
                marks.append(item)
        elif "skip" in item:
            skip = item["skip"] or "skipped by the mission's marks"
        elif "xfail" in item:
            xfail = item["xfail"] or "marked xfail"
    return tuple(marks), skip, xfail


def _check_env(ctx: _Ctx, env: Mapping[str, str], where: JsonPath) -> None:
    if not env:
        return
    from pytest_rustchain.safety.programs import is_loader_variable

    for name in env:
        if is_loader_variable(name):
            raise ctx.error(
                f"env may not set {name}: it changes how programs load code",
                (*where, name),
                hint=f"remove {name}; set what the program needs through its own options",
            )


def _check_expect_keys(ctx: _Ctx, sid: str, step_type: str, expect: Mapping[str, Any], where: JsonPath) -> None:
    """An ``expect`` key that belongs to another step type (``contains`` on a command) is an error."""
    own = steps.registry()[step_type].expect_keys
    for key in expect:
        if key in own:
            continue
        owners = steps.registry().expect_key_owners(key)
        if owners:
            raise ctx.error(
                f"step '{sid}': expect.{key} applies to {' and '.join(owners)} steps, not {step_type}",
                (*where, key),
                hint="for command output use stdout_contains / stdout_matches"
                if key in ("contains", "matches")
                else "",
            )


def _check_params(
    ctx: _Ctx, sid: str, step_type: str, params: dict[str, Any], where: JsonPath, compat: bool, warnings: list[str]
) -> dict[str, Any]:
    spec = steps.registry()[step_type]
    known = list(spec.schema.get("properties", {}))
    if compat:
        for old, new in COMPAT_PARAM_ALIASES.items():
            if old in params and new in known and new not in params:
                params[new] = params.pop(old)
        for key in list(params):
            if key not in known:
                warnings.append(
                    f"{ctx.display}: step '{sid}': unknown parameter '{key}' of {step_type} ignored"
                    " (RustChain compatibility)"
                )
                del params[key]
    errors = [] if _is_valid_fast(step_type, params) else list(_param_validator(step_type).iter_errors(params))
    if errors:
        found = _schema_errors(
            ctx, [_shift(e, where) for e in errors], where=f" (step '{sid}', {step_type})", known=known
        )
        raise _together(found)
    return params


def _shift(error: ValidationError, where: JsonPath) -> ValidationError:
    error.path.extendleft(reversed(where))
    return error


def _build_config(ctx: _Ctx, raw: dict[str, Any], path: Path, options: LoadOptions) -> MissionConfig:
    limits = options.limits
    timeout = raw.get("timeout_seconds", min(300.0, limits.max_timeout_seconds))
    if timeout > limits.max_timeout_seconds:
        raise ctx.error(
            f"timeout_seconds {timeout} is above the allowed {limits.max_timeout_seconds:g}",
            ("config", "timeout_seconds"),
            hint="a mission may lower the configured limits, never raise them",
        )
    mission_timeout = raw.get("mission_timeout_seconds", limits.mission_timeout_seconds)
    if (
        limits.mission_timeout_seconds is not None
        and mission_timeout is not None
        and mission_timeout > limits.mission_timeout_seconds
    ):
        raise ctx.error(
            f"mission_timeout_seconds {mission_timeout} is above the allowed {limits.mission_timeout_seconds:g}",
            ("config", "mission_timeout_seconds"),
            hint="a mission may lower the configured limits, never raise them",
        )
    threshold = raw.get("success_threshold")
    ws_raw = raw.get("workspace", "tmp")
    if isinstance(ws_raw, dict):
        _looked_elsewhere(str(ws_raw["copy"]))
        source = (path.parent / ws_raw["copy"]).resolve()
        root = (options.rootdir or path.parent).resolve()
        if not source.is_relative_to(root):
            raise ctx.error(
                f"workspace copy source '{ws_raw['copy']}' is outside the project",
                ("config", "workspace", "copy"),
                hint="seed the workspace from a directory inside the pytest rootdir",
            )
        if not source.is_dir():
            raise ctx.error(
                f"workspace copy source '{ws_raw['copy']}' is not a directory",
                ("config", "workspace", "copy"),
                hint="the path is relative to the mission file",
            )
        workspace = WorkspaceSpec(kind="copy", copy_from=source, exclude=tuple(ws_raw.get("exclude", ())))
    else:
        workspace = WorkspaceSpec(kind=ws_raw)
    return MissionConfig(
        timeout_seconds=float(timeout),
        mission_timeout_seconds=mission_timeout,
        fail_fast=raw.get("fail_fast", threshold is None),
        success_threshold=threshold,
        repeat=raw.get("repeat"),
        workspace=workspace,
        safety=raw.get("safety"),
    )


_JUDGED_TYPES: Final = frozenset({"llm", "chain", "agent"})


def _build_judge(ctx: _Ctx, raw: dict[str, Any], built: list[Step]) -> MissionJudge:
    """The mission-level ``judge:``: its named steps must be model steps of this mission."""
    by_id = {s.id: s for s in built}
    for index, name in enumerate(raw.get("steps", ())):
        step = by_id.get(name)
        if step is None:
            match = steps.closest(name, list(by_id))
            raise ctx.error(
                f"judge.steps names unknown step '{name}'",
                ("judge", "steps", index),
                hint=f"did you mean '{match}'?" if match else f"step ids: {', '.join(by_id)}",
            )
        if step.step_type not in _JUDGED_TYPES:
            model_steps = [s.id for s in built if s.step_type in _JUDGED_TYPES]
            raise ctx.error(
                f"judge.steps: step '{name}' is a {step.step_type} step; the judge reads model transcripts",
                ("judge", "steps", index),
                hint="name llm, chain or agent steps"
                + (f": {', '.join(model_steps)}" if model_steps else "; this mission has none"),
            )
    if not raw.get("steps") and not any(s.step_type in _JUDGED_TYPES for s in built):
        raise ctx.error(
            "judge: this mission has no llm, chain or agent step whose transcript could be judged",
            ("judge",),
            hint="add a model step, or drop judge: (reward: rustchain alone scores the repeats without a model)",
            at_key=True,
        )
    pos = ctx.loaded.key_marks.get(("judge",)) or ctx.loaded.position(("judge",))
    temperature = raw.get("temperature", 0)
    return MissionJudge(
        method=str(raw.get("method", "ruler")),
        rubric=str(raw.get("rubric", "")),
        task=str(raw.get("task", "")),
        steps=tuple(raw.get("steps", ())),
        role=raw.get("role"),
        provider=raw.get("provider"),
        model=raw.get("model"),
        temperature=float(temperature),
        seed=raw.get("seed"),
        swap_check=bool(raw.get("swap_check", False)),
        min_mean_score=raw.get("min_mean_score"),
        line=pos[0] if pos else 0,
    )


def sniff_mission(path: Path) -> bool:
    """Compatibility mode collects any ``*.yaml`` whose top level has ``name`` and ``steps``, except
    setup files (``*.setup.yaml``), which run only for the missions that name them."""
    if path.name.endswith(SETUP_SUFFIXES):
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536)
    except OSError:
        return False
    text = head.decode("utf-8", "replace")
    lines = [ln for ln in text.splitlines() if ln and not ln[0].isspace() and not ln.startswith("#")]
    return any(ln.startswith("steps:") for ln in lines) and any(ln.startswith("name:") for ln in lines)
