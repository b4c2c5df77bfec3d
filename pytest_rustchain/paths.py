"""Containment of file-step paths in the workspace, and open/write primitives that re-check it."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Sequence
from pathlib import Path, PurePath, PurePosixPath

from pytest_rustchain.errors import PathEscapeError, StepError

__all__ = [
    "MAX_NAME_BYTES",
    "MAX_PATH_BYTES",
    "TEMP_PREFIX",
    "NotFoundError",
    "atomic_write",
    "is_git_name",
    "lstat_beneath",
    "open_beneath",
    "open_dir_beneath",
    "quote_path",
    "read_regular",
    "relative_posix",
    "resolve_in_workspace",
    "workspace_parts",
]

MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096
TEMP_PREFIX = ".rustchain-tmp-"
"""Names of temporary files written next to their target; listing and copying skip them."""

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_ESCAPE_HINT = "HINT: use a path inside the workspace, relative to it (for example 'build/out.txt')"
_SYMLINK_HINT = "HINT: use a path inside the workspace; file steps follow only symlinks that stay inside it"
_GIT_HINT = "HINT: file steps never read or write under .git/; use a git step for repository work"


class NotFoundError(StepError):
    """The path (or one of its parent directories) does not exist."""


def quote_path(text: str) -> str:
    """Quote a user-given path for a message: control characters escaped, very long ones trimmed."""
    if len(text) > 120:
        text = text[:100] + "..." + text[-10:]
    return repr(text)


def is_git_name(name: str) -> bool:
    # Case-insensitive because a checkout on a case-insensitive filesystem treats .GIT as .git.
    return name.casefold() == ".git"


def _escape(given: str, *details: str, hint: str = _ESCAPE_HINT) -> PathEscapeError:
    lines = [f"path escapes the workspace: {quote_path(given)}", *details, hint]
    return PathEscapeError("\n".join(lines))


def _git_refused(given: str) -> PathEscapeError:
    return PathEscapeError(f"path is inside .git: {quote_path(given)}\n{_GIT_HINT}")


def _check_text(given: str) -> None:
    """Refuse strings no file system call should see: empty, NUL, undecodable or over-long."""
    if given == "":
        raise PathEscapeError("path is empty\nHINT: name a file inside the workspace")
    if "\x00" in given:
        raise PathEscapeError(f"path contains a NUL byte: {quote_path(given)}")
    try:
        encoded = os.fsencode(given)
    except UnicodeEncodeError:
        raise PathEscapeError(
            f"path is not valid text: {quote_path(given)}\nit holds a lone surrogate character"
        ) from None
    if len(encoded) > MAX_PATH_BYTES:
        raise PathEscapeError(
            f"path is too long: {len(encoded)} bytes, the limit is {MAX_PATH_BYTES}\npath: {quote_path(given)}"
        )
    for name in encoded.split(b"/"):
        if len(name) > MAX_NAME_BYTES:
            raise PathEscapeError(
                f"a path component is too long: {len(name)} bytes, the limit is {MAX_NAME_BYTES}\n"
                f"path: {quote_path(given)}"
            )


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _real_workspace(workspace: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.fspath(workspace))


def resolve_in_workspace(
    workspace: Path,
    rel: str | os.PathLike[str],
    *,
    cwd: Path | None = None,
    follow_last: bool = True,
) -> Path:
    """Return the real absolute path that ``rel`` names, refusing anything outside ``workspace``.

    Relative paths resolve against ``cwd`` (default: the workspace). Symlinks are followed as the
    kernel would and must stay inside; with ``follow_last=False`` the final component is kept as
    named (to delete or move a symlink itself). The result holds no symlinks at the time of the
    call: the open helpers below refuse any that appear later.
    """
    given = os.fspath(rel)
    _check_text(given)
    if given.startswith("~"):
        raise _escape(
            given,
            "'~' is not expanded: file steps see only the workspace",
            hint="HINT: use a workspace-relative path; each mission has its own HOME inside it",
        )
    if any(is_git_name(part) for part in PurePosixPath(given).parts):
        raise _git_refused(given)

    ws = _real_workspace(workspace)
    base = os.path.realpath(cwd) if cwd is not None else ws
    if not _inside(base, ws):
        raise PathEscapeError(
            f"working directory is outside the workspace: {quote_path(str(cwd))}\n"
            "HINT: set working_dir to a directory inside the workspace"
        )
    # String paths on purpose: pathlib drops a trailing slash and "." parts, which matter here.
    joined = os.path.join(base, given)  # noqa: PTH118
    if not _inside(os.path.normpath(joined), ws):
        raise _escape(given)

    trimmed = joined.rstrip("/") or "/"
    head, tail = os.path.split(trimmed)
    if follow_last or tail in ("", ".", ".."):
        real = os.path.realpath(joined)
    else:
        real = os.path.join(os.path.realpath(head), tail)  # noqa: PTH118
    if not _inside(real, ws):
        raise _escape(given, f"it resolves to {quote_path(real)} through a symlink", hint=_SYMLINK_HINT)
    inner = PurePosixPath(os.path.relpath(real, ws)).parts
    if any(is_git_name(part) for part in inner):
        raise _git_refused(given)
    _refuse_loops(ws, inner if follow_last else inner[:-1], given)
    return Path(real)


def _refuse_loops(ws: str, parts: Sequence[str], given: str) -> None:
    """realpath leaves a symlink loop unresolved; name it here rather than fail later at open."""
    current = ws
    for part in parts:
        if part == ".":
            continue
        current = os.path.join(current, part)  # noqa: PTH118
        try:
            mode = os.lstat(current).st_mode
        except OSError:
            return
        if stat.S_ISLNK(mode):
            raise PathEscapeError(
                f"symlink loop in path: {quote_path(given)}\n"
                f"{quote_path(os.path.relpath(current, ws))} leads back to itself"
            )


def relative_posix(workspace: Path, path: Path) -> str:
    """The workspace-relative POSIX spelling of a resolved path ("." for the root)."""
    parts = workspace_parts(workspace, path)
    return "/".join(parts) if parts else "."


def workspace_parts(workspace: Path, rel: str | PurePath) -> tuple[str, ...]:
    """Split a path into workspace-relative components, refusing any that could leave it.

    Absolute paths must lie lexically under the workspace. Unlike ``resolve_in_workspace`` this does
    not look at the file system: ``..`` is refused outright, and symlinks are left to the open
    helpers, which never follow them.
    """
    text = os.fspath(rel)
    _check_text(text)
    path = PurePosixPath(text)
    if path.is_absolute():
        for root in (_real_workspace(workspace), os.path.normpath(os.fspath(workspace))):
            if _inside(os.path.normpath(text), root):
                path = PurePosixPath(os.path.relpath(os.path.normpath(text), root))
                break
        else:
            raise _escape(text)
    parts = tuple(part for part in path.parts if part != ".")
    for part in parts:
        if part == "..":
            raise _escape(text)
        if is_git_name(part):
            raise _git_refused(text)
    return parts


def _shown(parts: Sequence[str]) -> str:
    return quote_path("/".join(parts) if parts else ".")


def _is_symlink_at(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _symlink_refused(parts: Sequence[str], upto: int) -> PathEscapeError:
    link = "/".join(parts[: upto + 1])
    return PathEscapeError(
        f"path escapes the workspace: {_shown(parts)}\n"
        f"{quote_path(link)} is a symlink at open time; it was not when the path was checked\n"
        f"{_SYMLINK_HINT}"
    )


def _os_error(exc: OSError, parts: Sequence[str]) -> StepError:
    if exc.errno == errno.ENOENT:
        return NotFoundError(f"no such file or directory: {_shown(parts)}")
    if exc.errno == errno.ENOTDIR:
        return StepError(f"not a directory: {_shown(parts)}")
    if exc.errno == errno.EISDIR:
        return StepError(f"is a directory: {_shown(parts)}")
    reason = exc.strerror or str(exc)
    return StepError(f"{reason}: {_shown(parts)}")


def open_dir_beneath(workspace: Path, rel_parts: Sequence[str], *, create: bool = False) -> int:
    """Open the directory ``workspace/rel_parts`` one component at a time, following no symlink.

    With ``create`` missing directories are made (``mkdir`` relative to the already-open parent, so
    a symlink planted in between is never followed). The caller closes the returned descriptor.
    """
    parts = tuple(rel_parts)
    for part in parts:
        if part in ("", ".", "..") or "/" in part or "\x00" in part or is_git_name(part):
            raise _escape("/".join(parts))
    fd = os.open(_real_workspace(workspace), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for index, part in enumerate(parts):
            child = _open_child_dir(fd, part, parts, index, create=create)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_child_dir(fd: int, part: str, parts: tuple[str, ...], index: int, *, create: bool) -> int:
    upto = parts[: index + 1]
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=fd)
    except FileNotFoundError:
        if not create:
            raise NotFoundError(f"no such directory: {_shown(upto)}") from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_symlink_at(fd, part):
            raise _symlink_refused(parts, index) from None
        raise _os_error(exc, upto) from None
    try:
        os.mkdir(part, 0o777, dir_fd=fd)
    except FileExistsError:
        # Made concurrently by someone else; the open below checks what it is.
        pass
    except OSError as exc:
        raise _os_error(exc, upto) from None
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_symlink_at(fd, part):
            raise _symlink_refused(parts, index) from None
        raise _os_error(exc, upto) from None


def lstat_beneath(workspace: Path, rel_parts: Sequence[str]) -> os.stat_result | None:
    """``lstat`` of ``workspace/rel_parts`` reached without following symlinks; None when missing."""
    parts = tuple(rel_parts)
    if not parts:
        return Path(_real_workspace(workspace)).stat()
    try:
        dir_fd = open_dir_beneath(workspace, parts[:-1])
    except NotFoundError:
        return None
    try:
        return os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _os_error(exc, parts) from None
    finally:
        os.close(dir_fd)


def _refuse_non_regular(st: os.stat_result, parts: Sequence[str]) -> None:
    if stat.S_ISREG(st.st_mode):
        return
    if stat.S_ISLNK(st.st_mode):
        raise _symlink_refused(parts, len(parts) - 1)
    if stat.S_ISDIR(st.st_mode):
        raise StepError(f"is a directory: {_shown(parts)}")
    raise StepError(
        f"not a regular file: {_shown(parts)}\n"
        "file steps read and write only regular files (not FIFOs, devices or sockets)"
    )


def open_beneath(workspace: Path, rel_parts: Sequence[str], flags: int, mode: int = 0o666) -> int:
    """Open ``workspace/rel_parts`` with ``flags``, every component with ``O_NOFOLLOW``.

    Intermediate directories are opened with ``O_DIRECTORY`` (and created when ``flags`` has
    ``O_CREAT``). Unless ``flags`` asks for a directory, only a regular file is accepted: it is
    checked with ``lstat`` before the open and with ``fstat`` after an ``O_NONBLOCK`` open, so a
    FIFO swapped in between cannot block. The caller closes the returned descriptor.
    """
    parts = tuple(rel_parts)
    want_dir = bool(flags & os.O_DIRECTORY)
    if not parts:
        if not want_dir:
            raise StepError("is a directory: '.' (the workspace root)")
        return os.open(_real_workspace(workspace), flags | os.O_CLOEXEC)
    dir_fd = open_dir_beneath(workspace, parts[:-1], create=bool(flags & os.O_CREAT))
    name = parts[-1]
    try:
        if not want_dir:
            try:
                before = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                if not flags & os.O_CREAT:
                    raise NotFoundError(f"no such file: {_shown(parts)}") from None
            else:
                _refuse_non_regular(before, parts)
            flags |= os.O_NONBLOCK
        try:
            fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_symlink_at(dir_fd, name):
                raise _symlink_refused(parts, len(parts) - 1) from None
            raise _os_error(exc, parts) from None
    finally:
        os.close(dir_fd)
    if not want_dir:
        try:
            _refuse_non_regular(os.fstat(fd), parts)
        except BaseException:
            os.close(fd)
            raise
    return fd


def _too_large(parts: Sequence[str], size: int | str, limit: int) -> StepError:
    return StepError(
        f"file is too large: {_shown(parts)} has {size} bytes, the limit is {limit}\n"
        "HINT: raise the limit (max_file_bytes) or use a smaller file"
    )


def read_regular(workspace: Path, rel: str | PurePath, *, max_bytes: int) -> bytes:
    """Read a regular file inside the workspace, at most ``max_bytes`` of it (more is an error)."""
    parts = workspace_parts(workspace, rel)
    fd = open_beneath(workspace, parts, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise _too_large(parts, size, max_bytes)
        chunks: list[bytes] = []
        total = 0
        while True:
            # Read past the limit by one byte so a file that grows while read is still caught.
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise _too_large(parts, f"more than {max_bytes}", max_bytes)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _create_temp(dir_fd: int) -> tuple[str, int]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        name = TEMP_PREFIX + secrets.token_hex(8)
        try:
            return name, os.open(name, flags, 0o666, dir_fd=dir_fd)
        except FileExistsError:
            continue


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _exists_refused(parts: Sequence[str]) -> StepError:
    return StepError(
        f"file already exists: {_shown(parts)}\nHINT: set overwrite: true to replace it, or delete it first"
    )


def atomic_write(
    workspace: Path,
    rel: str | PurePath,
    data: bytes,
    *,
    mode: int | None,
    overwrite: bool = True,
    max_bytes: int | None = None,
) -> int:
    """Replace ``workspace/rel`` with ``data`` so that readers see the old or the new file, never half.

    ``rel`` is a path returned by ``resolve_in_workspace`` (or a symlink-free relative path): the
    parent is opened component by component without following symlinks, a temporary file is
    written, synced and renamed inside that open directory, and the directory is synced. Missing
    parents are created. ``mode`` None keeps an existing file's permissions (new files get the
    usual umask). Returns the number of bytes written.
    """
    parts = workspace_parts(workspace, rel)
    if not parts:
        raise StepError("is a directory: '.' (the workspace root)")
    if max_bytes is not None and len(data) > max_bytes:
        raise _too_large(parts, len(data), max_bytes)
    if mode is not None and mode & (stat.S_ISUID | stat.S_ISGID):
        raise StepError(f"refusing to set the setuid or setgid bit: mode {mode:04o}")
    dir_fd = open_dir_beneath(workspace, parts[:-1], create=True)
    try:
        name = parts[-1]
        try:
            existing: os.stat_result | None = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if existing is not None:
            _refuse_non_regular(existing, parts)
            if not overwrite:
                raise _exists_refused(parts)
            if mode is None:
                # Keep the permissions but never carry setuid/setgid into rewritten content.
                mode = stat.S_IMODE(existing.st_mode) & 0o1777
        temp, fd = _create_temp(dir_fd)
        placed = False
        try:
            try:
                _write_all(fd, data)
                if mode is not None:
                    os.fchmod(fd, mode)
                os.fsync(fd)
            finally:
                os.close(fd)
            if overwrite:
                os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            else:
                _place_new(dir_fd, temp, name, parts)
            placed = True
        finally:
            if not placed:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp, dir_fd=dir_fd)
        os.fsync(dir_fd)
    except OSError as exc:
        raise _os_error(exc, parts) from exc
    finally:
        os.close(dir_fd)
    return len(data)


def _place_new(dir_fd: int, temp: str, name: str, parts: Sequence[str]) -> None:
    """Give the temp file its final name only if that name is still free (no silent overwrite)."""
    try:
        # link() fails atomically when the name exists, which rename() cannot do.
        os.link(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    except FileExistsError:
        raise _exists_refused(parts) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        # No hard links on this file system: check, then rename (a narrow race, but no escape).
        try:
            os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            return
        raise _exists_refused(parts) from None
    os.unlink(temp, dir_fd=dir_fd)
