"""Secret masking and CI-safe output: what every sink writes goes through a ``Masker``."""

from __future__ import annotations

import base64
import fnmatch
import functools
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MASK", "Masker", "is_secret_name", "neutralise_workflow_commands", "one_line", "secret_values"]

MASK = "***"
MIN_SECRET_LENGTH = 6
SECRET_NAME_PATTERNS = (
    "*TOKEN*", "*SECRET*", "*PASSWORD*", "*PASSWD*", "*API_KEY*", "*_KEY", "*CREDENTIAL*", "*_AUTH", "AUTH_*",
)  # fmt: skip
_NOT_SECRET = ("GIT_AUTHOR_*", "GIT_COMMITTER_*")
# Characters a culture-aware comparison may skip over; "::" hidden between them still reads as "::".
_IGNORABLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufe00-\ufe0f\ufeff"
)
_WORKFLOW_COMMAND = re.compile(rf"(?:^|(?<=\r))([^\S\r\n]*)([{_IGNORABLE}]*:[{_IGNORABLE}]*:)", re.MULTILINE)
_LEGACY_COMMAND = re.compile(rf"(#[{_IGNORABLE}]*#[{_IGNORABLE}]*)(\[)")


def neutralise_workflow_commands(text: str) -> str:
    """A line starting with ``::`` is a GitHub Actions workflow command, and so is ``##[`` anywhere in
    a line (the runner's legacy syntax); a backslash keeps them visible and inert."""
    if ":" in text:
        text = _WORKFLOW_COMMAND.sub(r"\1\\\2", text)
    if "#" in text:
        text = _LEGACY_COMMAND.sub(r"\1\\\2", text)
    return text


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """A string from a mission (a name, a key) shown on one line: control characters escaped and
    workflow commands neutralised, so it cannot start a line of its own in the CI log."""
    if _CONTROL.search(text):
        text = _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)
    return neutralise_workflow_commands(text)


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    # Cached: every mission checks every name of the pytest environment, and the names repeat.
    upper = name.upper()
    if any(fnmatch.fnmatchcase(upper, p) for p in _NOT_SECRET):
        return False
    return any(fnmatch.fnmatchcase(upper, p) for p in SECRET_NAME_PATTERNS)


def secret_values(env: Mapping[str, str], extra_names: Iterable[str] = ()) -> list[str]:
    """Values of secret-looking variables in ``env`` and of the variables named in ``extra_names``."""
    names = set(extra_names)
    return [v for k, v in env.items() if (is_secret_name(k) or k in names) and len(v) >= MIN_SECRET_LENGTH]


_URL_PASSWORD = re.compile(r"://[^:/@\s]+:(?P<password>[^@\s/]+)@")


def config_file_secrets(text: str) -> list[str]:
    """Secrets in a user's configuration file (``.npmrc``, ``pip.conf``, ``.gitconfig``, ``.pypirc``):
    values of secret-looking keys (``_authToken``, ``password``) and passwords in URLs."""
    found: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";", "[")):
            continue
        # "key = value" (ini, .npmrc, whose keys may hold ':'), else "key: value" (YAML).
        key, sep, value = stripped.partition("=") if "=" in stripped else stripped.partition(":")
        if sep:
            name = re.sub(r"[^A-Za-z0-9]+", "_", key).strip("_")
            value = value.strip().strip("'\"")
            if is_secret_name(name) or name.upper().endswith(("PASSWORD", "PASSWD", "TOKEN", "AUTH")):
                found.append(value)
        found.extend(m.group("password") for m in _URL_PASSWORD.finditer(line))
    return [v for v in found if len(v) >= MIN_SECRET_LENGTH]


def _encoded_forms(secret: str) -> set[str]:
    raw = secret.encode("utf-8")
    quoted = urllib.parse.quote(secret, safe="")
    forms = {secret, quoted, urllib.parse.quote_plus(secret), secret[::-1], raw.hex(), raw.hex().upper()}
    # Lowercase percent-escapes (``%2f``) are as valid as uppercase ones.
    forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quoted))
    # A secret inside a longer base64 text shows up in one of three alignments; the part of each
    # encoding that does not depend on the neighbouring bytes is what can be found and masked.
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode("ascii").rstrip("=")
        start = (shift * 4 + 2) // 3 if shift else 0
        tail = len(raw) + shift
        stable_end = (tail // 3) * 4
        core = encoded[start:stable_end]
        if len(core) >= MIN_SECRET_LENGTH:
            forms.add(core)
        for alphabet in (core.replace("+", "-").replace("/", "_"),):
            if len(alphabet) >= MIN_SECRET_LENGTH:
                forms.add(alphabet)
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


@dataclass(frozen=True, slots=True, kw_only=True)
class Masker:
    """Replaces secret values (and their base64, URL-encoded, hex and reversed forms) with ``***``."""

    secrets: tuple[str, ...] = ()
    neutralise_workflow_commands: bool = False
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        forms: set[str] = set()
        for secret in self.secrets:
            if len(secret) >= MIN_SECRET_LENGTH:
                forms |= _encoded_forms(secret)
        if forms:
            # Longest first, so a secret's encoded form is masked whole, not around a shorter one.
            alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
            object.__setattr__(self, "_pattern", re.compile(alternatives))

    def with_secrets(self, more: Iterable[str]) -> Masker:
        extra = tuple(s for s in more if len(s) >= MIN_SECRET_LENGTH and s not in self.secrets)
        if not extra:
            return self
        return Masker(secrets=self.secrets + extra, neutralise_workflow_commands=self.neutralise_workflow_commands)

    def text(self, value: str) -> str:
        if self._pattern is not None:
            value = self._pattern.sub(MASK, value)
        if self.neutralise_workflow_commands:
            value = neutralise_workflow_commands(value)
        return value

    def value(self, value: Any) -> Any:
        """Mask every string inside ``value`` (mappings and lists are walked)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            # Keys too: ``echo "$TOKEN=1" >> "$MISSION_OUTPUT"`` makes a secret an output name.
            return {(self.text(k) if isinstance(k, str) else k): self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return value

    @property
    def active(self) -> bool:
        return self._pattern is not None or self.neutralise_workflow_commands
