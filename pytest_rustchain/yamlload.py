"""Hardened loading of untrusted mission YAML into plain JSON-type data with source positions."""

from __future__ import annotations

import math
import os
import re
import stat
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import yaml
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from pytest_rustchain.errors import MissionFormatError

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "JsonPath",
    "LoadedYaml",
    "load_yaml_file",
    "load_yaml_text",
    "read_mission_bytes",
]

JsonPath = tuple[str | int, ...]

#: Deepest nesting of lists and mappings; a mission needs about six levels.
MAX_DEPTH: Final = 64
#: Most nodes a file may hold, counting every alias as a full copy of what it names.
MAX_NODES: Final = 100_000
#: Longer plain scalars stay text: int() refuses more digits and base-60 arithmetic would be slow.
_MAX_NUMBER_CHARS: Final = 4300

# The event API of the C parser is iterative; PyYAML's C composer recurses and crashes the
# interpreter on deep input, so this module never calls compose() or load().
_Loader: Any = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader

_STD: Final = "tag:yaml.org,2002:"
_STR_TAG: Final = _STD + "str"
_SCALAR_TAGS: Final = frozenset(_STD + t for t in ("str", "int", "float", "bool", "null"))
_KEY_TAGS: Final = frozenset({None, "!", _STR_TAG})

# Event classes are compared by identity: the fastest dispatch for the hot loop.
# Typed Any so that mypy does not narrow events to the stubs' Optional-heavy classes.
_SCALAR_EV: Final[Any] = ScalarEvent
_ALIAS_EV: Final[Any] = AliasEvent
_MAP_START: Final[Any] = MappingStartEvent
_SEQ_START: Final[Any] = SequenceStartEvent
_DOC_START: Final[Any] = DocumentStartEvent
_STREAM_END: Final[Any] = StreamEndEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedYaml:
    """A mission file as plain data, with where each part of it was written."""

    data: Any
    """dict / list / str / int / float / bool / None only; every alias is a separate copy."""
    marks: Mapping[JsonPath, tuple[int, int]] = field(default_factory=dict)
    """1-based (line, col) of the node at each JSON path (for an alias: where ``*name`` is written,
    its contents at the anchor); ``()`` is the document."""
    key_marks: Mapping[JsonPath, tuple[int, int]] = field(default_factory=dict)
    """1-based (line, col) of the key of each mapping entry, for "unknown key" style errors."""
    yaml11_surprises: Mapping[JsonPath, str] = field(default_factory=dict)
    """Plain values YAML 1.1 reads unlike YAML 1.2 (RustChain): ``no``, octal, base 60, dates.
    The text completes "YAML read this value as ..."."""

    def position(self, path: JsonPath) -> tuple[int, int] | None:
        """Where ``path`` was written, else where its nearest recorded ancestor was."""
        marks = self.marks
        for end in range(len(path), -1, -1):
            pos = marks.get(path[:end])
            if pos is not None:
                return pos
        return None


# ---------------------------------------------------------------------------------------------
# Reading the file


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _refuse_special(path: Path, shown: str, mode: int) -> MissionFormatError:
    try:
        link = path.is_symlink()
    except (OSError, ValueError):
        link = False
    kind = _file_kind(mode)
    what = f"is a symbolic link to {kind}" if link else f"is {kind}"
    return MissionFormatError(
        f"{what}, not a regular file; refusing to read it",
        path=shown,
        hint="a mission must be a regular file; remove or rename this one so that the mission "
        "file pattern does not match it",
    )


def _too_big(size: int, max_bytes: int, shown: str, *, at_least: bool = False) -> MissionFormatError:
    more = "more than " if at_least else ""
    return MissionFormatError(
        f"the file is {more}{size:,} bytes, over the {max_bytes:,}-byte limit for mission files",
        path=shown,
        hint="split it into smaller missions (extends, include), or raise mission_max_file_bytes "
        "in the pytest configuration",
    )


def _os_error(exc: OSError, shown: str) -> MissionFormatError:
    reason = exc.strerror or type(exc).__name__
    return MissionFormatError(f"cannot read the file: {reason}", path=shown)


def read_mission_bytes(path: Path, *, max_bytes: int = 1_048_576, display_path: str | None = None) -> bytes:
    """Read a mission file, refusing anything but a regular file of at most ``max_bytes``."""
    shown = display_path or str(path)
    try:
        # stat() follows symlinks, so a link to /dev/zero is seen as the device it is.
        before = path.stat()
    except ValueError:
        raise MissionFormatError("the file name contains a NUL character", path=shown) from None
    except OSError as exc:
        raise _os_error(exc, shown) from None
    if not stat.S_ISREG(before.st_mode):
        raise _refuse_special(path, shown, before.st_mode)
    if before.st_size > max_bytes:
        raise _too_big(before.st_size, max_bytes, shown)
    # O_NONBLOCK: if the file is swapped for a FIFO after the stat, open() must not wait for a
    # writer; fstat() below then sees the FIFO and refuses it.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise _os_error(exc, shown) from None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise _refuse_special(path, shown, opened.st_mode)
        chunks: list[bytes] = []
        left = max_bytes + 1  # one byte more than allowed tells "too big" from "exactly full"
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise _os_error(exc, shown) from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise _too_big(max_bytes, max_bytes, shown, at_least=True)
    return data


# ---------------------------------------------------------------------------------------------
# Text checks done before the parser sees anything

# C0 controls but tab/LF/CR, DEL, C1 (NEL included: YAML counts it as a line break), invisible
# zero-width characters, bidi embeddings/overrides/isolates (Trojan Source), Unicode line and
# paragraph separators (line breaks to YAML, not to most editors), and the two non-characters.
_BAD_CHAR = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u202a-\u202e\u2066-\u2069\u2028\u2029\ufffe\uffff]"
)
_BIDI: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_C0_NAMES: Final = {
    0x00: "NUL",
    0x07: "BEL",
    0x08: "BACKSPACE",
    0x0B: "VERTICAL TAB",
    0x0C: "FORM FEED",
    0x1B: "ESC",
    0x7F: "DEL",
    0x85: "NEXT LINE",
}
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column (in characters) of ``text[index]``, with YAML's line breaks."""
    if "\r" not in text:
        line = text.count("\n", 0, index) + 1
        return line, index - (text.rfind("\n", 0, index) + 1) + 1
    line, start = 1, 0
    for m in _LINE_BREAK.finditer(text, 0, index):
        line, start = line + 1, m.end()
    return line, index - start + 1


def _bad_char_error(text: str, index: int, shown: str) -> MissionFormatError:
    ch = text[index]
    code = f"U+{ord(ch):04X}"
    line, col = _line_col(text, index)
    if ch in _BIDI:
        what = f"bidirectional control character {code} ({unicodedata.name(ch)})"
        hint = "remove it: it makes text display in a different order from how it is read"
    elif ch in "\u200b\u200c\u200d\u2060\ufeff":
        what = f"invisible character {code} ({unicodedata.name(ch)})"
        hint = "remove it: invisible characters can make an id or a command differ from what it shows"
    elif ch in "\u2028\u2029":
        what = f"Unicode line separator {code} ({unicodedata.name(ch)})"
        hint = "replace it with an ordinary line break: YAML breaks the line there, editors may not"
    elif ch in "\ufffe\uffff":
        what = f"non-character {code}"
        hint = "remove it; the file may be corrupted"
    else:
        name = _C0_NAMES.get(ord(ch))
        what = f"control character {code}" + (f" ({name})" if name else "")
        hint = (
            "a file with NUL bytes is binary or UTF-16; save it as UTF-8 text"
            if ch == "\x00"
            else "remove it; in a double-quoted string, write it as an escape such as \\x1b"
        )
    return MissionFormatError(f"{what} is not allowed in a mission file", path=shown, line=line, col=col, hint=hint)


def _decode(data: bytes, shown: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = data[: exc.start].decode("utf-8").removeprefix("\ufeff")
        line, col = _line_col(prefix, len(prefix))
        hint = (
            "this looks like UTF-16; save the file as UTF-8"
            if data[:2] in (b"\xff\xfe", b"\xfe\xff")
            else "save the file as UTF-8"
        )
        raise MissionFormatError(
            f"not valid UTF-8 at byte {exc.start} (0x{data[exc.start]:02x})",
            path=shown,
            line=line,
            col=col,
            hint=hint,
        ) from None
    text = text.removeprefix("\ufeff")  # a byte order mark at the very start is harmless
    bad = _BAD_CHAR.search(text)
    if bad is not None:
        raise _bad_char_error(text, bad.start(), shown)
    return text


# ---------------------------------------------------------------------------------------------
# Plain scalar resolution (PyYAML's YAML 1.1 rules, without timestamps)

_BOOLS: Final = {
    spelled: value
    for word, value in (("yes", True), ("no", False), ("true", True), ("false", False), ("on", True), ("off", False))
    for spelled in (word, word.capitalize(), word.upper())
}
_NULLS: Final = frozenset({"", "~", "null", "Null", "NULL"})
_KEYWORDS: Final = frozenset(_BOOLS) | _NULLS
_NUMBER_START: Final = frozenset("-+0123456789.")
# First characters after which a plain scalar can only be text once booleans are ruled out.
_WORD_START: Final = frozenset(chr(c) for c in range(0x21, 0x7F)) - _NUMBER_START - {"~"}
# Same expressions as yaml.resolver.Resolver so that values agree with yaml.safe_load.
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_INT = re.compile(
    r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+
    |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$""",
    re.X,
)
_TIMESTAMP = re.compile(
    r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
    |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
    (?:[Tt]|[ \t]+)[0-9][0-9]?
    :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
    (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""",
    re.X,
)


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _base60(text: str, part: Callable[[str], float]) -> float:
    value: float = 0
    for digits in text.split(":"):
        value = value * 60 + part(digits)
    return value


def _to_int(text: str) -> tuple[int, str | None]:
    """PyYAML's construct_yaml_int, plus what a YAML 1.2 reader would do differently."""
    digits = text.replace("_", "")
    sign = -1 if digits[0] == "-" else 1
    if digits[0] in "+-":
        digits = digits[1:]
    if digits == "0":
        return 0, None
    if digits.startswith("0b"):
        return sign * int(digits[2:], 2), None
    if digits.startswith("0x"):
        return sign * int(digits[2:], 16), None
    if digits[0] == "0":
        value = sign * int(digits, 8)
        return value, f"the number {value} ('{text}' is octal in YAML 1.1)"
    if ":" in digits:
        value = sign * int(_base60(digits, int))
        return value, f"the number {value} ('{text}' is base 60 in YAML 1.1)"
    value = sign * int(digits)
    if "_" in text:
        return value, f"the number {value} (YAML 1.1 ignores '_' in '{_short(text)}')"
    return value, None


def _to_float(text: str) -> tuple[float, str | None]:
    digits = text.replace("_", "").lower()
    sign = -1 if digits[0] == "-" else 1
    if digits[0] in "+-":
        digits = digits[1:]
    if digits == ".inf":
        return sign * math.inf, None
    if digits == ".nan":
        return math.nan, None
    if ":" in digits:
        value = sign * _base60(digits, float)
        return value, f"the number {value} ('{text}' is base 60 in YAML 1.1)"
    value = sign * float(digits)
    if "_" in text:
        return value, f"the number {value} (YAML 1.1 ignores '_' in '{_short(text)}')"
    fraction = digits.partition(".")[2]
    if len(fraction) > 1 and fraction.endswith("0") and "e" not in fraction:
        # A version written 3.10 is the number 3.1, in every YAML version (GitHub's matrix trap too).
        return value, f"the number {value!r} ('{text}' loses its trailing zero)"
    return value, None


def _resolve_plain(text: str) -> tuple[Any, str | None]:
    """Value of an untagged plain scalar, and a note when YAML 1.2 would read it differently."""
    if text in _BOOLS:
        value = _BOOLS[text]
        if text.lower() in ("true", "false"):
            return value, None
        return value, f"boolean {'true' if value else 'false'} ('{text}' is a YAML 1.1 boolean)"
    if text in _NULLS:
        return None, None
    if text[0] not in _NUMBER_START or len(text) > _MAX_NUMBER_CHARS:
        return text, None
    try:
        if _FLOAT.match(text):
            return _to_float(text)
        if _INT.match(text):
            return _to_int(text)
    except ValueError:
        # '0b_' and friends match the 1.1 expressions but are not numbers; keep the text.
        return text, None
    if _TIMESTAMP.match(text):
        return text, f"a YAML 1.1 date (loaded here as the text '{text}')"
    return text, None


def _show_tag(tag: str) -> str:
    return "!!" + tag[len(_STD) :] if tag.startswith(_STD) else tag


def _tag_error(tag: str, pos: tuple[int, int], shown: str) -> MissionFormatError:
    return MissionFormatError(
        f"the tag {_show_tag(tag)} is not allowed: mission files hold only text, numbers, "
        "booleans, null, lists and mappings",
        path=shown,
        line=pos[0],
        col=pos[1],
        hint="remove the tag; quote the value if it must stay text",
    )


def _resolve_tagged(tag: str, text: str, pos: tuple[int, int], shown: str) -> tuple[Any, str | None]:
    if tag not in _SCALAR_TAGS:
        raise _tag_error(tag, pos, shown)
    kind = tag[len(_STD) :]
    if kind == "str":
        return text, None
    try:
        if kind == "int":
            return _to_int(text.strip())[0], None
        if kind == "float":
            return _to_float(text.strip())[0], None
        if kind == "bool":
            return _BOOLS[text.lower()], None
        if text in _NULLS:
            return None, None
    except (ValueError, KeyError, IndexError):
        pass
    raise MissionFormatError(
        f"'{_short(text)}' is not a valid !!{kind}",
        path=shown,
        line=pos[0],
        col=pos[1],
        hint=f"remove the !!{kind} tag, or fix the value",
    )


# ---------------------------------------------------------------------------------------------
# Phase 1: events to a light node tree (iterative, so nesting cannot exhaust any stack)
#
# Nodes are lists and tuples indexed by the constants below, for speed:
#   scalar: (SCALAR, value, pos, surprise, source text)
#   alias:  (ALIAS, target node, pos of *name)
#   seq/map frame: [kind, items, pos, anchor, pending key, has merge key, nodes before, peak]
#     map items are ((key text, key pos, is merge key), value node)

_SCALAR: Final = 0
_SEQ: Final = 1
_MAP: Final = 2
_ALIAS: Final = 3
_NO_KEY: Final[Any] = object()


@dataclass(slots=True)
class _Frame:
    """A list or mapping being composed (and, once closed, its node); scalars and aliases are tuples
    ``(_SCALAR, value, pos, surprise, text)`` and ``(_ALIAS, target, pos)``."""

    kind: int
    """_SEQ or _MAP."""
    pos: tuple[int, int]
    anchor: str | None
    nodes_before: int
    """Nodes composed before this one: its own size is what was added until it closed."""
    peak_before: int
    """The deepest nesting seen before it opened (restored when an anchored subtree closes)."""
    items: list[Any] = field(default_factory=list)
    """Nodes of a list; ``((key, key_pos, is_merge), node)`` pairs of a mapping."""
    key: Any = _NO_KEY
    """A mapping's pending key, ``(text, pos, is_merge)``, until its value arrives."""
    merge: bool = False
    """Whether a mapping has a ``<<`` merge key."""


def _kind(node: Any) -> int:
    return node.kind if type(node) is _Frame else int(node[0])


def _pos(node: Any) -> tuple[int, int]:
    return node.pos if type(node) is _Frame else node[2]


def _at(pos: tuple[int, int], what: str, shown: str, hint: str = "") -> MissionFormatError:
    return MissionFormatError(what, path=shown, line=pos[0], col=pos[1], hint=hint)


_TOP_HINT: Final = "a mission starts with keys such as 'name:' and 'steps:'"


def _top_level_error(ev: Any, shown: str) -> MissionFormatError:
    pos = (ev.start_mark.line + 1, ev.start_mark.column + 1)
    if type(ev) is _SCALAR_EV and ev.value == "" and ev.implicit[0]:
        found = "this file holds an empty document"
    elif type(ev) is _SCALAR_EV:
        found = f"this file holds the single value '{_short(ev.value)}'"
    else:
        found = "this file holds something else"
    return _at(pos, f"a mission file holds one mapping; {found}", shown, _TOP_HINT)


def _scalar_node(ev: Any, pos: tuple[int, int], shown: str) -> tuple[Any, ...]:
    text = ev.value
    tag = ev.tag
    if tag is None or tag == "!":
        # PyYAML resolves a `!`-tagged plain scalar like an untagged one; so do we.
        if ev.implicit[0]:
            value, surprise = _resolve_plain(text)
            return (_SCALAR, value, pos, surprise, text)
        return (_SCALAR, text, pos, None, text)
    value, surprise = _resolve_tagged(tag, text, pos, shown)
    return (_SCALAR, value, pos, surprise, text)


def _compose(get_event: Callable[[], Any], shown: str, list_ok: bool = False) -> _Frame:
    ev = get_event()  # StreamStartEvent
    ev = get_event()
    if type(ev) is _STREAM_END:
        raise MissionFormatError("a mission file holds one mapping; this file is empty", path=shown, hint=_TOP_HINT)
    ev = get_event()  # the document's root node
    if type(ev) is not _MAP_START and type(ev) is not _SEQ_START:
        raise _top_level_error(ev, shown)
    # A list at the top is refused only at its end, so that "too deep" wins for `[[[[...`.

    anchors: dict[str, tuple[Any, int, int]] = {}  # name -> (node, expanded size, height)
    open_anchors: dict[str, tuple[int, int]] = {}  # anchored collections not yet closed
    stack: list[_Frame] = []
    nodes = 0  # nodes so far, every alias counted as the size of what it names
    peak = 0  # deepest nesting so far, through aliases too
    while True:
        cls = type(ev)
        if cls is _SCALAR_EV:
            nodes += 1
            top = stack[-1]
            mark = ev.start_mark
            pos = (mark.line + 1, mark.column + 1)
            if top.kind == _MAP and top.key is _NO_KEY:
                text = ev.value
                tag = ev.tag
                # Keys keep their source text: `on:` stays "on", `1:` stays "1".
                if tag not in _KEY_TAGS:
                    raise _at(
                        pos,
                        f"the mapping key '{_short(text)}' has the tag {_show_tag(tag)}; keys must be text",
                        shown,
                        "remove the tag",
                    )
                merge = text == "<<" and tag is None and ev.implicit[0]
                if merge:
                    top.merge = True
                top.key = (text, pos, merge)
                node = _scalar_node(ev, pos, shown) if ev.anchor is not None else None
            else:
                text = ev.value
                if ev.tag is None and ev.implicit[0] and text[:1] in _WORD_START and text not in _KEYWORDS:
                    node = (_SCALAR, text, pos, None, text)  # the common case: a plain word
                else:
                    node = _scalar_node(ev, pos, shown)
                if top.kind == _SEQ:
                    top.items.append(node)
                else:
                    top.items.append((top.key, node))
                    top.key = _NO_KEY
            if node is not None and ev.anchor is not None:
                name = ev.anchor
                if name in anchors or name in open_anchors:
                    raise _duplicate_anchor(name, anchors, open_anchors, pos, shown)
                anchors[name] = (node, 1, 0)
            if nodes > MAX_NODES:
                raise _at(pos, f"too many nodes (more than {MAX_NODES:,})", shown, _NODES_HINT)
        elif cls is _MAP_START or cls is _SEQ_START:
            nodes += 1
            mark = ev.start_mark
            pos = (mark.line + 1, mark.column + 1)
            depth = len(stack) + 1
            if depth > MAX_DEPTH:
                raise _at(pos, f"nesting deeper than {MAX_DEPTH} levels", shown, _DEPTH_HINT)
            if depth > peak:
                peak = depth
            kind = _MAP if cls is _MAP_START else _SEQ
            if stack and stack[-1].kind == _MAP and stack[-1].key is _NO_KEY:
                raise _at(
                    pos,
                    "a list or a mapping cannot be a mapping key",
                    shown,
                    "keys must be plain text; check for a stray '?' or '[' / '{' before ':'",
                )
            tag = ev.tag
            if tag is not None and tag != "!" and tag != _STD + ("map" if kind == _MAP else "seq"):
                raise _tag_error(tag, pos, shown)
            anchor = ev.anchor
            frame = _Frame(kind=kind, pos=pos, anchor=anchor, nodes_before=nodes, peak_before=peak)
            if anchor is not None:
                if anchor in anchors or anchor in open_anchors:
                    raise _duplicate_anchor(anchor, anchors, open_anchors, pos, shown)
                open_anchors[anchor] = pos
                peak = depth  # measure this subtree's own height from here
            stack.append(frame)
            if nodes > MAX_NODES:
                raise _at(pos, f"too many nodes (more than {MAX_NODES:,})", shown, _NODES_HINT)
        elif cls is _ALIAS_EV:
            mark = ev.start_mark
            pos = (mark.line + 1, mark.column + 1)
            name = ev.anchor
            entry = anchors.get(name)
            if entry is None:
                if name in open_anchors:
                    raise _at(
                        pos,
                        f"the alias *{name} is inside the node it names (a recursive structure)",
                        shown,
                        "mission data cannot refer to itself; copy the values instead",
                    )
                raise _at(
                    pos,
                    f"unknown alias *{name}",
                    shown,
                    f"define the anchor &{name} before using *{name}",
                )
            target, size, height = entry
            nodes += size
            if nodes > MAX_NODES:
                raise _at(
                    pos,
                    f"too many nodes after alias expansion (more than {MAX_NODES:,})",
                    shown,
                    "aliases are copied where they are used; use fewer or smaller aliases",
                )
            depth = len(stack) + height
            if depth > MAX_DEPTH:
                raise _at(
                    pos,
                    f"nesting deeper than {MAX_DEPTH} levels after expanding the alias *{name}",
                    shown,
                    _DEPTH_HINT,
                )
            if depth > peak:
                peak = depth
            top = stack[-1]
            if top.kind == _SEQ:
                top.items.append((_ALIAS, target, pos))
            elif top.key is not _NO_KEY:
                top.items.append((top.key, (_ALIAS, target, pos)))
                top.key = _NO_KEY
            elif _kind(target) == _SCALAR:
                top.key = (target[4], pos, False)
            else:
                raise _at(
                    pos,
                    f"the alias *{name} names a list or a mapping and cannot be a mapping key",
                    shown,
                    "keys must be plain text",
                )
        else:  # MappingEndEvent or SequenceEndEvent
            frame = stack.pop()
            anchor = frame.anchor
            if anchor is not None:
                depth = len(stack) + 1
                anchors[anchor] = (frame, nodes - frame.nodes_before + 1, peak - depth + 1)
                del open_anchors[anchor]
                peak = max(peak, frame.peak_before)
            if not stack:
                break
            top = stack[-1]
            if top.kind == _SEQ:
                top.items.append(frame)
            else:
                top.items.append((top.key, frame))
                top.key = _NO_KEY
        ev = get_event()

    if frame.kind != _MAP and not list_ok:
        raise _at(frame.pos, "a mission file holds one mapping; this file holds a list", shown, _TOP_HINT)
    get_event()  # DocumentEndEvent
    ev = get_event()
    if type(ev) is _DOC_START:
        raise _at(
            (ev.start_mark.line + 1, ev.start_mark.column + 1),
            "a mission file holds one mapping; this file has a second YAML document here",
            shown,
            "remove the '---' line, or put each document in its own mission file",
        )
    return frame


_DEPTH_HINT: Final = "flatten the structure; a mission needs only a few levels of nesting"
_NODES_HINT: Final = "split the mission into smaller files"


def _duplicate_anchor(
    name: str,
    anchors: Mapping[str, tuple[Any, int, int]],
    open_anchors: Mapping[str, tuple[int, int]],
    pos: tuple[int, int],
    shown: str,
) -> MissionFormatError:
    first = _pos(anchors[name][0]) if name in anchors else open_anchors[name]
    return _at(
        pos,
        f"the anchor &{name} is defined twice (lines {first[0]} and {pos[0]})",
        shown,
        "give each anchor its own name",
    )


# ---------------------------------------------------------------------------------------------
# Phase 2: the node tree to plain data, recording positions (recursion bounded by MAX_DEPTH)


class _Builder:
    __slots__ = ("key_marks", "marks", "shown", "surprises")

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.marks: dict[JsonPath, tuple[int, int]] = {}
        self.key_marks: dict[JsonPath, tuple[int, int]] = {}
        self.surprises: dict[JsonPath, str] = {}

    def value(self, node: Any, path: JsonPath, depth: int) -> Any:
        if type(node) is _Frame:
            return self.collection(node, path, depth)
        kind = node[0]
        if kind == _SCALAR:
            self.marks[path] = node[2]
            if node[3] is not None:
                self.surprises[path] = node[3]
            return node[1]
        if kind == _ALIAS:
            # A fresh copy per use: a consumer editing one place must not change another.
            value = self.value(node[1], path, depth)
            self.marks[path] = node[2]
            return value
        raise AssertionError(f"not a YAML node: {node!r}")

    def collection(self, node: _Frame, path: JsonPath, depth: int) -> Any:
        if depth > MAX_DEPTH:  # phase 1 already refused this; a cheap second guard
            raise _at(node.pos, f"nesting deeper than {MAX_DEPTH} levels", self.shown, _DEPTH_HINT)
        self.marks[path] = node.pos
        if node.kind == _SEQ:
            return self.sequence(node.items, path, depth + 1)
        if node.merge:
            return self.merged_mapping(node, path, depth + 1)
        return self.mapping(node.items, path, depth + 1)

    def sequence(self, items: list[Any], path: JsonPath, depth: int) -> list[Any]:
        out: list[Any] = []
        marks = self.marks
        for index, item in enumerate(items):
            sub = (*path, index)
            if type(item) is tuple and item[0] == _SCALAR:
                marks[sub] = item[2]
                if item[3] is not None:
                    self.surprises[sub] = item[3]
                out.append(item[1])
            else:
                out.append(self.value(item, sub, depth))
        return out

    def mapping(self, items: list[Any], path: JsonPath, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        marks = self.marks
        key_marks = self.key_marks
        for (key, kpos, _), item in items:
            if key in out:
                raise self._duplicate(items, key, kpos)
            sub = (*path, key)
            key_marks[sub] = kpos
            if type(item) is tuple and item[0] == _SCALAR:
                marks[sub] = item[2]
                if item[3] is not None:
                    self.surprises[sub] = item[3]
                out[key] = item[1]
            else:
                out[key] = self.value(item, sub, depth)
        return out

    def merged_mapping(self, node: _Frame, path: JsonPath, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, (kpos, item) in self._pairs(node, 0).items():
            sub = (*path, key)
            self.key_marks[sub] = kpos
            out[key] = self.value(item, sub, depth)
        return out

    def _pairs(self, node: _Frame, chain: int) -> dict[str, tuple[tuple[int, int], Any]]:
        """Entries of a mapping after YAML 1.1 merge keys: its own keys win, then the first
        merged mapping that has the key."""
        own: dict[str, tuple[tuple[int, int], Any]] = {}
        merge: tuple[tuple[int, int], Any] | None = None
        for (key, kpos, is_merge), item in node.items:
            if is_merge:
                if merge is not None:
                    raise self._duplicate(node.items, key, kpos)
                merge = (kpos, item)
            elif key in own:
                raise self._duplicate(node.items, key, kpos)
            else:
                own[key] = (kpos, item)
        if merge is None:
            return own
        if chain >= MAX_DEPTH:
            raise _at(merge[0], f"merge keys (<<) chained more than {MAX_DEPTH} deep", self.shown)
        source = _unalias(merge[1])
        sources = [_unalias(s) for s in source.items] if _kind(source) == _SEQ else [source]
        for src in sources:
            if _kind(src) != _MAP:
                raise _at(
                    _pos(merge[1]) if src is source else _pos(src),
                    "the value of a merge key (<<) must be a mapping or a list of mappings",
                    self.shown,
                    "write '<<: *name' where &name is a mapping, or '<<: [*a, *b]'",
                )
        merged: dict[str, tuple[tuple[int, int], Any]] = {}
        for src in sources:
            for key, entry in self._pairs(src, chain + 1).items():
                merged.setdefault(key, entry)
        merged.update(own)
        return merged

    def _duplicate(self, items: list[Any], key: str, second: tuple[int, int]) -> MissionFormatError:
        first = next(kpos for (k, kpos, _), _v in items if k == key)
        return _at(
            second,
            f"duplicate key '{_short(key)}' (lines {first[0]} and {second[0]})",
            self.shown,
            "remove one of them: YAML would silently keep only the last",
        )


def _unalias(node: Any) -> Any:
    while type(node) is tuple and node[0] == _ALIAS:
        node = node[1]
    return node


# ---------------------------------------------------------------------------------------------
# Parser errors


def _char_at(text: str, line: int, col: int) -> str:
    lines = text.splitlines()  # the line breaks splitlines() adds were refused in _decode
    if 0 <= line < len(lines) and 0 <= col < len(lines[line]):
        return lines[line][col]
    return ""


def _syntax_error(exc: yaml.YAMLError, text: str, shown: str) -> MissionFormatError:
    if not isinstance(exc, yaml.MarkedYAMLError):
        return MissionFormatError(f"invalid YAML: {exc}", path=shown)
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    col = mark.column + 1 if mark is not None else None
    problem = exc.problem or "invalid YAML"
    ch = _char_at(text, mark.line, mark.column) if mark is not None else ""
    details: tuple[str, ...] = ()
    cm = exc.context_mark
    if exc.context and cm is not None and mark is not None and (cm.line, cm.column) != (mark.line, mark.column):
        details = (f"{exc.context} (line {cm.line + 1}, column {cm.column + 1})",)
    hint = ""
    if ch == "\t" or "tab" in problem:
        what = "tabs are not allowed in YAML indentation"
        hint = "indent with spaces (most editors can turn tabs into spaces)"
        details = ()
    elif "maximum nesting depth" in problem:
        what = f"nesting deeper than {MAX_DEPTH} levels"
        hint = _DEPTH_HINT
        details = ()
    elif "cannot start any token" in problem:
        what = f"invalid YAML: {ch!r} cannot start a value" if ch else f"invalid YAML: {problem}"
        hint = "quote the value" + (f": {ch!r} is reserved in YAML" if ch in ("@", "`") else "")
    elif "mapping values are not allowed" in problem:
        what = "invalid YAML: unexpected ':' (mapping values are not allowed here)"
        hint = "quote a value that contains ': ', or check the indentation"
    elif "end of stream" in problem and exc.context_mark and "quoted" in (exc.context or ""):
        # Point at the opening quote: the end of the file says nothing useful.
        what = "invalid YAML: a quoted string is never closed"
        hint = "add the closing quote"
        line, col = exc.context_mark.line + 1, exc.context_mark.column + 1
        details = ()
    elif "expected" in problem:
        what = f"invalid YAML: {problem}"
        hint = "check the indentation of this line against the lines above it"
    else:
        what = f"invalid YAML: {problem}"
    return MissionFormatError(what, path=shown, line=line, col=col, hint=hint, details=details)


# ---------------------------------------------------------------------------------------------
# Entry points


def load_yaml_text(data: bytes, *, path: str, list_ok: bool = False) -> LoadedYaml:
    """Parse one mission document from ``data``; ``path`` is only used in messages.

    Choices, each made so that a hostile or sloppy file gets a clear answer rather than a surprise:

    - Scalars resolve as in ``yaml.safe_load`` (YAML 1.1: ``no`` is false, ``0755`` is 493), except
      that dates and timestamps stay the text written; both kinds are noted in ``yaml11_surprises``.
    - Mapping keys are always the text written (``on:`` is "on", ``1:`` is "1"); a tagged key other
      than ``!!str``, or a list or mapping as a key, is refused. ``1:`` and ``"1":`` are duplicates.
    - Anchors and aliases are allowed; each alias is a separate copy, and the copies count towards
      ``MAX_NODES``. Merge keys (``<<: *defaults`` or ``<<: [*a, *b]``) work as YAML 1.1 defines
      them: the mapping's own keys win, then the first listed mapping that has the key.
    - Nesting deeper than ``MAX_DEPTH`` lists and mappings is refused, aliases included.
    """
    text = _decode(data, path)
    parser: Any = None
    try:
        parser = _Loader(text)
        root = _compose(parser.get_event, path, list_ok)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, text, path) from None
    finally:
        if parser is not None:
            parser.dispose()
    builder = _Builder(path)
    value = builder.value(root, (), 1)
    return LoadedYaml(
        data=value,
        marks=MappingProxyType(builder.marks),
        key_marks=MappingProxyType(builder.key_marks),
        yaml11_surprises=MappingProxyType(builder.surprises),
    )


def load_yaml_file(
    path: Path, *, display_path: str | None = None, max_bytes: int = 1_048_576, list_ok: bool = False
) -> LoadedYaml:
    """Read and parse a mission file (``list_ok``: or a steps file that is a bare list); every problem
    is a ``MissionFormatError``."""
    shown = display_path or str(path)
    data = read_mission_bytes(path, max_bytes=max_bytes, display_path=shown)
    return load_yaml_text(data, path=shown, list_ok=list_ok)
