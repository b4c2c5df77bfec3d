"""The ``$MISSION_OUTPUT`` file of a run's command steps: made once, and again only when a step used it."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["OutputFile", "one_off"]

_PREFIX = "mission-output-"


def _make(directory: str | None) -> tuple[str, tuple[int, int]]:
    fd, path = tempfile.mkstemp(prefix=_PREFIX, dir=directory)
    try:
        info = os.fstat(fd)
    finally:
        os.close(fd)
    return path, (info.st_dev, info.st_ino)


@contextlib.contextmanager
def one_off(directory: str | None) -> Iterator[str]:
    """A new empty file for one command, removed after it."""
    path, _ = _make(directory)
    try:
        yield path
    finally:
        Path(path).unlink(missing_ok=True)


class OutputFile:
    """One run's ``$MISSION_OUTPUT`` file. Every command finds it there, empty and its own; most commands
    write nothing to it, so instead of a file made and removed for each command (which costs more than
    the rest of a short command's bookkeeping), the same empty file serves the next command. A file that
    a command wrote to, replaced, linked or changed the mode of is removed after it, as before, and the
    next command gets a new one. ``close()`` removes the last one when the run ends."""

    __slots__ = ("_busy", "_directory", "_ident", "_path")

    def __init__(self) -> None:
        self._path: str | None = None
        self._directory: str | None = None
        self._ident: tuple[int, int] = (0, 0)
        self._busy = False

    @contextlib.contextmanager
    def use(self, directory: str | None) -> Iterator[str]:
        """The path of an empty output file in ``directory`` (the step's TMPDIR) while one command runs."""
        if self._busy:
            # A command started while another one runs (a step type that nests them): its own file.
            with one_off(directory) as path:
                yield path
            return
        self._busy = True
        try:
            if self._path is None or self._directory != directory:
                self.close()
                self._path, self._ident = _make(directory)
                self._directory = directory
            path = self._path
            try:
                yield path
            finally:
                if not self._untouched(path):
                    self.close()
        finally:
            self._busy = False

    def _untouched(self, path: str) -> bool:
        """Still the empty, private, regular file made for it (not written, replaced, linked or opened up)."""
        try:
            info = os.lstat(path)
        except OSError:
            return False
        return (
            stat.S_ISREG(info.st_mode)
            and (info.st_dev, info.st_ino) == self._ident
            and info.st_size == 0
            and info.st_nlink == 1
            and stat.S_IMODE(info.st_mode) == 0o600
        )

    def discard(self) -> None:
        """At the end of the run: remove the file if it is there; a problem removing it is no one's failure."""
        with contextlib.suppress(OSError):
            self.close()

    def close(self) -> None:
        """Remove the file (if it is still there) and forget it."""
        path, self._path, self._directory = self._path, None, None
        if path is not None:
            Path(path).unlink(missing_ok=True)
