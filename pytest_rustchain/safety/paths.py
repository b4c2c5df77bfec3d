"""Where a path word points: inside the workspace, outside it, a device, a socket, or nobody knows."""

from __future__ import annotations

import enum
import fnmatch
import posixpath
import re
from dataclasses import dataclass

from pytest_rustchain.safety.facts import UNKNOWN, Word
from pytest_rustchain.safety.patterns import LazyPattern

__all__ = [
    "HOME_ROOT",
    "Loc",
    "Where",
    "display_path",
    "is_secret_path",
    "locate",
    "locate_text",
    "where_of",
]

HOME_ROOT = "/~"
"""Stands for the user's home in absolute paths. At run time HOME is inside the workspace, but a
mission that names ``~`` means the real home, so it is judged as outside."""

_SINKS = frozenset(
    {
        "/dev/null",
        "/dev/stdout",
        "/dev/stderr",
        "/dev/stdin",
        "/dev/tty",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/fd",
    }
)
_FD_PATH = LazyPattern(r"^/proc/(?:self|\d+)/fd/\d+$")
_PURE_WILDCARD = re.compile(r"^\.?[*?]+$")
_BRACE = re.compile(r"\{([^{}]*,[^{}]*)\}")
_MAX_ALTERNATIVES = 16


class Where(enum.Enum):
    INSIDE = "inside"
    OUTSIDE = "outside"
    UNKNOWN = "unknown"
    SINK = "sink"
    """``/dev/null``, ``/dev/stdout``, ``/dev/fd/N``: writing there changes nothing."""
    DEVICE = "device"
    SOCKET = "socket"
    """``/dev/tcp/host/port``: bash opens a network connection."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Loc:
    """A resolved path: where it is, its absolute form and, inside the workspace, its relative form."""

    where: Where
    path: str = ""
    rel: str = ""
    display: str = ""
    covers_root: bool = False
    """The workspace root itself, or every entry of it (``rm -rf *`` at the root)."""


def display_path(path: str) -> str:
    if path == HOME_ROOT:
        return "~"
    if path.startswith(HOME_ROOT + "/"):
        return "~" + path[len(HOME_ROOT) :]
    return path


def where_of(path: str, ws: str) -> tuple[Where, str]:
    """Classify an absolute, normalised path against the workspace ``ws``; returns (where, rel)."""
    if path == ws:
        return Where.INSIDE, ""
    if path.startswith(ws) and path[len(ws)] == "/":
        return Where.INSIDE, path[len(ws) + 1 :]
    if path.startswith("/dev/") or path == "/dev":
        if path in _SINKS or path.startswith(("/dev/fd/", "/dev/pts/")):
            return Where.SINK, ""
        if path.startswith(("/dev/tcp/", "/dev/udp/")):
            return Where.SOCKET, ""
        if path.startswith(("/dev/shm", "/dev/mqueue")):  # noqa: S108 - classified here, never opened
            return Where.OUTSIDE, ""
        return Where.DEVICE, ""
    if path.startswith("/proc/") and _FD_PATH.match(path):
        return Where.SINK, ""
    return Where.OUTSIDE, ""


def _is_ancestor(path: str, ws: str) -> bool:
    return path == "/" or ws == path or ws.startswith(path.rstrip("/") + "/")


def _expand_braces(value: str) -> list[str]:
    out = [value]
    for _ in range(4):
        nxt: list[str] = []
        changed = False
        for item in out:
            m = _BRACE.search(item)
            if m is None:
                nxt.append(item)
                continue
            changed = True
            for alt in m.group(1).split(","):
                nxt.append(item[: m.start()] + alt + item[m.end() :])
        out = nxt[:_MAX_ALTERNATIVES]
        if not changed:
            break
    return out


def _norm(path: str) -> str:
    path = posixpath.normpath(path)
    # POSIX keeps a leading ``//``; Linux treats it as ``/``.
    return "/" + path.lstrip("/") if path.startswith("//") else path


def _absolute(value: str, home: bool, cwd: tuple[str, ...] | None) -> list[str] | None:
    """Absolute, normalised candidates for a literal path, or None when the base is unknown."""
    if home:
        rest = value.split("/", 1)[1] if "/" in value else ""
        return [_norm(f"{HOME_ROOT}/{rest}")]
    if value.startswith("/"):
        return [_norm(value)]
    if cwd is None:
        return None
    return [_norm(f"{c}/{value}") for c in cwd]


def _loc(path: str, ws: str, *, pattern_last: bool) -> Loc:
    where, rel = where_of(path, ws)
    covers = False
    if where is Where.INSIDE:
        if rel == "":
            covers = True
        elif pattern_last:
            head, _, last = rel.rpartition("/")
            covers = head == "" and bool(_PURE_WILDCARD.match(last))
    display = (rel or ".") if where is Where.INSIDE else display_path(path)
    return Loc(where=where, path=path, rel=rel, display=display, covers_root=covers)


def locate_text(
    value: str, cwd: tuple[str, ...] | None, ws: str, *, home: bool = False, glob: bool = False
) -> list[Loc]:
    """Resolve a literal path string (no expansions left) against the candidate cwds."""
    candidates = _absolute(value, home, cwd)
    if candidates is None:
        return [Loc(where=Where.UNKNOWN, display=value)]
    locs: list[Loc] = []
    for path in candidates:
        pattern_last = glob and any(c in value.rsplit("/", 1)[-1] for c in "*?[")
        locs.append(_loc(path, ws, pattern_last=pattern_last))
    if glob:
        # A pattern such as ``.*`` matches ``..`` in shells without globskipdots (dash, bash < 5.2).
        parts = value.split("/")
        for i, part in enumerate(parts):
            if part.startswith(".") and part != "." and any(c in part for c in "*?["):
                escaped = "/".join([*parts[:i], "..", *parts[i + 1 :]])
                alt = _absolute(escaped, home, cwd) or []
                locs.extend(_loc(p, ws, pattern_last=False) for p in alt)
    return locs


def locate(word: Word, cwd: tuple[str, ...] | None, ws: str) -> list[Loc]:
    """Every place ``word`` may name, judged against the workspace ``ws`` (absolute, normalised)."""
    if word.value is not None:
        if word.value == "":
            return []
        values = _expand_braces(word.value) if word.brace else [word.value]
        locs: list[Loc] = []
        for value in values:
            home = word.home or (word.brace and value.startswith("~"))
            locs.extend(locate_text(value, cwd, ws, home=home, glob=word.glob))
        return locs
    shape = word.shape
    prefix = shape[: shape.index(UNKNOWN)] if UNKNOWN in shape else shape
    slash = prefix.rfind("/")
    unknown = Loc(where=Where.UNKNOWN, display=word.text)
    if slash < 0:
        if word.confined and cwd is not None:
            return [
                Loc(where=loc.where, path=loc.path, rel=loc.rel, display=word.text) for loc in locate_text(".", cwd, ws)
            ]
        return [unknown]
    base_text = prefix[:slash] or "/"
    if word.home and base_text.startswith("~"):
        base_text = HOME_ROOT + base_text[base_text.find("/") :] if "/" in base_text else HOME_ROOT
    bases = _absolute(base_text, False, cwd)
    if bases is None:
        return [unknown]
    locs = []
    for base in bases:
        where, rel = where_of(base, ws)
        if word.confined:
            locs.append(Loc(where=where, path=base, rel=rel, display=word.text))
        elif base == "/dev":
            locs.append(Loc(where=Where.DEVICE, path=base, display=word.text))
        elif where is Where.OUTSIDE and not _is_ancestor(base, ws):
            locs.append(Loc(where=Where.OUTSIDE, path=base, display=word.text))
        else:
            # The unknown part may hold ``..`` or an absolute path: nothing can be promised.
            locs.append(unknown)
    return locs


_HOME_ABS = LazyPattern(r"^/(?:root|home/[^/]+|Users/[^/]+)(?=/|$)")
_SECRET_HOME = LazyPattern(
    r"^~/(?:\.ssh|\.aws|\.gnupg|\.azure|\.kube|\.docker|\.config/gcloud|\.config/gh|\.config/hub"
    r"|\.config/git/credentials|\.terraform\.d|\.vault-token|\.netrc|\.git-credentials|\.npmrc"
    r"|\.pypirc|\.pgpass|\.my\.cnf|\.bash_history|\.zsh_history|\.python_history|\.psql_history"
    r"|\.mysql_history|\.cargo/credentials(?:\.toml)?|\.gem/credentials|\.local/share/keyrings"
    r"|\.password-store|\.m2/settings\.xml|\.gradle/gradle\.properties|\.config/rclone"
    r"|\.config/op|\.config/sops)(?:/|$)"
)
_SECRET_ABS = LazyPattern(
    r"^/(?:etc/(?:shadow|gshadow|sudoers|master\.passwd|security/opasswd)(?:$|[-.])"
    r"|etc/ssh/ssh_host_[^/]*key$"
    r"|etc/ssl/private(?:/|$)"
    r"|proc/[^/]+/(?:environ|mem|task/[^/]+/environ)$"
    r"|(?:var/)?run/secrets(?:/|$)"
    r"|var/lib/docker/containers(?:/|$))"
)


_SECRET_KEY_FILE = LazyPattern(r"\.(?:pem|key|p12|pfx|jks|keystore|ppk)$", re.I)
_PUBLIC_CERTS = LazyPattern(
    r"^/(?:etc/ssl/certs|etc/ca-certificates|etc/pki/ca-trust|usr/share/ca-certificates|usr/lib/ssl/certs)/"
)
_SECRET_SAMPLES = (
    "~/.ssh/id_rsa",
    "~/.ssh/id_ed25519",
    "~/.aws/credentials",
    "~/.docker/config.json",
    "~/.netrc",
    "~/.git-credentials",
    "~/.kube/config",
    "~/.gnupg/private-keys-v1.d/x.key",
    "~/.config/gh/hosts.yml",
    "~/.npmrc",
    "~/.pypirc",
    "~/.vault-token",
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/ssl/private/x.key",
    "/proc/1/environ",
    "/proc/self/environ",
    "/run/secrets/x",
    "/var/run/secrets/x",
)
"""Typical secret files; a glob (``~/.s?h/*``, ``/e?c/shadow``) that may match one is a secret read."""


def is_secret_path(display: str) -> bool:
    """True for paths that hold credentials (``~/.ssh``, ``/proc/*/environ``); ``display`` uses ``~``."""
    home = _HOME_ABS.match(display)
    if home is not None:
        display = "~" + display[home.end() :]
    if _SECRET_KEY_FILE.search(display) and not _PUBLIC_CERTS.match(display):
        return True
    found = bool((_SECRET_HOME if display.startswith("~") else _SECRET_ABS).match(display))
    if not found and any(ch in display for ch in "*?["):
        found = any(fnmatch.fnmatchcase(sample, display) for sample in _SECRET_SAMPLES)
    return found


def shape_display(word: Word, cwd: tuple[str, ...] | None, ws: str) -> list[str]:
    """Displays of the places ``word`` may name, unknown parts as ``*`` (for secret patterns)."""
    if word.value is not None:
        return [loc.display for loc in locate(word, cwd, ws) if loc.where is not Where.INSIDE]
    text = word.shape.replace(UNKNOWN, "*")
    if word.home:
        text = "~" + text[text.find("/") :] if "/" in text else "~"
        return [display_path(_norm(HOME_ROOT + text[1:]))]
    if text.startswith("/"):
        return [_norm(text)]
    return []
