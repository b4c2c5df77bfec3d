"""Data step types: parse_json, parse_yaml and validate_schema."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped,unused-ignore]
import pytest
from stepkit import make_ctx, run, schema_accepts

from pytest_rustchain.errors import PathEscapeError, StepError
from pytest_rustchain.steps import data
from pytest_rustchain.steps.base import StepContext, registry

DATA_STEPS = ("parse_json", "parse_yaml", "validate_schema")


@pytest.fixture
def ctx(ws: Path) -> StepContext:
    return make_ctx(ws)


def fails(step: str, ctx: StepContext, **params: Any) -> StepError:
    with pytest.raises(StepError) as info:
        run(step, ctx, **params)
    return info.value


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any network attempt fail the test loudly."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the step tried to reach the network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


# ---------------------------------------------------------------------------------------------
# registration and parameter schemas


@pytest.mark.parametrize("name", DATA_STEPS)
def test_step_type_is_registered_with_a_valid_schema(name: str) -> None:
    """Each data step type exists, counts as 'data' and has a valid strict schema."""
    step_type = registry()[name]
    assert step_type.family == "data"
    jsonschema.Draft202012Validator.check_schema(step_type.schema)
    assert step_type.schema["additionalProperties"] is False


@pytest.mark.parametrize("name", ["parse_json", "parse_yaml"])
def test_parse_needs_exactly_one_source(name: str) -> None:
    """`content` or `path`, exactly one: the schema says so."""
    assert schema_accepts(name, {"content": "1"})
    assert schema_accepts(name, {"path": "a.json"})
    assert not schema_accepts(name, {})
    assert not schema_accepts(name, {"content": "1", "path": "a.json"})
    assert not schema_accepts(name, {"text": "1"})


@pytest.mark.parametrize("name", ["parse_json", "parse_yaml"])
def test_parse_with_both_sources_fails_clearly_without_the_schema(ctx: StepContext, name: str) -> None:
    """Even unvalidated, two sources are a clear error."""
    with pytest.raises(StepError, match="exactly one of content or path"):
        run(name, ctx, check_schema=False, content="1", path="x")


def test_validate_schema_parameters_pair_up() -> None:
    """validate_schema needs one instance (`data`/`path`) and one schema (`schema`/`schema_path`)."""
    assert schema_accepts("validate_schema", {"data": None, "schema": {}})
    assert schema_accepts("validate_schema", {"path": "d.json", "schema_path": "s.json"})
    assert schema_accepts("validate_schema", {"data": [1], "schema": True})
    assert not schema_accepts("validate_schema", {"data": 1})
    assert not schema_accepts("validate_schema", {"schema": {}})
    assert not schema_accepts("validate_schema", {"data": 1, "path": "x", "schema": {}})
    assert not schema_accepts("validate_schema", {"data": 1, "schema": {}, "schema_path": "s.json"})
    assert not schema_accepts("validate_schema", {"data": 1, "schema": "not a schema"})


def test_validate_schema_without_the_schema_check_fails_clearly(ctx: StepContext) -> None:
    """Even unvalidated, a missing schema or instance is a clear error."""
    with pytest.raises(StepError, match="exactly one of schema or schema_path"):
        run("validate_schema", ctx, check_schema=False, data=1)
    with pytest.raises(StepError, match="exactly one of data or path"):
        run("validate_schema", ctx, check_schema=False, schema={})


# ---------------------------------------------------------------------------------------------
# parse_json


def test_parse_json_content(ctx: StepContext) -> None:
    """JSON text becomes data."""
    assert run("parse_json", ctx, content='{"a": [1, 2.5, null, true, "x"]}') == {
        "data": {"a": [1, 2.5, None, True, "x"]}
    }


def test_parse_json_file(ws: Path, ctx: StepContext) -> None:
    """A JSON file in the workspace (with a byte order mark) becomes data."""
    (ws / "d.json").write_bytes(b'\xef\xbb\xbf{"ok": true}')
    assert run("parse_json", ctx, path="d.json") == {"data": {"ok": True}}


def test_parse_json_error_shows_line_column_and_excerpt(ctx: StepContext) -> None:
    """Invalid JSON fails with line:column and a caret under the spot."""
    error = fails("parse_json", ctx, content='{\n  "a": 1,\n  "b": [1, 2,, 3]\n}')
    assert error.message.splitlines() == [
        "invalid JSON in content at line 3, column 14: Expecting value",
        '  3 |   "b": [1, 2,, 3]',
        "    |              ^",
    ]


def test_parse_json_error_names_the_file(ws: Path, ctx: StepContext) -> None:
    """With `path`, the message names the file."""
    (ws / "bad.json").write_text('{"a": }')
    error = fails("parse_json", ctx, path="bad.json")
    assert error.message.startswith("invalid JSON in 'bad.json' at line 1, column 7:")


def test_parse_json_excerpt_of_a_long_line_is_trimmed(ctx: StepContext) -> None:
    """A minified file does not print a megabyte line: the excerpt is a window around the error."""
    text = "[" + "1," * 5000 + "]"
    lines = fails("parse_json", ctx, content=text).message.splitlines()
    assert len(lines[1]) < 120
    assert lines[2].endswith("^")


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}', "1e400"])
def test_parse_json_refuses_values_json_cannot_hold(ctx: StepContext, text: str) -> None:
    """NaN and infinities are not JSON, whatever Python's parser accepts."""
    assert "HINT: use null or a string" in fails("parse_json", ctx, content=text).message


def test_parse_json_refuses_deep_nesting_cleanly(ctx: StepContext) -> None:
    """Deeply nested JSON fails with a message, not a RecursionError."""
    message = fails("parse_json", ctx, content="[" * 100_000 + "]" * 100_000).message
    assert "nested too deeply" in message
    message = fails("parse_json", ctx, content="[" * 300 + "]" * 300).message
    assert "nested too deeply" in message


def test_parse_json_of_a_huge_integer_is_a_clean_error(ctx: StepContext) -> None:
    """An integer longer than Python converts fails with the reason."""
    assert fails("parse_json", ctx, content="1" * 5000).message.startswith("invalid JSON in content:")


def test_parse_json_missing_file_fails(ctx: StepContext) -> None:
    """A missing file fails with its path."""
    assert fails("parse_json", ctx, path="nope.json").message == "no such file: 'nope.json'"


def test_parse_json_path_is_contained(ctx: StepContext) -> None:
    """parse_json reads files with the same containment as file steps."""
    with pytest.raises(PathEscapeError):
        run("parse_json", ctx, path="/etc/passwd")
    with pytest.raises(PathEscapeError):
        run("parse_json", ctx, path=".git/config")


def test_parse_json_file_that_is_not_utf8_fails(ws: Path, ctx: StepContext) -> None:
    """A file that is not UTF-8 fails with the offset of the bad byte."""
    (ws / "d.json").write_bytes(b'{"a": "\xff"}')
    assert fails("parse_json", ctx, path="d.json").message == "'d.json' is not UTF-8 text: undecodable byte at offset 7"


def test_parse_json_respects_the_size_limit(ws: Path) -> None:
    """Content or files above max_file_bytes are refused before parsing."""
    small = make_ctx(ws, max_file_bytes=10)
    assert "too large" in fails("parse_json", small, content="[" + "1," * 10 + "1]").message
    (ws / "big.json").write_text("[" + "1," * 10 + "1]")
    assert "too large" in fails("parse_json", small, path="big.json").message


# ---------------------------------------------------------------------------------------------
# parse_yaml


def test_parse_yaml_content(ctx: StepContext) -> None:
    """YAML text becomes JSON-compatible data."""
    text = "name: demo\nitems:\n  - 1\n  - two\n  - null\nflag: true\nratio: 0.5\n"
    assert run("parse_yaml", ctx, content=text) == {
        "data": {"name": "demo", "items": [1, "two", None], "flag": True, "ratio": 0.5}
    }


def test_parse_yaml_file(ws: Path, ctx: StepContext) -> None:
    """A YAML file in the workspace becomes data; anchors and merges work."""
    (ws / "c.yaml").write_text("base: &b {x: 1}\nchild:\n  <<: *b\n  y: 2\n")
    assert run("parse_yaml", ctx, path="c.yaml")["data"] == {"base": {"x": 1}, "child": {"x": 1, "y": 2}}


def test_parse_yaml_empty_document_is_null(ctx: StepContext) -> None:
    """An empty document is null, as YAML says."""
    assert run("parse_yaml", ctx, content="") == {"data": None}


def test_parse_yaml_error_shows_line_column_and_excerpt(ctx: StepContext) -> None:
    """Invalid YAML fails with line:column and a caret under the spot."""
    error = fails("parse_yaml", ctx, content="a: 1\nb: c: d\n")
    lines = error.message.splitlines()
    assert lines[0].startswith("invalid YAML in content at line 2, column 5: mapping values are not allowed")
    assert lines[1:] == ["  2 | b: c: d", "    |     ^"]


def test_parse_yaml_error_names_the_file(ws: Path, ctx: StepContext) -> None:
    """With `path`, the message names the file."""
    (ws / "bad.yml").write_text("key: [1, 2\n")
    assert fails("parse_yaml", ctx, path="bad.yml").message.startswith("invalid YAML in 'bad.yml' at line 2")


def test_parse_yaml_refuses_timestamps(ctx: StepContext) -> None:
    """An unquoted date is a YAML timestamp, not JSON: refused with a hint to quote it."""
    error = fails("parse_yaml", ctx, content="release: 2024-01-31\n")
    assert error.message.splitlines() == [
        "YAML in content holds a date at $.release, which is not a JSON type",
        "HINT: quote the value to keep it as text",
    ]


def test_parse_yaml_refuses_boolean_keys_with_an_explanation(ctx: StepContext) -> None:
    """`on:` is the boolean true in YAML 1.1: the message says why the key is not a string."""
    lines = fails("parse_yaml", ctx, content="on: push\n").message.splitlines()
    assert lines[0] == "YAML in content has a mapping key that is not a string: True at $"
    assert lines[-1].startswith("HINT: quote the key")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("200: ok\n", "mapping key that is not a string: 200"),
        ("data: !!binary aGVsbG8=\n", "binary data (!!binary)"),
        ("s: !!set {a, b}\n", "a set (!!set)"),
        ("x: .nan\n", "nan"),
        ("x: !!timestamp 2024-01-01T10:00:00Z\n", "a timestamp"),
    ],
)
def test_parse_yaml_refuses_types_json_cannot_hold(ctx: StepContext, text: str, fragment: str) -> None:
    """Binary, sets, NaN, timestamps and non-string keys are refused, naming the place."""
    assert fragment in fails("parse_yaml", ctx, content=text).message


def test_parse_yaml_refuses_python_tags(ctx: StepContext) -> None:
    """Python object tags are never constructed: the safe loader refuses them."""
    message = fails("parse_yaml", ctx, content="x: !!python/object/apply:os.system ['echo pwned']\n").message
    assert message.startswith("invalid YAML in content at line 1")
    assert "could not determine a constructor" in message


def test_parse_yaml_refuses_multiple_documents(ctx: StepContext) -> None:
    """A stream of several documents is an error, not the first one silently."""
    assert "single document" in fails("parse_yaml", ctx, content="a: 1\n---\nb: 2\n").message


def test_parse_yaml_billion_laughs_is_refused_quickly(ctx: StepContext) -> None:
    """Aliases that expand to billions of values fail fast instead of eating memory."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    started = time.monotonic()
    message = fails("parse_yaml", ctx, content="\n".join(lines) + "\n").message
    assert "expands to more than 2,000,000 values" in message
    assert time.monotonic() - started < 20


def test_parse_yaml_recursive_alias_is_refused(ctx: StepContext) -> None:
    """An alias inside the node it names would build a cycle: refused with its position."""
    message = fails("parse_yaml", ctx, content="a: &x\n  - 1\n  - *x\n").message
    assert message.startswith("invalid YAML in content at line 3, column 5: alias *x refers to a node that contains it")


@pytest.mark.parametrize(
    "text", ["[" * 30_000 + "]" * 30_000, "- " * 30_000 + "x\n", "{a: " * 30_000 + "1" + "}" * 30_000]
)
def test_parse_yaml_deep_nesting_is_refused_without_crashing(ctx: StepContext, text: str) -> None:
    """Nesting that would crash libyaml's composer is refused first, with a position."""
    message = fails("parse_yaml", ctx, content=text).message
    assert message.startswith("invalid YAML in content at line 1, column ")
    # libyaml's scanner stops flow nesting itself at 1000 levels; the event scan stops the rest at 200.
    assert "nested too deeply (the limit is 200 levels)" in message or "maximum nesting depth" in message


def test_parse_yaml_respects_the_size_limit(ws: Path) -> None:
    """YAML above max_file_bytes is refused before parsing."""
    assert "too large" in fails("parse_yaml", make_ctx(ws, max_file_bytes=5), content="a: 123456\n").message


def test_parse_yaml_path_is_contained(ws: Path, ctx: StepContext, tmp_path: Path) -> None:
    """parse_yaml does not read through a symlink that leaves the workspace."""
    (tmp_path / "secret.yaml").write_text("k: v\n")
    (ws / "s.yaml").symlink_to(tmp_path / "secret.yaml")
    with pytest.raises(PathEscapeError):
        run("parse_yaml", ctx, path="s.yaml")


def test_parse_yaml_text_is_public_for_other_steps() -> None:
    """The parsers are reusable by other modules with the same checks."""
    assert data.parse_yaml_text("a: [1]") == {"a": [1]}
    assert data.parse_json_text("[1]") == [1]


# ---------------------------------------------------------------------------------------------
# validate_schema


PERSON = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 2},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}


def test_valid_data_passes(ctx: StepContext) -> None:
    """Matching data passes with `valid: true` and no errors."""
    assert run("validate_schema", ctx, data={"name": "Ada", "age": 36}, schema=PERSON) == {"valid": True, "errors": []}


def test_invalid_data_fails_with_sorted_errors(ctx: StepContext) -> None:
    """Non-matching data fails the step; errors are `json.path: message`, sorted by path."""
    instance = {"name": "A", "age": -1, "tags": ["ok", 3, "x", 4] + ["y"] * 8 + [5], "extra": 1}
    error = fails("validate_schema", ctx, data=instance, schema=PERSON)
    expected = [
        "$: Additional properties are not allowed ('extra' was unexpected)",
        "$.age: -1 is less than the minimum of 0",
        "$.name: 'A' is too short",
        "$.tags[1]: 3 is not of type 'string'",
        "$.tags[3]: 4 is not of type 'string'",
        "$.tags[12]: 5 is not of type 'string'",
    ]
    assert error.outputs == {"valid": False, "errors": expected}
    assert error.message.splitlines() == ["data does not match the inline schema: 6 errors", *expected]


def test_errors_are_capped_at_twenty(ctx: StepContext) -> None:
    """Hundreds of errors are listed 20 at most, and the message counts the rest."""
    error = fails("validate_schema", ctx, data=list(range(100)), schema={"items": {"type": "string"}})
    assert len(error.outputs["errors"]) == 20  # type: ignore[arg-type]
    assert error.message.splitlines()[0] == "data does not match the inline schema: 100 errors"
    assert error.message.splitlines()[-1] == "... and 80 more"


def test_long_error_messages_are_trimmed(ctx: StepContext) -> None:
    """An error quoting a huge value does not flood the report."""
    error = fails("validate_schema", ctx, data="x" * 10_000, schema={"type": "integer"})
    assert len(error.message) < 400


def test_validate_files_by_path(ws: Path, ctx: StepContext) -> None:
    """Instance and schema can both come from files, JSON or YAML by extension."""
    (ws / "person.yaml").write_text("name: Ada\nage: 36\n")
    (ws / "person.schema.json").write_text(json.dumps(PERSON))
    assert run("validate_schema", ctx, path="person.yaml", schema_path="person.schema.json")["valid"] is True
    (ws / "bad.json").write_text('{"name": "A"}')
    (ws / "schema.yml").write_text("type: object\nproperties:\n  name: {minLength: 2}\n")
    error = fails("validate_schema", ctx, path="bad.json", schema_path="schema.yml")
    assert error.message.splitlines()[0] == "'bad.json' does not match the schema 'schema.yml': 1 error"


def test_schema_keyword_picks_the_draft(ctx: StepContext) -> None:
    """`$schema` chooses the draft: draft-07 `dependencies` is enforced, 2020-12 ignores it."""
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", "dependencies": {"a": ["b"]}}
    fails("validate_schema", ctx, data={"a": 1}, schema=draft7)
    default = {"dependencies": {"a": ["b"]}}
    assert run("validate_schema", ctx, data={"a": 1}, schema=default)["valid"] is True


def test_default_draft_is_2020_12(ctx: StepContext) -> None:
    """Without `$schema`, 2020-12 keywords such as prefixItems apply."""
    schema = {"prefixItems": [{"type": "integer"}], "items": False}
    assert run("validate_schema", ctx, data=[1], schema=schema)["valid"] is True
    fails("validate_schema", ctx, data=[1, 2], schema=schema)


def test_unknown_schema_uri_is_a_clean_error(ctx: StepContext) -> None:
    """An unknown `$schema` is named, with the one to use."""
    error = fails("validate_schema", ctx, data=1, schema={"$schema": "https://example.com/my-draft"})
    assert error.message.splitlines()[0] == "the inline schema names an unknown $schema: 'https://example.com/my-draft'"
    assert error.message.splitlines()[-1].startswith("HINT: use https://json-schema.org/draft/2020-12/schema")


def test_invalid_schema_is_a_clean_error(ctx: StepContext) -> None:
    """A schema that breaks its metaschema fails with the reason and where, not a SchemaError."""
    error = fails("validate_schema", ctx, data=1, schema={"type": "nope"})
    lines = error.message.splitlines()
    assert lines[0].startswith("the inline schema is not a valid JSON Schema:")
    assert lines[1] == "at $.type"


def test_schema_file_that_is_not_a_mapping_fails(ws: Path, ctx: StepContext) -> None:
    """A schema file holding a list is not a schema."""
    (ws / "s.json").write_text("[1]")
    error = fails("validate_schema", ctx, data=1, schema_path="s.json")
    assert "is not a JSON Schema: it is a list" in error.message


def test_boolean_schemas_work(ctx: StepContext) -> None:
    """`true` accepts anything, `false` nothing."""
    assert run("validate_schema", ctx, data={"x": 1}, schema=True)["valid"] is True
    fails("validate_schema", ctx, data={"x": 1}, schema=False)


def test_local_refs_resolve(ctx: StepContext) -> None:
    """`$ref` into `$defs` works."""
    schema = {"$defs": {"pos": {"type": "integer", "minimum": 1}}, "items": {"$ref": "#/$defs/pos"}}
    assert run("validate_schema", ctx, data=[1, 2], schema=schema)["valid"] is True
    assert fails("validate_schema", ctx, data=[0], schema=schema).outputs["errors"] == [
        "$[0]: 0 is less than the minimum of 1"
    ]


def test_metaschema_ref_resolves_offline(ctx: StepContext, no_network: None) -> None:
    """A `$ref` to a published metaschema is served from the bundled copies, not fetched."""
    schema = {"$ref": "https://json-schema.org/draft/2020-12/schema"}
    assert run("validate_schema", ctx, data={"type": "string"}, schema=schema)["valid"] is True
    fails("validate_schema", ctx, data={"type": 12}, schema=schema)


@pytest.mark.parametrize(
    "ref",
    ["https://example.com/schemas/person.json", "http://169.254.169.254/latest", "other.json", "file:///etc/passwd"],
)
def test_remote_refs_are_never_fetched(ctx: StepContext, no_network: None, ref: str) -> None:
    """A `$ref` to another document fails with a hint, and nothing touches the network or disk."""
    error = fails("validate_schema", ctx, data={"a": 1}, schema={"properties": {"a": {"$ref": ref}}})
    assert error.message.splitlines() == [
        f"cannot resolve $ref {ref!r} in the inline schema",
        "references to other documents are never fetched",
        'HINT: copy the referenced schema under $defs and use "$ref": "#/$defs/<name>"',
    ]


def test_missing_local_ref_is_a_clean_error(ctx: StepContext) -> None:
    """A `$ref` to a `$defs` entry that does not exist fails cleanly."""
    error = fails("validate_schema", ctx, data=1, schema={"$ref": "#/$defs/missing"})
    assert error.message.startswith("cannot resolve $ref")


def test_instance_file_errors_are_parse_errors(ws: Path, ctx: StepContext) -> None:
    """A broken instance file fails as a parse error with an excerpt."""
    (ws / "d.yaml").write_text("a: [\n")
    assert fails("validate_schema", ctx, path="d.yaml", schema=True).message.startswith("invalid YAML in 'd.yaml'")


def test_validate_schema_paths_are_contained(ctx: StepContext) -> None:
    """Instance and schema files are read with workspace containment."""
    with pytest.raises(PathEscapeError):
        run("validate_schema", ctx, path="../d.json", schema=True)
    with pytest.raises(PathEscapeError):
        run("validate_schema", ctx, data=1, schema_path="/etc/passwd")
