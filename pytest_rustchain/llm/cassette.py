"""Cassettes: record model (and opted-in HTTP) answers once, replay them offline, byte for byte.

One YAML file per mission file, ``<mission_cassette_dir>/<stem>.cassette.yaml``::

    version: 1
    origin: recorded            # or scripted: written by hand, proves the mission's logic only
    interactions:
      - kind: llm               # or http
        key: 3f2a...            # sha256 of the canonical, masked, normalised request
        repeat: 0               # which repeat of the mission asked it
        seq: 0                  # the how-manieth identical request within that repeat (see below)
        step: generate          # diagnostic only: never part of the lookup
        request: {api: openai, model: ..., messages: [...], parameters: {...}}
        response: {content: |, finish_reason: stop, usage: {...}, model: ..., latency_ms: 812}

How to use it (the contract for every caller: the ``llm``/``http`` steps now, the agent loop and
mission repeats later): build one :class:`Recorder` per mission item, and for each call do::

    answer = recorder.call(kind="llm", request=record, step=step_id, repeat=r, seq=None, live=make_call)

``request`` is the call's canonical record (``ChatRequest.to_record(api)``); ``live`` is a
zero-argument function that makes the call now and returns the response record, or None when no
provider is configured. ``repeat`` is the mission repeat (0 without repeats). ``seq`` numbers calls
with the same key inside one repeat: pass None to let the recorder count (the n-th identical request
gets seq n, which is what ``samples`` and retries need), or pass an explicit number (an agent loop can
pass its turn number). The answer carries the response record, its ``source`` (``live``,
``recorded`` or ``scripted``) and the key. Call :meth:`Recorder.save` at the end of the item, also when
the mission failed: it writes atomically, and only when something changed.

Modes (vcrpy's names): ``none`` replays and never calls (no socket is opened: ``live`` is never
invoked); ``once`` records when there is no cassette yet and replays otherwise; ``new_episodes`` replays
what matches and records what does not; ``all`` calls every time and rewrites the file. A miss names
the nearest recording and the first field that differs.

Before anything is written, every string passes the masking list, and a final scan for token shapes
(``sk-``, ``sk-ant-``, ``ghp_``, ``AKIA``, ``Bearer``, JWTs) refuses to write a file that still holds
one. Files are read with the same hardened YAML loader as missions and checked against
``schema/cassette.schema.json``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

import yaml

from pytest_rustchain.errors import MissionError, MissionFormatError
from pytest_rustchain.masking import Masker

__all__ = [
    "MODES",
    "Answer",
    "CassetteError",
    "CassetteMiss",
    "Interaction",
    "NoLiveProvider",
    "Normaliser",
    "Recorder",
    "cassette_path",
    "first_difference",
    "load_cassette",
    "request_key",
    "scan_for_tokens",
]

MODES: Final = ("none", "once", "new_episodes", "all")
ORIGINS: Final = ("recorded", "scripted")
MAX_CASSETTE_BYTES: Final = 64 * 1024 * 1024
_TOKEN_SHAPES: Final = (
    ("an OpenAI/Anthropic-style key", re.compile(r"\bsk-(?:ant-)?[A-Za-z0-9_\-]{16,}")),
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a bearer token", re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=\-]{12,}")),
    ("a JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}")),
)


class CassetteError(MissionError):
    """A cassette cannot be read or written (bad YAML, schema, a token left after masking)."""


class CassetteMiss(MissionError):
    """No recording answers this call in a mode that may not call live."""


class NoLiveProvider(MissionError):
    """The call would have to go live, and no provider is configured: the step is skipped, not failed."""


def cassette_path(cassette_dir: Path, mission_stem: str) -> Path:
    return cassette_dir / f"{mission_stem}.cassette.yaml"


def _canonical(record: Any) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def request_key(record: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a (masked, normalised) request record."""
    return hashlib.sha256(_canonical(record).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Normaliser:
    """Replaces run-specific values (workspace path, HOME, TMPDIR, timestamp, run id) by placeholders."""

    replacements: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, values: Mapping[str, str]) -> Normaliser:
        """``{"<workspace>": "/tmp/x/ws", ...}``: longest value first, so nested paths map to the outer."""
        pairs = sorted(((v, k) for k, v in values.items() if v), key=lambda p: len(p[0]), reverse=True)
        return cls(replacements=tuple(pairs))

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            for old, new in self.replacements:
                if old in value:
                    value = value.replace(old, new)
            return value
        if isinstance(value, Mapping):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Interaction:
    kind: str
    key: str
    repeat: int
    seq: int
    step: str
    request: Mapping[str, Any]
    response: Mapping[str, Any]
    origin: str | None = None
    """Set when it differs from the file's origin (a live answer appended to a scripted file)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "key": self.key,
            "repeat": self.repeat,
            "seq": self.seq,
            "step": self.step,
        }
        if self.origin is not None:
            out["origin"] = self.origin
        out["request"] = dict(self.request)
        out["response"] = dict(self.response)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Cassette:
    origin: str
    interactions: tuple[Interaction, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    response: Mapping[str, Any]
    source: str
    """``live``, ``recorded`` or ``scripted``."""
    key: str
    seq: int


# ---------------------------------------------------------------------------------------------
# Reading


@functools.cache
def _schema() -> dict[str, Any]:
    text = resources.files("pytest_rustchain").joinpath("schema/cassette.schema.json").read_text("utf-8")
    return dict(json.loads(text))


@functools.cache
def _validator() -> Any:
    import jsonschema  # loaded only to explain an invalid cassette

    return jsonschema.Draft202012Validator(_schema())


@functools.cache
def _fast_check() -> Any:
    # Compiled validation says only valid or not, about twenty times faster than jsonschema on a
    # cassette of a thousand calls; jsonschema explains the invalid ones.
    import fastjsonschema

    return fastjsonschema.compile({**_schema(), "$schema": "http://json-schema.org/draft-07/schema#"})


def _is_valid_fast(data: Any) -> bool:
    import fastjsonschema

    try:
        _fast_check()(data)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def load_cassette(path: Path, *, display_path: str | None = None) -> Cassette | None:
    """Read a cassette; None when the file does not exist. Every problem is a :class:`CassetteError`."""
    from pytest_rustchain.yamlload import load_yaml_text, read_mission_bytes

    shown = display_path or str(path)
    try:
        data = read_mission_bytes(path, max_bytes=MAX_CASSETTE_BYTES, display_path=shown)
    except MissionFormatError as exc:
        if not path.exists() and not path.is_symlink():
            return None
        raise CassetteError(f"cannot read cassette {exc}") from None
    try:
        loaded = load_yaml_text(data, path=shown).data
    except MissionFormatError as exc:
        raise CassetteError(
            f"cassette {exc}\nHINT: re-record it (--mission-record-mode=all) or fix it by hand"
        ) from None
    errors = [] if _is_valid_fast(loaded) else sorted(_validator().iter_errors(loaded), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first.absolute_path)
        raise CassetteError(
            f"{shown}: not a valid cassette: {first.message}\n  at {where}\n"
            "HINT: a cassette has version, origin (recorded or scripted) and interactions; "
            "see pytest_rustchain/schema/cassette.schema.json"
        )
    return Cassette(
        origin=loaded["origin"],
        interactions=tuple(
            Interaction(
                kind=i["kind"],
                key=i["key"],
                repeat=i["repeat"],
                seq=i["seq"],
                step=i.get("step", ""),
                request=i["request"],
                response=i["response"],
                origin=i.get("origin"),
            )
            for i in loaded["interactions"]
        ),
    )


# ---------------------------------------------------------------------------------------------
# Writing


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Multi-line text as literal blocks, so a pull request shows the model's answer as it reads."""


def _str(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def scan_for_tokens(value: Any, path: str = "$") -> tuple[str, str] | None:
    """The first string that still looks like a credential: (JSON path, what it looks like)."""
    if isinstance(value, str):
        for what, pattern in _TOKEN_SHAPES:
            if pattern.search(value):
                return path, what
        return None
    if isinstance(value, Mapping):
        for k, v in value.items():
            found = scan_for_tokens(v, f"{path}.{k}")
            if found:
                return found
        return None
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found = scan_for_tokens(v, f"{path}[{i}]")
            if found:
                return found
    return None


def _write(path: Path, document: Mapping[str, Any], masker: Masker) -> None:
    clean = masker.value(dict(document))
    found = scan_for_tokens(clean)
    if found is not None:
        where, what = found
        raise CassetteError(
            f"refusing to write cassette {path}: {where} still holds what looks like {what} after masking\n"
            "HINT: list the secret's variable in mission_secrets (or name it *_KEY / *TOKEN*), or keep it "
            "out of prompts; nothing was written"
        )
    text = yaml.dump(clean, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temp).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(temp).unlink()
        raise


# ---------------------------------------------------------------------------------------------
# Differences


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value
    text = text.replace("\n", "\\n")
    return f'"{text[:limit]}..."' if len(text) > limit else f'"{text}"'


def first_difference(recorded: Any, now: Any, path: str = "") -> str | None:
    """``messages[0].content: recorded "..." now "..."`` for the first field that differs, else None."""
    if isinstance(recorded, Mapping) and isinstance(now, Mapping):
        for k in list(recorded) + [k for k in now if k not in recorded]:
            sub = f"{path}.{k}" if path else str(k)
            if k not in now:
                return f"{sub}: recorded {_short(recorded[k])}, now absent"
            if k not in recorded:
                return f"{sub}: not recorded, now {_short(now[k])}"
            found = first_difference(recorded[k], now[k], sub)
            if found:
                return found
        return None
    if isinstance(recorded, list) and isinstance(now, list):
        for i, (a, b) in enumerate(zip(recorded, now, strict=False)):
            found = first_difference(a, b, f"{path}[{i}]")
            if found:
                return found
        if len(recorded) != len(now):
            return f"{path}: recorded {len(recorded)} entries, now {len(now)}"
        return None
    if recorded != now:
        return f"{path or '$'}: recorded {_short(recorded)} now {_short(now)}"
    return None


# ---------------------------------------------------------------------------------------------
# The recorder


@dataclass(slots=True, kw_only=True)
class _Counters:
    calls: int = 0
    by_source: dict[str, int] = field(default_factory=dict)


class Recorder:
    """Record and replay for one mission item; see the module docstring for how callers use it."""

    def __init__(
        self,
        *,
        path: Path,
        mode: str,
        masker: Masker,
        normaliser: Normaliser | None = None,
        display_path: str | None = None,
        prune: bool = False,
        steps: frozenset[str] | None = None,
    ) -> None:
        if mode not in MODES:
            raise CassetteError(f"unknown record mode '{mode}'\nHINT: use one of {', '.join(MODES)}")
        self.path = path
        self.display_path = display_path or str(path)
        self.mode = mode
        self.masker = masker
        self.normaliser = normaliser or Normaliser()
        self.prune = prune
        self.steps = steps
        """When set, only these steps' recordings belong to this run (a rejudge asks the judge alone): the
        others are never counted unused, pruned or dropped by ``all``."""
        self._loaded = False
        self._cassette: Cassette | None = None
        self._index: dict[tuple[str, int, int], Interaction] = {}
        self._used: set[tuple[str, int, int]] = set()
        self._new: list[Interaction] = []
        self._seqs: dict[tuple[str, int], int] = {}
        self.counters = _Counters()

    # -- reading --------------------------------------------------------------------------------

    def _load(self) -> Cassette | None:
        if not self._loaded:
            self._loaded = True
            self._cassette = load_cassette(self.path, display_path=self.display_path)
            if self._cassette is not None:
                self._index = {(i.key, i.repeat, i.seq): i for i in self._cassette.interactions}
        return self._cassette

    @property
    def origin(self) -> str | None:
        cassette = self._load()
        return cassette.origin if cassette else None

    def has_recordings(self, kind: str | None = None, step: str | None = None) -> bool:
        cassette = self._load()
        if cassette is None:
            return False
        return any((kind is None or i.kind == kind) and (step is None or i.step == step) for i in cassette.interactions)

    def will_call_live(self) -> bool:
        """Whether a call that misses may go live in this mode (``none`` never does)."""
        if self.mode in ("all", "new_episodes"):
            return True
        return self.mode == "once" and self._load() is None

    # -- the call -------------------------------------------------------------------------------

    def prepare(self, request: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        """The stored form of ``request`` (masked, normalised) and its key."""
        record = self.normaliser.value(self.masker.value(dict(request)))
        return record, request_key(record)

    def call(
        self,
        *,
        kind: str,
        request: Mapping[str, Any],
        step: str,
        live: Callable[[], Mapping[str, Any]] | None,
        repeat: int = 0,
        seq: int | None = None,
        no_live_reason: str = "no LLM provider is configured",
    ) -> Answer:
        record, key = self.prepare(request)
        if seq is None:
            seq = self._seqs.get((key, repeat), 0)
        self._seqs[(key, repeat)] = max(self._seqs.get((key, repeat), 0), seq + 1)
        slot = (key, repeat, seq)
        if self.mode != "all":
            self._load()
            found = self._index.get(slot)
            if found is not None:
                self._used.add(slot)
                source = found.origin or (self._cassette.origin if self._cassette else "recorded")
                self._count(source)
                return Answer(response=found.response, source=source, key=key, seq=seq)
            if self.mode == "none" or (self.mode == "once" and self._cassette is not None):
                raise CassetteMiss(self._miss_message(kind, record, key, step, repeat, seq))
        if live is None:
            raise NoLiveProvider(f"{no_live_reason}, and {self._why_no_recording(kind, step)}")
        response = dict(live())
        origin = "recorded" if self._cassette is not None and self._cassette.origin == "scripted" else None
        self._new.append(
            Interaction(
                kind=kind, key=key, repeat=repeat, seq=seq, step=step, request=record, response=response, origin=origin
            )
        )
        self._count("live")
        return Answer(response=response, source="live", key=key, seq=seq)

    def _count(self, source: str) -> None:
        self.counters.calls += 1
        self.counters.by_source[source] = self.counters.by_source.get(source, 0) + 1

    def _why_no_recording(self, kind: str, step: str) -> str:
        if self._cassette is None:
            return f"there is no recording ({self.display_path} does not exist)"
        return f"{self.display_path} holds no {kind} answer for step '{step}'"

    def _miss_message(self, kind: str, record: Mapping[str, Any], key: str, step: str, repeat: int, seq: int) -> str:
        if self._cassette is None:
            return (
                f"no cassette at {self.display_path} and record mode is '{self.mode}'\n"
                "HINT: record one with a provider configured and --mission-record-mode=once "
                "(or write one by hand with origin: scripted)"
            )
        candidates = [i for i in self._cassette.interactions if i.kind == kind]
        same_step = [i for i in candidates if i.step == step]
        pool = same_step or candidates
        lines = [f"no recorded {kind} answer for step '{step}' (repeat {repeat}, call {seq}) in {self.display_path}"]
        in_repeat = [i for i in pool if i.repeat == repeat]
        if pool and not in_repeat:
            repeats = sorted({i.repeat for i in pool})
            lines.append(
                f"  the cassette holds repeats {', '.join(map(str, repeats))} for this step, not repeat {repeat}"
            )
        elif pool:
            same_key = [i for i in in_repeat if i.key == key]
            if same_key:
                lines.append(
                    f"  the same request is recorded {len(same_key)} time(s) in this repeat; call {seq} is one more"
                )
            else:
                nearest = min(in_repeat, key=lambda i: (abs(i.seq - seq), i.step != step))
                diff = first_difference(dict(nearest.request), dict(record))
                lines.append(f"  nearest recording: step '{nearest.step}' call {nearest.seq}")
                if diff:
                    lines.append(f"  first difference: {diff}")
        else:
            lines.append(f"  the cassette holds no {kind} interactions")
        lines.append(
            "HINT: the request changed since it was recorded: re-record with --mission-record-mode=new_episodes "
            "(or all), or edit the cassette"
        )
        return "\n".join(lines)

    # -- the end of the item --------------------------------------------------------------------

    def unused(self) -> list[Interaction]:
        """Recordings this run never asked for (meaningful when the whole mission ran)."""
        cassette = self._cassette
        if cassette is None:
            return []
        return [i for i in cassette.interactions if self._mine(i) and (i.key, i.repeat, i.seq) not in self._used]

    def _mine(self, interaction: Interaction) -> bool:
        return self.steps is None or interaction.step in self.steps

    def save(self) -> bool:
        """Write the cassette if this run changed it; True when a file was written."""
        if self.mode == "none" and not self.prune:
            return False
        cassette = self._load() if self.steps is not None else self._cassette
        everything = list(cassette.interactions) if cassette is not None else []
        others = [i for i in everything if not self._mine(i)]
        if self.mode == "all":
            kept = others
        elif self.prune:
            kept = [i for i in everything if not self._mine(i) or (i.key, i.repeat, i.seq) in self._used]
        else:
            kept = everything
        pruned = self.prune and len(kept) != len(everything)
        if not self._new and not pruned:
            return False
        if cassette is None or (self.mode == "all" and not others):
            origin = "recorded"
            new = [_with_origin(i, None) for i in self._new]
        else:
            origin = cassette.origin
            new = [i if i.origin or origin == "recorded" else _with_origin(i, "recorded") for i in self._new]
        document = {
            "version": 1,
            "origin": origin,
            "interactions": [i.to_dict() for i in _ordered([*kept, *new])],
        }
        _write(self.path, document, self.masker)
        return True


def _with_origin(i: Interaction, origin: str | None) -> Interaction:
    return Interaction(
        kind=i.kind,
        key=i.key,
        repeat=i.repeat,
        seq=i.seq,
        step=i.step,
        request=i.request,
        response=i.response,
        origin=origin,
    )


def _ordered(interactions: Iterable[Interaction]) -> list[Interaction]:
    # Stable by repeat only: within a repeat the order calls were made in is the readable one.
    return sorted(interactions, key=lambda i: i.repeat)
