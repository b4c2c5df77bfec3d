"""Loaded missions kept between runs, so that an unchanged mission file is not parsed and checked again.

An entry is named by a hash of everything the loaded mission depends on: the file's bytes, its path, the
load options, the Python version and the plugin's own files. Only missions whose loading looked at
nothing but their own file are kept (no ``extends``, ``include``, setup files, next missions, templates
or workspace copies), so the bytes alone decide the result.

Entries are pickles of the model's frozen dataclasses, read back by an unpickler that builds nothing
else: the plugin's dataclasses and enums and pathlib paths. An entry that is damaged, refused or of an
older format is ignored and the file is loaded again; the cache never changes what a mission is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import hashlib
import importlib
import io
import os
import pickle
import stat
import sys
import time
from pathlib import Path
from typing import Any

from pytest_rustchain.model import LoadOptions, Mission

__all__ = ["MissionCache"]

FORMAT = 1
_SUFFIX = ".pickle"
_KEEP_SECONDS = 7 * 24 * 3600
"""Entries not read for a week are removed at the end of a run."""
_TOUCH_AFTER = 24 * 3600
_PRUNE_EVERY = 24 * 3600
_PRUNED = ".pruned"
"""The marker whose modification time says when the entries were last pruned."""
_PATHS = frozenset({"Path", "PosixPath", "PurePath", "PurePosixPath", "WindowsPath", "PureWindowsPath"})


@functools.cache
def _fingerprint() -> bytes:
    """The plugin's files (name, size, modification time) and the Python version: a new release or an
    edited checkout makes every entry stale."""
    digest = hashlib.sha256(f"{FORMAT}\0{sys.version}\0{pickle.HIGHEST_PROTOCOL}".encode())
    package = Path(__file__).parent
    for directory, subdirs, files in os.walk(package):
        subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".json")):
                file = Path(directory, name)
                st = file.stat()
                digest.update(f"{file.relative_to(package)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return digest.digest()


def _read_regular(path: Path, max_bytes: int) -> bytes | None:
    """The bytes of a regular file of at most ``max_bytes``; None for anything else (the loader then
    reads it, and explains what is wrong with it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes:
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)
        return data if len(data) <= max_bytes else None
    except OSError:
        return None
    finally:
        os.close(fd)


@functools.cache
def _allowed_class(module: str, name: str) -> type | None:
    """The class an entry may name: a pathlib path, or one of the plugin's dataclasses and enums."""
    if module == "pathlib" and name in _PATHS:
        found = getattr(importlib.import_module(module), name, None)
    elif module.startswith("pytest_rustchain.") and name.isidentifier():
        found = getattr(importlib.import_module(module), name, None)
        if not (isinstance(found, type) and (dataclasses.is_dataclass(found) or issubclass(found, enum.Enum))):
            found = None
    else:
        found = None
    return found if isinstance(found, type) else None


class _ModelUnpickler(pickle.Unpickler):
    """Builds the plugin's own dataclasses and enums and pathlib paths, and refuses every other name."""

    def find_class(self, module: str, name: str) -> Any:
        found = _allowed_class(module, name)
        if found is None:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a loaded mission")
        return found


def _unpickle(data: bytes) -> Mission | None:
    try:
        found = _ModelUnpickler(io.BytesIO(data)).load()
    except Exception:  # a damaged or refused entry is a miss, whatever the unpickler raised
        return None
    return found if isinstance(found, Mission) else None


class MissionCache:
    """The entries in one directory (``.pytest_cache/d/rustchain-missions``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._prefixes: dict[LoadOptions, Any] = {}

    def key(self, path: Path, display: str, options: LoadOptions) -> str | None:
        """The entry name for the file as it is now; None when it is not a small regular file."""
        data = _read_regular(path, options.limits.max_file_bytes)
        if data is None:
            return None
        # The fingerprint and the load options are the same for every file of a session: hashed once.
        start = self._prefixes.get(options)
        if start is None:
            start = self._prefixes[options] = hashlib.sha256(_fingerprint() + f"{options!r}\0".encode())
        digest = start.copy()
        digest.update(f"{path}\0{display}\0".encode())
        digest.update(data)
        return digest.hexdigest()

    def get(self, key: str) -> Mission | None:
        entry = self.directory / (key + _SUFFIX)
        try:
            with entry.open("rb") as stream:
                data = stream.read()
                modified = os.fstat(stream.fileno()).st_mtime
        except OSError:
            return None
        mission = _unpickle(data)
        if mission is not None and time.time() - modified > _TOUCH_AFTER:
            with contextlib.suppress(OSError):
                os.utime(entry)
        return mission

    def put(self, key: str, mission: Mission) -> None:
        """Keep ``mission`` under ``key``, when it reads back the same (else keep nothing)."""
        try:
            data = pickle.dumps(mission, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # something in it does not pickle: it is loaded from its file each time
            return
        if _unpickle(data) != mission:
            return
        entry = self.directory / (key + _SUFFIX)
        partial = self.directory / f".{key}.{os.getpid()}.tmp"
        try:
            partial.write_bytes(data)
            partial.replace(entry)
        except OSError:
            partial.unlink(missing_ok=True)

    def prune(self) -> None:
        """Remove the entries no run has read for a week, and partial files left by a killed run; at
        most once a day (a marker file says when it last ran), since that reads every entry's age."""
        now = time.time()
        marker = self.directory / _PRUNED
        try:
            if now - marker.stat().st_mtime < _PRUNE_EVERY:
                return
        except OSError:
            pass
        try:
            listing = list(os.scandir(self.directory))
        except OSError:
            return
        with contextlib.suppress(OSError):
            marker.touch()
        for item in listing:
            try:
                old = now - item.stat(follow_symlinks=False).st_mtime
                if (item.name.endswith(_SUFFIX) and old > _KEEP_SECONDS) or (item.name.endswith(".tmp") and old > 3600):
                    Path(item.path).unlink()
            except OSError:
                continue
