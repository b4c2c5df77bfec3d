"""Data step types: parse JSON or YAML, and validate data against a JSON Schema."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

import yaml

from pytest_rustchain import userregex
from pytest_rustchain.errors import StepError, shorten_values
from pytest_rustchain.paths import quote_path, read_regular, relative_posix, resolve_in_workspace
from pytest_rustchain.steps.base import Outputs, StepContext, StepType, register

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped,unused-ignore]
    from referencing import Resource

# jsonschema loads when a mission validates something, not in every run.

__all__ = ["FAMILY", "MAX_DEPTH", "MAX_ERRORS", "parse_json_text", "parse_yaml_text"]

FAMILY = "data"
MAX_DEPTH = 200
"""Deepest nesting accepted; deeper data breaks recursive consumers (and libyaml's composer)."""
MAX_YAML_VALUES = 2_000_000
"""Values a YAML document may expand to through aliases (the "billion laughs" document)."""
MAX_ERRORS = 20
"""Validation errors listed in the outputs and the failure message."""

_DEFAULT_SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"
# The C loader is about 9x faster; the pure-Python one is the fallback where libyaml is missing.
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

PARSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "content": {"type": "string", "description": "the text to parse"},
        "path": {"type": "string", "description": "a file inside the workspace to parse"},
    },
    "oneOf": [{"required": ["content"]}, {"required": ["path"]}],
}

VALIDATE_SCHEMA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "data": {"description": "the instance to validate (any JSON value)"},
        "path": {"type": "string", "description": "a JSON file (YAML for .yaml/.yml) to validate"},
        "schema": {"type": ["object", "boolean"], "description": "the JSON Schema, inline"},
        "schema_path": {"type": "string", "description": "a JSON or YAML file holding the schema"},
    },
    "allOf": [
        {"oneOf": [{"required": ["data"]}, {"required": ["path"]}]},
        {"oneOf": [{"required": ["schema"]}, {"required": ["schema_path"]}]},
    ],
}


# ---------------------------------------------------------------------------------------------
# parsing


def _printable(text: str) -> str:
    # Keep tabs so the caret line lines up; anything else unprintable would garble a terminal.
    return "".join(c if c.isprintable() or c == "\t" else "?" for c in text)


def _excerpt(text: str, line: int, col: int) -> list[str]:
    """Two lines showing ``line`` of ``text`` with a caret under column ``col`` (both 1-based)."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return []
    source = lines[line - 1].rstrip("\r")
    start = 0
    if len(source) > 100:
        start = max(0, min(col - 1 - 50, len(source) - 100))
    shown = source[start : start + 100]
    caret = "".join("\t" if c == "\t" else " " for c in shown[: max(0, col - 1 - start)])
    gutter = " " * len(str(line))
    return [f"  {line} | {_printable(shown)}", f"  {gutter} | {caret}^"]


def _parse_failure(kind: str, where: str, what: str, text: str, line: int | None, col: int | None) -> StepError:
    if line is None or col is None:
        return StepError(f"invalid {kind} in {where}: {what}")
    lines = [f"invalid {kind} in {where} at line {line}, column {col}: {what}", *_excerpt(text, line, col)]
    return StepError("\n".join(lines))


def _json_path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{parent}.{key}"
    return f"{parent}[{json.dumps(key)}]"


_YAML_KINDS = {
    "date": "a date",
    "datetime": "a timestamp",
    "bytes": "binary data (!!binary)",
    "set": "a set (!!set)",
    "tuple": "a tuple",
}


def _check_json_values(data: Any, kind: str, where: str, *, max_values: int | None) -> None:
    """Refuse what JSON cannot hold (timestamps, binary, non-string keys, NaN) and bomb-sized data.

    Iterative, so depth is reported instead of overflowing the stack; shared alias nodes are counted
    each time they are reached, which is what a consumer walking the data would pay.
    """
    pending: list[tuple[Any, str, int]] = [(data, "$", 0)]
    seen = 0
    while pending:
        value, path, depth = pending.pop()
        seen += 1
        if max_values is not None and seen > max_values:
            raise StepError(
                f"{kind} in {where} expands to more than {max_values:,} values\n"
                "its aliases repeat the same nodes over and over (a 'billion laughs' document)"
            )
        if depth > MAX_DEPTH:
            raise StepError(f"{kind} in {where} is nested too deeply: more than {MAX_DEPTH} levels at {path}")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    lines = [f"{kind} in {where} has a mapping key that is not a string: {key!r} at {path}"]
                    if isinstance(key, bool):
                        lines.append("YAML 1.1 reads on/off/yes/no/true/false as booleans")
                    lines.append("HINT: quote the key to make it a string (JSON keys are strings)")
                    raise StepError("\n".join(lines))
                pending.append((item, _json_path(path, key), depth + 1))
        elif isinstance(value, list):
            pending.extend((item, _json_path(path, index), depth + 1) for index, item in enumerate(value))
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise StepError(
                    f"{kind} in {where} holds {value!r} at {path}, which JSON cannot represent\n"
                    "HINT: use null or a string"
                )
        elif not (value is None or isinstance(value, (str, bool, int))):
            name = type(value).__name__
            described = _YAML_KINDS.get(name, f"a {name}")
            raise StepError(
                f"{kind} in {where} holds {described} at {path}, which is not a JSON type\n"
                "HINT: quote the value to keep it as text"
            )


def _refuse_constant(name: str) -> Any:
    raise _ConstantError(name)


class _ConstantError(ValueError):
    pass


def parse_json_text(text: str, where: str = "content") -> Any:
    """Parse strict JSON (no NaN or Infinity), with a line:column excerpt on error."""
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise _parse_failure("JSON", where, exc.msg, text, exc.lineno, exc.colno) from None
    except _ConstantError as exc:
        raise StepError(f"invalid JSON in {where}: {exc} is not JSON\nHINT: use null or a string") from None
    except RecursionError:
        raise StepError(f"invalid JSON in {where}: nested too deeply (the limit is {MAX_DEPTH} levels)") from None
    except ValueError as exc:
        # For example an integer with more digits than Python converts.
        raise StepError(f"invalid JSON in {where}: {exc}") from None
    _check_json_values(data, "JSON", where, max_values=None)
    return data


def _yaml_failure(where: str, what: str, text: str, mark: Any) -> StepError:
    if mark is None:
        return StepError(f"invalid YAML in {where}: {what}")
    return _parse_failure("YAML", where, what, text, mark.line + 1, mark.column + 1)


def _scan_yaml(text: str, where: str) -> None:
    """Check nesting depth and self-referencing aliases on the event stream, before composing.

    libyaml's parser is iterative but its composer recurses, and crashes the process at about
    25,000 levels; an alias to a node that is still open builds a cyclic structure.
    """
    depth = 0
    open_anchors: list[str | None] = []
    for event in yaml.parse(text, Loader=_YAML_LOADER):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            open_anchors.append(event.anchor)
            if depth > MAX_DEPTH:
                what = f"nested too deeply (the limit is {MAX_DEPTH} levels)"
                raise _yaml_failure(where, what, text, event.start_mark)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            open_anchors.pop()
        elif isinstance(event, yaml.AliasEvent) and event.anchor in open_anchors:
            what = f"alias *{event.anchor} refers to a node that contains it"
            raise _yaml_failure(where, what, text, event.start_mark)


def parse_yaml_text(text: str, where: str = "content") -> Any:
    """Parse one YAML document with the safe loader into JSON-compatible data."""
    try:
        _scan_yaml(text, where)
        data = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 (CSafeLoader or SafeLoader)
    except yaml.MarkedYAMLError as exc:
        # The context says what the parser was doing ("while parsing a flow sequence").
        what = "; ".join(part for part in (exc.context, exc.problem) if part) or "not YAML"
        raise _yaml_failure(where, what, text, exc.problem_mark or exc.context_mark) from None
    except yaml.YAMLError as exc:
        raise StepError(f"invalid YAML in {where}: {exc}") from None
    except RecursionError:
        raise StepError(f"invalid YAML in {where}: nested too deeply (the limit is {MAX_DEPTH} levels)") from None
    _check_json_values(data, "YAML", where, max_values=MAX_YAML_VALUES)
    return data


def _read_text(ctx: StepContext, given: str) -> tuple[str, str]:
    """The text of a workspace file and how to name it in messages."""
    path = resolve_in_workspace(ctx.workspace, given, cwd=ctx.cwd)
    where = quote_path(relative_posix(ctx.workspace, path))
    raw = read_regular(ctx.workspace, path, max_bytes=ctx.max_file_bytes)
    try:
        # utf-8-sig: a byte order mark written by some Windows editors is not part of the data.
        return raw.decode("utf-8-sig"), where
    except UnicodeDecodeError as exc:
        raise StepError(f"{where} is not UTF-8 text: undecodable byte at offset {exc.start}") from None


def _source(params: Mapping[str, Any], ctx: StepContext) -> tuple[str, str]:
    if ("content" in params) == ("path" in params):
        raise StepError("give exactly one of content or path")
    if "path" in params:
        return _read_text(ctx, str(params["path"]))
    text = str(params["content"])
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > ctx.max_file_bytes:
        raise StepError(f"content is too large: {size} bytes, the limit is {ctx.max_file_bytes}")
    return text, "content"


def parse_json(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
    text, where = _source(params, ctx)
    return {"data": parse_json_text(text, where)}


def parse_yaml(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
    text, where = _source(params, ctx)
    return {"data": parse_yaml_text(text, where)}


# ---------------------------------------------------------------------------------------------
# validate_schema


def _load_document(ctx: StepContext, given: str) -> tuple[Any, str]:
    text, where = _read_text(ctx, given)
    if given.lower().endswith((".yaml", ".yml")):
        return parse_yaml_text(text, where), where
    return parse_json_text(text, where), where


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped,unused-ignore]

    if validator.is_type(instance, "string") and not userregex.search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if userregex.search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, extra: Any, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped,unused-ignore]

    if not validator.is_type(instance, "object"):
        return
    listed = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    unexpected = [key for key in instance if key not in listed and not any(userregex.search(p, key) for p in patterns)]
    if validator.is_type(extra, "object"):
        for key in unexpected:
            yield from validator.descend(instance[key], extra, path=key)
    elif extra is False and unexpected:
        names = ", ".join(repr(key) for key in sorted(unexpected))
        verb = "was" if len(unexpected) == 1 else "were"
        yield ValidationError(f"Additional properties are not allowed ({names} {verb} unexpected)")


_TIMED_KEYWORDS = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}
"""Keywords that run a schema's regular expressions, with the time limit of ``userregex``."""


def _validator_class(schema: Any, where: str) -> Any:
    from jsonschema import validators  # type: ignore[import-untyped,unused-ignore]

    return validators.extend(_draft_class(schema, where), _TIMED_KEYWORDS)  # type: ignore[no-untyped-call,unused-ignore]


def _draft_class(schema: Any, where: str) -> Any:
    from jsonschema import validators  # type: ignore[import-untyped,unused-ignore]

    if not isinstance(schema, dict) or "$schema" not in schema:
        return validators.Draft202012Validator
    uri = schema["$schema"]
    found = validators.validator_for(schema, default=cast("Any", None)) if isinstance(uri, str) else None
    if found is None:
        raise StepError(
            f"{where} names an unknown $schema: {uri!r}\n"
            f"HINT: use {_DEFAULT_SCHEMA_URI} (or another published draft), or leave $schema out"
        )
    return found


def _path_key(path: Any) -> tuple[tuple[int, int, str], ...]:
    # Indexes sort numerically and before keys, so "$.a[2]" comes before "$.a[10]".
    return tuple((0, part, "") if isinstance(part, int) else (1, 0, str(part)) for part in path)


def validate_schema(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
    if ("data" in params) == ("path" in params):
        raise StepError("give exactly one of data or path (the instance to validate)")
    if ("schema" in params) == ("schema_path" in params):
        raise StepError("give exactly one of schema or schema_path")
    if "data" in params:
        instance, instance_where = params["data"], "data"
    else:
        instance, instance_where = _load_document(ctx, str(params["path"]))
    if "schema" in params:
        schema, schema_where = params["schema"], "the inline schema"
    else:
        schema, where = _load_document(ctx, str(params["schema_path"]))
        schema_where = f"the schema {where}"
    if not isinstance(schema, (dict, bool)):
        raise StepError(
            f"{schema_where} is not a JSON Schema: it is a {type(schema).__name__}, not a mapping or true/false"
        )

    from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped,unused-ignore]
    from jsonschema_specifications import REGISTRY as SPECIFICATIONS  # type: ignore[import-untyped,unused-ignore]
    from referencing import Registry
    from referencing.exceptions import Unresolvable

    cls = _validator_class(schema, schema_where)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        raise StepError(
            f"{schema_where} is not a valid JSON Schema: "
            f"{shorten_values(exc.message, (exc.instance, exc.validator_value))}\nat {exc.json_path}"
        ) from None

    refused: list[str] = []

    def refuse(uri: str) -> Resource[Any]:
        # Never fetch: a mission must not make the validator reach the network or the disk.
        refused.append(uri)
        raise LookupError(uri)

    # `retrieve` is an attrs field alias that mypy's attrs support does not see through.
    registry: Registry[Any] = Registry(retrieve=refuse).combine(SPECIFICATIONS)  # type: ignore[call-arg,unused-ignore]
    validator = cls(schema, registry=registry)
    try:
        found = sorted(
            validator.iter_errors(instance),
            key=lambda error: (_path_key(error.absolute_path), error.message),
        )
    except Unresolvable as exc:
        ref = str(getattr(exc, "ref", "") or "")
        if refused:
            raise StepError(
                f"cannot resolve $ref {quote_path(refused[0])} in {schema_where}\n"
                "references to other documents are never fetched\n"
                'HINT: copy the referenced schema under $defs and use "$ref": "#/$defs/<name>"'
            ) from None
        raise StepError(f"cannot resolve $ref {quote_path(ref)} in {schema_where}") from None
    except RecursionError:
        raise StepError(f"{instance_where} is nested too deeply to validate") from None
    except (userregex.PatternTimeout, userregex.PatternError) as exc:
        raise StepError(f"{schema_where}: {exc}") from None

    errors = [
        f"{error.json_path}: {shorten_values(error.message, (error.instance, error.validator_value))}"
        for error in found[:MAX_ERRORS]
    ]
    if not found:
        return {"valid": True, "errors": []}
    lines = [
        f"{instance_where} does not match {schema_where}: {len(found)} error{'s' if len(found) != 1 else ''}",
        *errors,
    ]
    if len(found) > MAX_ERRORS:
        lines.append(f"... and {len(found) - MAX_ERRORS} more")
    raise StepError("\n".join(lines), outputs={"valid": False, "errors": errors})


register(StepType(name="parse_json", schema=PARSE_SCHEMA, run=parse_json, family=FAMILY, paths={"path": "read"}))
register(StepType(name="parse_yaml", schema=PARSE_SCHEMA, run=parse_yaml, family=FAMILY, paths={"path": "read"}))
register(
    StepType(
        name="validate_schema",
        schema=VALIDATE_SCHEMA_SCHEMA,
        run=validate_schema,
        family=FAMILY,
        paths={"path": "read", "schema_path": "read"},
    )
)
