"""Unit tests of the hardened YAML loader: clean errors for hostile files, positions, YAML 1.1 notes."""

from __future__ import annotations

import ast
import functools
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_rustchain import yamlload
from pytest_rustchain.errors import MissionFormatError
from pytest_rustchain.yamlload import (
    MAX_DEPTH,
    MAX_NODES,
    LoadedYaml,
    load_yaml_file,
    load_yaml_text,
    read_mission_bytes,
)

T = TypeVar("T")

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "rustchain"


def _load(text: str | bytes) -> LoadedYaml:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return load_yaml_text(data, path="m.mission.yaml")


def _error(text: str | bytes) -> MissionFormatError:
    with pytest.raises(MissionFormatError) as info:
        _load(text)
    return info.value


def _within(seconds: float, call: Callable[[], T]) -> T:
    """Run ``call`` in a daemon thread so that a hang fails the test instead of the session."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def _alias_bomb(levels: int = 9) -> str:
    names = "abcdefghijklmnop"
    lines = [f"{names[0]}: &{names[0]} [" + ",".join(["lol"] * 9) + "]"]
    for i in range(1, levels):
        lines.append(f"{names[i]}: &{names[i]} [" + ",".join([f"*{names[i - 1]}"] * 9) + "]")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# HOSTILE.md section A: every malformed input gets one clean message at the right line

ROWS = [
    # (id, file content, expected fragment of the message, expected line)
    ("tab-indent", "steps:\n  - id: x\n\t  command: y\n", "tabs are not allowed in YAML indentation", 3),
    ("tab-first-column", "name: x\n\tsteps: []\n", "tabs are not allowed in YAML indentation", 2),
    ("tab-in-multiline-value", "name: x\ncommand: echo one\n\ttwo\n", "tabs are not allowed in YAML indentation", 3),
    ("tab-block-scalar", "content: |\n\techo hi\n", "tabs are not allowed in YAML indentation", 2),
    (
        "duplicate-key",
        "steps:\n  - id: a\n    command: x\n    args: []\n    command: y\n",
        "duplicate key 'command'",
        5,
    ),
    ("document-separator", "a: 1\n---\nb: 2\n", "second YAML document", 2),
    ("deep-1000", "[" * 1000, f"nesting deeper than {MAX_DEPTH} levels", 1),
    ("deep-50000", "[" * 50_000, f"nesting deeper than {MAX_DEPTH} levels", 1),
    ("deep-in-value", "steps: " + "{a: " * 1000, f"nesting deeper than {MAX_DEPTH} levels", 1),
    ("deep-block", "a:\n" + "".join("  " * i + "-\n" for i in range(1, 80)), "nesting deeper than", 65),
    ("alias-bomb", _alias_bomb(), "too many nodes after alias expansion", 6),
    ("invalid-utf8", b"name: ok\ncommand: caf\xe9\n", "not valid UTF-8 at byte 21", 2),
    ("utf16", "name: x\n".encode("utf-16"), "not valid UTF-8 at byte 0", 1),
    ("nul", b"name: a\x00b\n", "control character U+0000", 1),
    ("escape-char", "name: x\ncommand: echo \x1b[31m\n", "control character U+001B", 2),
    ("c1-control", "name: x\u0085y\n", "control character U+0085", 1),
    ("empty", "", "a mission file holds one mapping; this file is empty", None),
    ("only-comments", "# nothing here\n\n", "this file is empty", None),
    ("empty-document", "---\n", "a mission file holds one mapping", 2),
    ("two-documents", "name: a\n---\nname: b\n", "a mission file holds one mapping", 2),
    ("top-level-list", "- id: a\n- id: b\n", "a mission file holds one mapping; this file holds a list", 1),
    ("top-level-scalar", "just words\n", "a mission file holds one mapping", 1),
    ("python-tag", "name: !!python/object/apply:os.system [id]\n", "!!python/object/apply:os.system", 1),
    ("python-name-tag", "x: !!python/name:os.system\n", "!!python/name:os.system", 1),
    ("binary-tag", "name: x\ndata: !!binary aGVsbG8=\n", "the tag !!binary is not allowed", 2),
    ("set-tag", "name: x\nids: !!set {a, b}\n", "the tag !!set is not allowed", 2),
    ("omap-tag", "name: x\nids: !!omap [a: 1]\n", "the tag !!omap is not allowed", 2),
    ("timestamp-tag", "when: !!timestamp 2024-01-01\n", "the tag !!timestamp is not allowed", 1),
    ("local-tag", "name: x\nvalue: !Ref other\n", "the tag !Ref is not allowed", 2),
    ("complex-key-list", "name: x\n? [a, b]\n: 1\n", "cannot be a mapping key", 2),
    ("complex-key-map", "name: x\n{a: 1}: 2\n", "cannot be a mapping key", 2),
    ("tagged-key", "!!int 1: x\n", "keys must be text", 1),
    ("bidi-override", "name: x\ncommand: echo \u202eevil\n", "U+202E", 2),
    ("bidi-isolate", "steps:\n  - id: a\u2066b\n", "U+2066", 2),
    ("zero-width-space", "steps:\n  - id: de\u200bploy\n", "U+200B", 2),
    ("zero-width-joiner", "name: a\u200db\n", "U+200D", 1),
    ("word-joiner", "name: a\u2060b\n", "U+2060", 1),
    ("bom-not-at-start", "name: a\ufeffb\n", "U+FEFF", 1),
    ("line-separator", "name: a\u2028b\n", "U+2028", 1),
    ("unknown-alias", "name: *nothing\n", "unknown alias *nothing", 1),
    ("recursive-alias", "a: &loop [*loop]\n", "recursive", 1),
    ("duplicate-anchor", "a: &x 1\nb: &x 2\n", "anchor &x is defined twice (lines 1 and 2)", 2),
    ("unclosed-quote", 'name: x\ncommand: "echo\n\nnext: 1\n', "quoted string is never closed", 2),
    ("colon-in-value", "name: x\ncommand: echo a: b\n", "unexpected ':'", 2),
    ("reserved-char", "name: x\ncommand: @run\n", "'@' cannot start a value", 2),
    ("bad-indent", "steps:\n  - id: a\n   name: b\n", "invalid YAML", 3),
    ("bad-int-tag", "timeout: !!int ten\n", "'ten' is not a valid !!int", 1),
    ("bad-merge", "a: {<<: 1}\n", "merge key (<<) must be a mapping", 1),
]


@pytest.mark.parametrize(("text", "fragment", "line"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_malformed_file_gets_one_clean_error(text: str | bytes, fragment: str, line: int | None) -> None:
    """Each hostile file is refused with a readable message at the line a user must fix."""
    err = _error(text)
    assert fragment in str(err)
    assert err.line == line
    assert err.path == "m.mission.yaml"
    assert "Traceback" not in str(err)
    if line is not None:
        assert str(err).startswith(f"m.mission.yaml:{line}:")


@pytest.mark.parametrize("text", [r[1] for r in ROWS], ids=[r[0] for r in ROWS])
def test_errors_with_a_fix_carry_a_hint(text: str | bytes) -> None:
    """A refused file tells the user how to fix it, not only what is wrong."""
    assert _error(text).hint


def test_errors_have_a_column() -> None:
    """Errors point at the column too, so editors jump to the character."""
    err = _error("name: x\ncommand: echo \u202eevil\n")
    assert (err.line, err.col) == (2, 15)
    err = _error(b"ab: c\xff")
    assert (err.line, err.col) == (1, 6)
    err = _error("a: 1\r\nb: \x07\r\n")
    assert (err.line, err.col) == (2, 4)


def test_duplicate_key_names_the_key_and_both_lines() -> None:
    """A repeated key is an error naming both places, instead of the last one silently winning."""
    text = "name: x\nsteps:\n  - id: a\n    parameters:\n      command: ls\n      args: []\n      command: rm\n"
    err = _error(text)
    assert "duplicate key 'command' (lines 5 and 7)" in err.what
    assert (err.line, err.col) == (7, 7)


def test_duplicate_key_written_differently_is_still_a_duplicate() -> None:
    """`1:` and `"1":` are the same key once keys are text."""
    assert "duplicate key '1'" in _error("1: a\n'1': b\n").what


def test_deep_nesting_is_refused_quickly() -> None:
    """1,000 and 50,000 nested brackets fail fast and cleanly instead of crashing the worker."""
    for text in ("[" * 1000, "[" * 50_000, "{a: " * 50_000, "[" * 1_000_000, "a:\n  " + "- " * 100_000 + "x"):
        start = time.perf_counter()
        err = _within(10, functools.partial(_error, text))
        assert "nesting deeper than 64 levels" in err.what
        assert time.perf_counter() - start < 1.0


def test_nesting_at_the_limit_is_accepted() -> None:
    """Exactly MAX_DEPTH levels still load; one more is refused."""
    ok = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert _load(ok).data["a"] is not None
    assert "nesting deeper" in _error("a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH).what


def test_alias_bomb_is_refused_quickly() -> None:
    """A 300-byte alias bomb is refused in well under a second, before anything validates it."""
    text = _alias_bomb()
    assert len(text) < 400
    start = time.perf_counter()
    err = _within(10, lambda: _error(text))
    assert time.perf_counter() - start < 0.5
    assert f"more than {MAX_NODES:,}" in err.what


def test_alias_expansion_cannot_exceed_the_depth_limit() -> None:
    """Aliases that stack nested lists beyond the depth limit are refused at the alias."""
    inner = "[" * 40 + "]" * 40
    outer = "[" * 29 + "*a" + "]" * 29
    err = _error(f"a: &a {inner}\nb: {outer}\n")
    assert "after expanding the alias *a" in err.what
    assert err.line == 2


def test_too_many_plain_nodes_are_refused() -> None:
    """A huge flat file is refused by node count, not by running out of memory."""
    text = "a: [" + "1," * (MAX_NODES + 5) + "1]\n"
    assert "too many nodes" in _error(text).what


def test_utf8_bom_is_accepted() -> None:
    """A byte order mark at the very start (common on Windows) is fine and does not shift columns."""
    loaded = _load("\ufeffname: x\nsteps: []\n")
    assert loaded.data == {"name": "x", "steps": []}
    assert loaded.marks[("name",)] == (1, 7)


def test_allowed_whitespace_and_unicode_pass() -> None:
    """Tabs inside values, CRLF line ends, emoji and accents are ordinary text."""
    loaded = _load('name: caf\u00e9 \U0001f4ca\r\ncommand: a\tb\r\nnote: "x\\ty"\r\n')
    assert loaded.data == {"name": "caf\u00e9 \U0001f4ca", "command": "a\tb", "note": "x\ty"}
    assert loaded.marks[("command",)] == (2, 10)


# ---------------------------------------------------------------------------------------------
# Reading files: only regular files, bounded


def test_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    """A named pipe called x.mission.yaml is refused at once; collection does not wait for a writer."""
    fifo = tmp_path / "x.mission.yaml"
    os.mkfifo(fifo)
    with pytest.raises(MissionFormatError, match="named pipe") as info:
        _within(5, lambda: load_yaml_file(fifo))
    assert info.value.hint


def test_symlink_to_dev_zero_is_refused(tmp_path: Path) -> None:
    """A symlink to /dev/zero is refused before reading a single byte."""
    link = tmp_path / "x.mission.yaml"
    link.symlink_to("/dev/zero")
    with pytest.raises(MissionFormatError, match="symbolic link to a character device") as info:
        _within(5, lambda: read_mission_bytes(link))
    assert info.value.path == str(link)


def test_directory_is_refused(tmp_path: Path) -> None:
    """A directory matching the mission pattern is reported, not crashed on."""
    folder = tmp_path / "d.mission.yaml"
    folder.mkdir()
    with pytest.raises(MissionFormatError, match="is a directory"):
        load_yaml_file(folder, display_path="d.mission.yaml")


def test_missing_file_is_a_clean_error(tmp_path: Path) -> None:
    """A file that vanished between collection and loading gives a one-line error."""
    with pytest.raises(MissionFormatError, match="cannot read the file"):
        read_mission_bytes(tmp_path / "gone.mission.yaml")


def test_fifo_swapped_in_after_the_check_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the file becomes a FIFO between the check and the open, the open does not block and it is refused."""
    regular = tmp_path / "regular.yaml"
    regular.write_text("a: 1\n")
    fake = os.stat(regular)
    fifo = tmp_path / "x.mission.yaml"
    os.mkfifo(fifo)
    monkeypatch.setattr(Path, "stat", lambda self, **kw: fake)
    with pytest.raises(MissionFormatError, match="named pipe"):
        _within(5, lambda: read_mission_bytes(fifo))


def test_size_cap(tmp_path: Path) -> None:
    """A file over the size cap is refused naming the cap and how to raise it; one at the cap loads."""
    path = tmp_path / "big.mission.yaml"
    body = b"name: " + b"x" * 94 + b"\n"  # 101 bytes
    path.write_bytes(body)
    assert read_mission_bytes(path, max_bytes=101) == body
    with pytest.raises(MissionFormatError) as info:
        load_yaml_file(path, display_path="big.mission.yaml", max_bytes=100)
    err = info.value
    assert "101 bytes, over the 100-byte limit" in err.what
    assert "mission_max_file_bytes" in err.hint
    assert err.path == "big.mission.yaml"


def test_file_growing_after_the_check_is_still_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The read itself is bounded: a file that grows after the size check is refused, not read whole."""
    path = tmp_path / "grow.mission.yaml"
    path.write_bytes(b"a: " + b"x" * 1000 + b"\n")
    small = os.stat(tmp_path / "grow.mission.yaml")
    fake = os.stat_result((small.st_mode, *small[1:6], 10, *small[7:]))
    monkeypatch.setattr(Path, "stat", lambda self, **kw: fake)
    with pytest.raises(MissionFormatError, match="more than 100 bytes"):
        read_mission_bytes(path, max_bytes=100)


def test_load_yaml_file_reads_a_real_file(tmp_path: Path) -> None:
    """The file entry point gives the same result as loading the bytes."""
    path = tmp_path / "ok.mission.yaml"
    path.write_text("name: ok\nsteps:\n  - id: a\n")
    assert load_yaml_file(path).data == {"name": "ok", "steps": [{"id": "a"}]}


# ---------------------------------------------------------------------------------------------
# Positions

NESTED = """\
name: demo
config:
  timeout_seconds: 30
steps:
  - id: build
    parameters:
      command: make
      args: [all, "-j4"]
  - id: notes
    parameters:
      content: |
        line one
"""


def test_marks_point_at_nested_nodes() -> None:
    """Errors deep inside a mission point at the exact line and column of the value."""
    loaded = _load(NESTED)
    assert loaded.marks[()] == (1, 1)
    assert loaded.marks[("config", "timeout_seconds")] == (3, 20)
    assert loaded.marks[("steps",)] == (5, 3)
    assert loaded.marks[("steps", 0)] == (5, 5)
    assert loaded.marks[("steps", 0, "parameters", "command")] == (7, 16)
    assert loaded.marks[("steps", 0, "parameters", "args", 1)] == (8, 19)
    assert loaded.marks[("steps", 1, "parameters", "content")] == (11, 16)
    assert loaded.key_marks[("steps", 0, "parameters")] == (6, 5)
    assert loaded.key_marks[("config", "timeout_seconds")] == (3, 3)


def test_position_falls_back_to_the_nearest_ancestor() -> None:
    """A path the file does not have (a missing key) points at its closest existing parent."""
    loaded = _load(NESTED)
    assert loaded.position(("steps", 0, "parameters", "timeout", 3)) == (7, 7)
    assert loaded.position(("nope",)) == (1, 1)
    assert LoadedYaml(data={}).position(("x",)) is None


# ---------------------------------------------------------------------------------------------
# Values: JSON types only, YAML 1.1 surprises recorded


def test_yaml11_surprises_are_recorded() -> None:
    """Values YAML 1.1 reads unlike RustChain (no, on, 0755, 1:30, dates) are noted for a 'quote it' hint."""
    loaded = _load(
        "steps:\n  - parameters:\n      command: no\n      mode: 0755\n      wait: 1:30\n"
        "      when: 2024-01-01\n      flag: On\n      ok: true\n      n: 1_000\n      plain: 10\n"
    )
    params = loaded.data["steps"][0]["parameters"]
    assert params == {
        "command": False,
        "mode": 493,
        "wait": 90,
        "when": "2024-01-01",
        "flag": True,
        "ok": True,
        "n": 1000,
        "plain": 10,
    }
    where = ("steps", 0, "parameters")
    surprises = loaded.yaml11_surprises
    assert surprises[(*where, "command")] == "boolean false ('no' is a YAML 1.1 boolean)"
    assert "octal" in surprises[(*where, "mode")]
    assert "base 60" in surprises[(*where, "wait")]
    assert "date" in surprises[(*where, "when")]
    assert "YAML 1.1 boolean" in surprises[(*where, "flag")]
    assert "'_'" in surprises[(*where, "n")]
    assert (*where, "ok") not in surprises
    assert (*where, "plain") not in surprises


def test_quoted_values_are_never_surprising() -> None:
    """Quoting is the fix the hint suggests, so quoted values stay text and are not noted."""
    loaded = _load("a: 'no'\nb: \"2024-01-01\"\nc: '0755'\n")
    assert loaded.data == {"a": "no", "b": "2024-01-01", "c": "0755"}
    assert not loaded.yaml11_surprises


def test_timestamps_stay_text() -> None:
    """Unquoted dates and times load as the text written, never as datetime objects."""
    loaded = _load("d: 2024-01-01\nt: 2001-12-14t21:59:43.10-05:00\n")
    assert loaded.data == {"d": "2024-01-01", "t": "2001-12-14t21:59:43.10-05:00"}


def test_keys_keep_their_source_text() -> None:
    """`on:`, `yes:`, `1:` and `null:` keys stay strings as written (GitHub-workflow style), never bools or ints."""
    loaded = _load("on: push\nyes: 1\n1: one\n~: tilde\n1.5: x\n")
    assert loaded.data == {"on": "push", "yes": 1, "1": "one", "~": "tilde", "1.5": "x"}
    assert all(isinstance(k, str) for k in loaded.data)


def test_null_and_boolean_spellings() -> None:
    """`~`, `null`, `Null`, `NULL` and an empty value are null; YAML 1.1 spellings of booleans are booleans."""
    loaded = _load("a: [~, null, Null, NULL, nope, Yes, NO, on, OFF, y, n, yEs]\nb:\n")
    assert loaded.data == {"a": [None, None, None, None, "nope", True, False, True, False, "y", "n", "yEs"], "b": None}


def test_standard_tags_are_honoured() -> None:
    """`!!str 12` forces text and `!!int`/`!!float`/`!!bool`/`!!null` work as in PyYAML."""
    loaded = _load("a: !!str 12\nb: !!int '0x10'\nc: !!float 1\nd: !!bool yes\ne: !!null ''\nf: !!map {x: 1}\n")
    assert loaded.data == {"a": "12", "b": 16, "c": 1.0, "d": True, "e": None, "f": {"x": 1}}


def test_odd_plain_scalars_stay_text() -> None:
    """Plain scalars PyYAML itself chokes on (`=`, `<<`, `0b_`, 5,000 digits) load as text, not tracebacks."""
    digits = "9" * 5000
    loaded = _load(f"a: =\nb: <<\nc: 0b_\nd: {digits}\n")
    assert loaded.data == {"a": "=", "b": "<<", "c": "0b_", "d": digits}


def test_merge_keys_follow_yaml_11() -> None:
    """`<<: *defaults` merges a mapping; the mission's own keys win, and merged values point at the anchor."""
    text = (
        "defaults: &defaults\n  timeout_seconds: 30\n  retries: {count: 2}\n"
        "other: &other {timeout_seconds: 5, env: {A: b}}\n"
        "step:\n  <<: [*defaults, *other]\n  timeout_seconds: 10\n"
    )
    loaded = _load(text)
    assert loaded.data["step"] == {"timeout_seconds": 10, "retries": {"count": 2}, "env": {"A": "b"}}
    assert loaded.data == yaml.load(text, Loader=yaml.CSafeLoader)
    assert loaded.marks[("step", "timeout_seconds")] == (7, 20)
    assert loaded.marks[("step", "retries", "count")] == (3, 20)


def test_quoted_merge_key_is_an_ordinary_key() -> None:
    """Only a plain `<<` merges; a quoted one is just a key."""
    assert _load("'<<': {a: 1}\n").data == {"<<": {"a": 1}}


def test_duplicate_inside_merged_mapping_is_reported() -> None:
    """A duplicate key inside an anchored mapping is reported even when only reached by a merge."""
    err = _error("base: &b {a: 1, a: 2}\nstep: {<<: *b}\n")
    assert "duplicate key 'a'" in err.what


def test_aliases_are_independent_copies() -> None:
    """Changing the data at one alias use does not change another (consumers may edit in place)."""
    loaded = _load("a: &x {k: [1]}\nb: *x\nc: *x\n")
    data = loaded.data
    data["b"]["k"].append(2)
    assert data["a"] == {"k": [1]}
    assert data["c"] == {"k": [1]}
    assert loaded.marks[("b",)] == (2, 4)
    assert loaded.marks[("b", "k", 0)] == (1, 12)


def test_alias_as_key_uses_the_anchored_text() -> None:
    """An alias of a scalar may be a key; an alias of a mapping may not."""
    assert _load("a: &k name\n*k : value\n").data == {"a": "name", "name": "value"}
    assert "cannot be a mapping key" in _error("a: &k {x: 1}\n*k : value\n").what


def test_rustchain_examples_load_like_pyyaml() -> None:
    """Every RustChain example file loads to the same data as yaml.safe_load (dates aside)."""
    files = sorted(EXAMPLES.glob("*.yaml"))
    if not files:
        pytest.skip("no RustChain example files in tests/fixtures/rustchain")
    for path in files:
        raw = path.read_bytes()
        assert _load(raw).data == yaml.load(raw, Loader=yaml.CSafeLoader), path.name


# ---------------------------------------------------------------------------------------------
# Properties

_SAFE_ALPHABET = st.characters(
    codec="utf-8",
    exclude_characters="\u200b\u200c\u200d\u2060\ufeff\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    "\u2028\u2029\ufffe\uffff\x85",
    exclude_categories=["Cc"],
)
_ANY_CHAR = st.characters(codec="utf-8")
_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(_ANY_CHAR, max_size=20)
_json = st.recursive(
    _scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(_ANY_CHAR, max_size=10), kids, max_size=4),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.dictionaries(st.text(_ANY_CHAR, max_size=10), _json, max_size=6), flow=st.sampled_from([None, True, False])
)
def test_round_trip_of_safe_dump(data: dict[str, Any], flow: bool | None) -> None:
    """Anything yaml.safe_dump writes (escaped, block or flow style) loads back as the same data."""
    text = yaml.safe_dump(data, default_flow_style=flow)
    assert _load(text).data == data


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.dictionaries(
        st.text(_SAFE_ALPHABET, max_size=10),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(_SAFE_ALPHABET, max_size=20),
            lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(_SAFE_ALPHABET, max_size=8), kids),
            max_leaves=20,
        ),
        max_size=6,
    )
)
def test_round_trip_of_raw_unicode(data: dict[str, Any]) -> None:
    """Non-ASCII text written raw (allow_unicode) loads back unchanged when it has no invisible characters."""
    text = yaml.safe_dump(data, allow_unicode=True)
    assert _load(text).data == data


_WORDS = st.sampled_from(
    [
        *("yes", "No", "ON", "off", "y", "n", "true", "False", "~", "null", "NULL", ".inf", "-.Inf", ".nan"),
        *("0x1F", "0b101", "0o17", "1e3", "1.0e+3", "2024-01-01", "2024-1-1 10:00:00", "<<", "=", "1:30", "-1:30.5"),
    ]
)


@settings(max_examples=400, deadline=None, database=None)
@given(word=_WORDS | st.from_regex(r"\A[-+]?[0-9._:][0-9_:.xeE+-]{0,7}\Z"))
def test_plain_scalars_resolve_like_pyyaml(word: str) -> None:
    """Unquoted values get PyYAML's YAML 1.1 types, except that dates stay text."""
    text = f"k: {word}\n"
    try:
        expected = yaml.load(text, Loader=yaml.CSafeLoader)["k"]
    except yaml.constructor.ConstructorError:
        # PyYAML has no constructor for plain `<<` and `=` values; they stay text here.
        assert _load(text).data["k"] == word
        return
    except yaml.YAMLError:
        with pytest.raises(MissionFormatError):
            _load(text)
        return
    except (ValueError, TypeError):
        # PyYAML crashes on a few of these ('0b_'); we keep the text.
        assert _load(text).data["k"] == word
        return
    got = _load(text)
    value = got.data["k"]
    if hasattr(expected, "isoformat"):
        assert value == word
        assert "date" in got.yaml11_surprises[("k",)]
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(value)
    else:
        assert value == expected
        assert type(value) is type(expected)


# ---------------------------------------------------------------------------------------------
# Module hygiene and speed


def test_module_does_not_import_pytest() -> None:
    """The loader is plain Python, usable from the run_mission API without pytest."""
    tree = ast.parse(Path(yamlload.__file__).read_text(encoding="utf-8"))
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "pytest" not in names


def test_ten_step_mission_loads_fast() -> None:
    """Collecting many missions stays fast: a 10-step mission loads in well under 5 ms."""
    steps = "".join(
        f"  - id: s{i}\n    step_type: command\n    parameters: {{command: echo, args: [hi, '{i}']}}\n"
        f"    depends_on: [s{i - 1}]\n    timeout_seconds: 30\n"
        for i in range(10)
    )
    data = f"name: speed\nconfig: {{timeout_seconds: 60}}\nsteps:\n{steps}".encode()
    _load(data)
    start = time.perf_counter()
    for _ in range(50):
        _load(data)
    assert (time.perf_counter() - start) / 50 < 0.005
