"""The environment a step's processes get: an allow-list, never the whole pytest environment."""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Iterable, Mapping

__all__ = ["ALLOWED_NAMES", "ALLOWED_PATTERNS", "allowed_environment"]

ALLOWED_NAMES = frozenset(
    {
        "PATH", "LANG", "TERM", "TZ", "USER", "LOGNAME", "CI", "NO_PROXY", "no_proxy",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
        "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "UV_INDEX_URL", "NPM_CONFIG_REGISTRY",
    }
)  # fmt: skip
ALLOWED_PATTERNS = ("LC_*", "*_PROXY", "*_proxy")


@functools.lru_cache(maxsize=4096)
def _allowed(name: str, extra: tuple[str, ...]) -> bool:
    # Cached: every mission filters the same pytest environment.
    return name in ALLOWED_NAMES or any(fnmatch.fnmatchcase(name, p) for p in (*ALLOWED_PATTERNS, *extra))


def allowed_environment(source: Mapping[str, str], pass_env: Iterable[str] = ()) -> dict[str, str]:
    """The variables of ``source`` that steps may see: the allow-list plus ``pass_env`` names/globs."""
    extra = tuple(pass_env)
    out: dict[str, str] = {}
    for name, value in source.items():
        if _allowed(name, extra):
            out[name] = value
    if "PATH" not in out:
        out["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    return out
