"""Mission files to ``Mission`` objects: hardened YAML, JSON Schema, cross-field checks."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema
from jsonschema.exceptions import ValidationError

from pytest_rustchain import plan, steps, templating
from pytest_rustchain.errors import MissionFormatError
from pytest_rustchain.model import Mission, MissionConfig, Retries, Step, WorkspaceSpec
from pytest_rustchain.yamlload import JsonPath, LoadedYaml, load_yaml_file

__all__ = ["Limits", "LoadOptions", "load_mission", "mission_schema"]

#: Environment names a mission may not set: they change how programs load code.
LOADER_ENV = frozenset(
    {"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "BASH_ENV", "ENV", "PYTHONSTARTUP", "PYTHONHOME",
     "NODE_OPTIONS", "PERL5OPT", "RUBYOPT", "PROMPT_COMMAND", "SHELLOPTS", "BASHOPTS", "IFS"}
)

#: RustChain's parameter spellings, accepted in compatibility mode.
COMPAT_PARAM_ALIASES = {"working_directory": "working_dir", "file_path": "path", "cwd": "working_dir"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Ceilings from the configuration; a mission may go below them, never above."""

    max_steps: int = 1000
    max_timeout_seconds: float = 86400.0
    mission_timeout_seconds: float | None = None
    max_file_bytes: int = 1_048_576


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadOptions:
    compat: bool = False
    rootdir: Path | None = None
    limits: Limits = Limits()


@functools.cache
def mission_schema() -> dict[str, Any]:
    text = resources.files("pytest_rustchain").joinpath("schema/mission.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(mission_schema())


@functools.cache
def _param_validator(step_type: str) -> jsonschema.Draft202012Validator:
    schema = steps.registry()[step_type].schema
    return jsonschema.Draft202012Validator(schema)


#: Keywords whose meaning differs from draft 7; a schema using them skips the compiled fast path.
_NEWER_KEYWORDS = frozenset(
    {"prefixItems", "dependentRequired", "dependentSchemas", "unevaluatedProperties", "unevaluatedItems",
     "$dynamicRef", "$dynamicAnchor", "$anchor", "$recursiveRef"}
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
    jsonschema's, which matters when a repository holds a thousand missions.
    """
    schema = mission_schema() if key == "" else steps.registry()[key].schema
    if _uses_newer_keywords(schema):
        return None
    draft7 = {**schema, "$schema": "http://json-schema.org/draft-07/schema#"}
    return fastjsonschema.compile(draft7)


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

    def __init__(self, display: str, loaded: LoadedYaml) -> None:
        self.display = display
        self.loaded = loaded

    def error(
        self, what: str, path: JsonPath = (), *, hint: str = "", details: Iterable[str] = (), at_key: bool = False
    ) -> MissionFormatError:
        pos = (self.loaded.key_marks.get(path) if at_key else None) or self.loaded.position(path)
        line, col = pos if pos else (None, None)
        if not hint:
            hint = self._surprise_hint(path)
        return MissionFormatError(
            what, path=self.display, line=line, col=col, json_path=_fmt_path(path) if path else "",
            hint=hint, details=tuple(details),
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


def _unknown_keys(error: ValidationError) -> list[str]:
    if not isinstance(error.instance, dict):
        return []
    props = error.schema.get("properties", {})
    return [k for k in error.instance if k not in props and not k.startswith("x-")]


def _schema_error(ctx: _Ctx, error: ValidationError, *, where: str = "", known: Iterable[str] = ()) -> MissionFormatError:
    path: JsonPath = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        unknown = _unknown_keys(error)
        key = unknown[0] if unknown else "?"
        choices = list(known) or list(error.schema.get("properties", {}))
        match = steps.closest(key, choices)
        hint = f"did you mean '{match}'?" if match else f"allowed keys: {', '.join(sorted(choices))}."
        if not where:
            hint += " Free-form data goes under 'metadata' or a key starting with 'x-'."
        return ctx.error(f"unknown key '{key}'{where}", (*path, key), hint=hint, at_key=True)
    if error.validator == "type":
        expected = error.validator_value
        exp = " or ".join(expected) if isinstance(expected, list) else expected
        return ctx.error(f"expected {exp}, got {_describe(error.instance)}{where}", path)
    if error.validator == "required":
        return ctx.error(f"{error.message}{where}", path)
    if error.validator == "pattern" and path and path[-1] == "id":
        return ctx.error(
            f"invalid step id {error.instance!r}{where}", path,
            hint="ids start with a letter and use only letters, digits, '-' and '_' (at most 64)",
        )
    if error.validator in ("maximum", "exclusiveMinimum", "minimum", "exclusiveMaximum"):
        return ctx.error(f"{_describe(error.instance)} is out of range: {error.message}{where}", path)
    if error.validator == "minItems" and path == ("steps",):
        return ctx.error("a mission needs at least one step", path)
    if error.validator == "oneOf" and error.context:
        best = jsonschema.exceptions.best_match(error.context)
        return ctx.error(f"{best.message}{where}", path)
    return ctx.error(f"{error.message}{where}", path)


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


def load_mission(path: Path, *, display_path: str | None = None, options: LoadOptions = LoadOptions()) -> Mission:
    """Load and check one mission file; raise ``MissionFormatError`` with a clean message."""
    display = display_path or str(path)
    loaded = load_yaml_file(path, display_path=display, max_bytes=options.limits.max_file_bytes)
    ctx = _Ctx(display, loaded)
    data = loaded.data
    warnings: list[str] = []
    if options.compat:
        data = _compat_strip(ctx, data, warnings)
    errors = [] if _is_valid_fast("", data) else list(_validator().iter_errors(data))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        raise _schema_error(ctx, error)
    return _build(path, ctx, data, warnings, options)


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
                warnings.append(f"{ctx.display}{line}: unknown key '{k}' at {_fmt_path(where)} ignored (RustChain compatibility)")
        return out

    data = strip(data, top_known, ())
    if isinstance(data.get("config"), dict):
        data["config"] = strip(data["config"], config_known, ("config",))
    if isinstance(data.get("steps"), list):
        data["steps"] = [
            strip(s, step_known, ("steps", i)) if isinstance(s, dict) else s for i, s in enumerate(data["steps"])
        ]
    return data


def _build(path: Path, ctx: _Ctx, data: dict[str, Any], warnings: list[str], options: LoadOptions) -> Mission:
    limits = options.limits
    raw_steps: list[dict[str, Any]] = data["steps"]
    if len(raw_steps) > limits.max_steps:
        raise ctx.error(
            f"{len(raw_steps)} steps is more than the allowed {limits.max_steps}", ("steps",),
            hint="split the mission, or raise mission_max_steps in the pytest configuration",
        )
    config = _build_config(ctx, data.get("config", {}), path, options)
    known_types = sorted(steps.registry())
    built: list[Step] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_steps):
        where: JsonPath = ("steps", index)
        sid = raw["id"]
        if sid in seen:
            first = ctx.loaded.position(("steps", seen[sid]))
            first_line = f" (first at line {first[0]})" if first else ""
            raise ctx.error(f"duplicate step id '{sid}'{first_line}", (*where, "id"), hint="give every step its own id")
        seen[sid] = index
        type_name = raw.get("step_type", raw.get("type"))
        if type_name is None:
            raise ctx.error(f"step '{sid}' has no step_type", where, hint=f"supported: {', '.join(known_types)}")
        if "step_type" in raw and "type" in raw:
            raise ctx.error(f"step '{sid}' has both step_type and type", (*where, "type"), hint="keep one of them")
        type_key = "step_type" if "step_type" in raw else "type"
        canonical = steps.canonical_name(type_name)
        if canonical is None:
            match = steps.closest(type_name, known_types)
            hint = (f"did you mean '{match}'? " if match else "") + f"supported: {', '.join(known_types)}"
            raise ctx.error(f"step '{sid}': step type '{type_name}' is not supported", (*where, type_key), hint=hint)
        params = dict(raw.get("parameters", {}))
        params = _check_params(ctx, sid, canonical, params, (*where, "parameters"), options.compat, warnings)
        timeout = raw.get("timeout_seconds")
        if timeout is not None and timeout > limits.max_timeout_seconds:
            raise ctx.error(
                f"step '{sid}': timeout_seconds {timeout} is above the allowed {limits.max_timeout_seconds:g}",
                (*where, "timeout_seconds"), hint="a mission may lower the configured limits, never raise them",
            )
        env = {k: str(v) if not isinstance(v, bool) else str(v).lower() for k, v in raw.get("env", {}).items()}
        _check_env(ctx, env, (*where, "env"))
        retries = raw.get("retries", {})
        built.append(
            Step(
                id=sid,
                name=raw.get("name", sid),
                step_type=canonical,
                parameters=params,
                depends_on=tuple(raw.get("depends_on", ())),
                timeout_seconds=timeout,
                continue_on_error=raw.get("continue_on_error", False),
                condition=raw.get("if", "success()").strip(),
                retries=Retries(
                    count=retries.get("count", 0),
                    delay_seconds=retries.get("delay_seconds", 0.0),
                    backoff=retries.get("backoff", 1.0),
                ),
                expect=raw.get("expect", {}),
                env=env,
                render=raw.get("render", True),
                line=(ctx.loaded.position(where) or (0, 0))[0],
            )
        )
    for index, step in enumerate(built):
        for dep in step.depends_on:
            if dep not in seen:
                match = steps.closest(dep, list(seen))
                hint = f"did you mean '{match}'?" if match else f"step ids: {', '.join(seen)}"
                raise ctx.error(f"step '{step.id}' depends on unknown step '{dep}'", ("steps", index, "depends_on"), hint=hint)
    cycle = plan.find_cycle(built)
    if cycle:
        first = seen[cycle[0]]
        raise ctx.error(
            f"dependency cycle: {' -> '.join(cycle)}", ("steps", first, "depends_on"),
            hint="remove one of these depends_on entries",
        )
    for index, step in enumerate(built):
        if step.render:
            for spath, text in _walk_strings(dict(step.parameters), ()):
                if templating.has_template(text):
                    problem = templating.check_syntax(text)
                    if problem:
                        raise ctx.error(f"step '{step.id}': {problem}", ("steps", index, "parameters", *spath))
        if step.condition not in ("success()", "failure()", "always()"):
            problem = templating.check_expression(step.condition)
            if problem:
                raise ctx.error(f"step '{step.id}': if: {problem}", ("steps", index, "if"))
    env = {k: str(v) if not isinstance(v, bool) else str(v).lower() for k, v in data.get("env", {}).items()}
    _check_env(ctx, env, ("env",))
    marks, skip, xfail = _marks(data.get("marks", []))
    version = data.get("version", "1.0")
    return Mission(
        path=path,
        display_path=ctx.display,
        stem=_stem(path),
        name=data.get("name") or _stem(path),
        steps=tuple(built),
        version=str(version),
        description=data.get("description", ""),
        config=config,
        vars=data.get("vars", {}),
        env=env,
        marks=marks,
        skip=skip,
        xfail=xfail,
        metadata=data.get("metadata", {}),
        next_missions=tuple(path.parent / p for p in data.get("next_missions", ())),
        warnings=tuple(warnings),
        compat=options.compat,
    )


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".mission.yaml", ".mission.yml", ".yaml", ".yml"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


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
    for name in env:
        if name in LOADER_ENV:
            raise ctx.error(
                f"env may not set {name}: it changes how programs load code", (*where, name),
                hint=f"remove {name}; set what the program needs through its own options",
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
                warnings.append(f"{ctx.display}: step '{sid}': unknown parameter '{key}' of {step_type} ignored (RustChain compatibility)")
                del params[key]
    errors = [] if _is_valid_fast(step_type, params) else list(_param_validator(step_type).iter_errors(params))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        shifted = _shift(error, where)
        raise _schema_error(ctx, shifted, where=f" (step '{sid}', {step_type})", known=known)
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
            ("config", "timeout_seconds"), hint="a mission may lower the configured limits, never raise them",
        )
    mission_timeout = raw.get("mission_timeout_seconds", limits.mission_timeout_seconds)
    if limits.mission_timeout_seconds is not None and mission_timeout is not None and mission_timeout > limits.mission_timeout_seconds:
        raise ctx.error(
            f"mission_timeout_seconds {mission_timeout} is above the allowed {limits.mission_timeout_seconds:g}",
            ("config", "mission_timeout_seconds"), hint="a mission may lower the configured limits, never raise them",
        )
    threshold = raw.get("success_threshold")
    ws_raw = raw.get("workspace", "tmp")
    if isinstance(ws_raw, dict):
        source = (path.parent / ws_raw["copy"]).resolve()
        root = (options.rootdir or path.parent).resolve()
        if not source.is_relative_to(root):
            raise ctx.error(
                f"workspace copy source '{ws_raw['copy']}' is outside the project", ("config", "workspace", "copy"),
                hint="seed the workspace from a directory inside the pytest rootdir",
            )
        if not source.is_dir():
            raise ctx.error(
                f"workspace copy source '{ws_raw['copy']}' is not a directory", ("config", "workspace", "copy"),
                hint="the path is relative to the mission file",
            )
        workspace = WorkspaceSpec(kind="copy", copy_from=source)
    else:
        workspace = WorkspaceSpec(kind=ws_raw)
    return MissionConfig(
        timeout_seconds=float(timeout),
        mission_timeout_seconds=mission_timeout,
        fail_fast=raw.get("fail_fast", threshold is None),
        success_threshold=threshold,
        workspace=workspace,
        safety=raw.get("safety"),
    )


def sniff_mission(path: Path) -> bool:
    """Compatibility mode collects any ``*.yaml`` whose top level has ``name`` and ``steps``."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536)
    except OSError:
        return False
    text = head.decode("utf-8", "replace")
    lines = [ln for ln in text.splitlines() if ln and not ln[0].isspace() and not ln.startswith("#")]
    return any(ln.startswith("steps:") for ln in lines) and any(ln.startswith("name:") for ln in lines)
