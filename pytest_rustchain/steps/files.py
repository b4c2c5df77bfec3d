"""File step types: create, edit, delete, copy, move, read and list files inside the workspace."""

from __future__ import annotations

import errno
import fnmatch
import functools
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from pytest_rustchain import userregex
from pytest_rustchain.errors import PathEscapeError, StepError
from pytest_rustchain.paths import (
    TEMP_PREFIX,
    NotFoundError,
    atomic_write,
    is_git_name,
    lstat_beneath,
    open_dir_beneath,
    quote_path,
    read_regular,
    resolve_in_workspace,
    workspace_parts,
)
from pytest_rustchain.steps.base import Outputs, PathUse, StepContext, StepFunc, StepType, register

__all__ = ["EDIT_MODES", "FAMILY"]

FAMILY = "file operations"
EDIT_MODES = ("content", "append", "replace", "regex", "insert")

Parts = tuple[str, ...]

_PATH: dict[str, Any] = {"type": "string", "description": "a path inside the workspace"}
_MODE: dict[str, Any] = {
    "type": "string",
    "pattern": "^0?[0-7]{3,4}$",
    "description": 'permission bits in octal, quoted: "0644", "0755"',
}
_COUNT: dict[str, Any] = {
    "type": "integer",
    "minimum": 0,
    "description": "replace the first N occurrences; omitted or 0 replaces all",
}


def _object(properties: Mapping[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": dict(properties),
    }
    if required:
        schema["required"] = list(required)
    return schema


CREATE_FILE_SCHEMA = _object(
    {
        "path": _PATH,
        "content": {"type": "string", "description": "the file's text (default: empty)"},
        "mode": _MODE,
        "overwrite": {"type": "boolean", "default": True},
    },
    ("path",),
)

_INSERT = _object(
    {
        "after": {"type": "string", "minLength": 1, "description": "text of the anchor line"},
        "before": {"type": "string", "minLength": 1, "description": "text of the anchor line"},
        "text": {"type": "string", "description": "line(s) to insert"},
    },
    ("text",),
)
_INSERT["oneOf"] = [{"required": ["after"]}, {"required": ["before"]}]

EDIT_FILE_SCHEMA = _object(
    {
        "path": _PATH,
        "content": {"type": "string", "description": "replace the whole file with this text"},
        "append": {"type": "string", "description": "text added at the end"},
        "replace": _object(
            {"old": {"type": "string", "minLength": 1}, "new": {"type": "string"}, "count": _COUNT},
            ("old", "new"),
        ),
        "regex": _object(
            {
                "pattern": {"type": "string", "minLength": 1, "description": "Python re syntax"},
                "replacement": {"type": "string", "description": r"may use \1 and \g<name>"},
                "count": _COUNT,
            },
            ("pattern", "replacement"),
        ),
        "insert": _INSERT,
    },
    ("path",),
)
EDIT_FILE_SCHEMA["oneOf"] = [{"required": [mode]} for mode in EDIT_MODES]

DELETE_FILE_SCHEMA = _object(
    {
        "path": _PATH,
        "recursive": {"type": "boolean", "default": False},
        "missing_ok": {"type": "boolean", "default": True},
    },
    ("path",),
)

COPY_FILE_SCHEMA = _object(
    {"source": _PATH, "destination": _PATH, "overwrite": {"type": "boolean", "default": True}},
    ("source", "destination"),
)

MOVE_FILE_SCHEMA = _object({"source": _PATH, "destination": _PATH}, ("source", "destination"))

READ_FILE_SCHEMA = _object({"path": _PATH}, ("path",))

LIST_DIRECTORY_SCHEMA = _object(
    {
        "path": {**_PATH, "default": "."},
        "recursive": {"type": "boolean", "default": False},
        "pattern": {
            "type": "string",
            "description": "glob matched against each entry's name or its path below `path`",
        },
    },
)


def _clean_os_errors(func: StepFunc) -> StepFunc:
    """Turn an unexpected OSError into a step failure with its reason instead of a traceback."""

    @functools.wraps(func)
    def run(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
        try:
            return func(params, ctx)
        except OSError as exc:
            where = f": {quote_path(os.fsdecode(exc.filename))}" if exc.filename else ""
            raise StepError(f"file operation failed: {exc.strerror or exc}{where}") from exc

    return run


def _resolve(ctx: StepContext, value: str, *, follow_last: bool = True) -> tuple[Path, Parts]:
    path = resolve_in_workspace(ctx.workspace, value, cwd=ctx.cwd, follow_last=follow_last)
    return path, workspace_parts(ctx.workspace, path)


def _rel(parts: Parts) -> str:
    return "/".join(parts) if parts else "."


def _as_path(parts: Parts) -> PurePosixPath:
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _encode(text: str, what: str) -> bytes:
    try:
        # surrogateescape round-trips bytes that were not UTF-8 when the file was read.
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise StepError(f"{what} is not valid Unicode text (it holds a lone surrogate)") from None


def _parse_mode(value: object) -> int | None:
    if value is None:
        return None
    text = str(value)
    if not re.fullmatch(r"0?[0-7]{3,4}", text):
        raise StepError(f'invalid mode {text!r}\nHINT: write octal permission bits as a string: "0755"')
    mode = int(text, 8)
    if mode & (stat.S_ISUID | stat.S_ISGID):
        raise StepError(f'refusing to set the setuid or setgid bit: mode {text!r}\nHINT: use a mode like "0755"')
    return mode


def _is_inside(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def _walk(workspace: Path, top: Parts, *, recursive: bool) -> Iterator[tuple[Parts, str, os.stat_result]]:
    """Yield (parent parts, name, lstat) for entries under ``top``, parents before their children.

    Each directory is opened from the workspace root without following symlinks, so a symlink
    planted during the walk is refused rather than followed. ``.git`` is yielded but never entered.
    """
    pending = [top]
    while pending:
        parts = pending.pop()
        fd = open_dir_beneath(workspace, parts)
        try:
            with os.scandir(fd) as listing:
                entries = sorted((entry.name, entry.stat(follow_symlinks=False)) for entry in listing)
        finally:
            os.close(fd)
        subdirs: list[Parts] = []
        for name, st in entries:
            yield parts, name, st
            if recursive and stat.S_ISDIR(st.st_mode) and not is_git_name(name):
                subdirs.append((*parts, name))
        pending.extend(reversed(subdirs))


def _regular_size(workspace: Path, parts: Parts, st: os.stat_result) -> int:
    if stat.S_ISREG(st.st_mode):
        return st.st_size
    if not stat.S_ISDIR(st.st_mode):
        return 0
    return sum(entry.st_size for _, _, entry in _walk(workspace, parts, recursive=True) if stat.S_ISREG(entry.st_mode))


# ---------------------------------------------------------------------------------------------
# create_file


@_clean_os_errors
def create_file(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
    path, parts = _resolve(ctx, params["path"])
    if not parts:
        raise StepError("cannot create a file at the workspace root: it is a directory")
    data = _encode(params.get("content", ""), "content")
    size = atomic_write(
        ctx.workspace,
        path,
        data,
        mode=_parse_mode(params.get("mode")),
        overwrite=bool(params.get("overwrite", True)),
        max_bytes=ctx.max_file_bytes,
    )
    return {"path": _rel(parts), "size": size}


# ---------------------------------------------------------------------------------------------
# edit_file


def _edit_replace(text: str, spec: Mapping[str, Any], where: str) -> tuple[str, int]:
    old, new = str(spec["old"]), str(spec["new"])
    if not old:
        raise StepError("replace.old is empty\nHINT: give the exact text to replace")
    found = text.count(old)
    if found == 0:
        raise StepError(
            f"text to replace not found in {where}: {quote_path(old)}\n"
            "HINT: replace.old is matched literally, whitespace and case included"
        )
    count = int(spec.get("count") or 0)
    changes = found if count == 0 else min(count, found)
    return text.replace(old, new, changes), changes


def _edit_regex(text: str, spec: Mapping[str, Any], where: str) -> tuple[str, int]:
    pattern = str(spec["pattern"])
    try:
        userregex.compiled(pattern)
    except userregex.PatternError as exc:
        raise StepError(f"{exc}\nHINT: the pattern uses Python re syntax") from None
    try:
        new_text, changes = userregex.subn(pattern, str(spec["replacement"]), text, count=int(spec.get("count") or 0))
    except userregex.PatternError as exc:
        raise StepError(f"invalid regex replacement {quote_path(str(spec['replacement']))}: {exc}") from None
    except userregex.PatternTimeout as exc:
        raise StepError(f"edit_file regex: {exc}") from None
    if changes == 0:
        raise StepError(f"regex found no match in {where}: {quote_path(pattern)}")
    return new_text, changes


def _edit_insert(text: str, spec: Mapping[str, Any], where: str) -> tuple[str, int]:
    after = "after" in spec
    anchor = str(spec["after"] if after else spec["before"])
    if not anchor or "\n" in anchor:
        raise StepError(f"insert anchor must be one non-empty line of text: {quote_path(anchor)}")
    block = str(spec["text"])
    lines = text.split("\n")
    index = next((i for i, line in enumerate(lines) if anchor in line), -1)
    if index < 0:
        raise StepError(
            f"anchor line not found in {where}: {quote_path(anchor)}\n"
            "HINT: the anchor is matched literally against each line"
        )
    line = lines[index]
    # Keep the file's own line ending (CRLF files stay CRLF).
    newline = "\r\n" if line.endswith("\r") else "\n"
    block = block.replace("\r\n", "\n").replace("\n", newline)
    if block and not block.endswith("\n"):
        block += newline
    start = sum(len(previous) + 1 for previous in lines[:index])
    if not after:
        return text[:start] + block + text[start:], 1
    end = start + len(line)
    if index == len(lines) - 1:
        # The anchor is the last line and has no line ending: give it one first.
        return text + newline + block.removesuffix(newline), 1
    return text[: end + 1] + block + text[end + 1 :], 1


@_clean_os_errors
def edit_file(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
    given = [mode for mode in EDIT_MODES if mode in params]
    if len(given) != 1:
        raise StepError(
            f"edit_file needs exactly one of {', '.join(EDIT_MODES)}; got {', '.join(given) if given else 'none'}"
        )
    mode = given[0]
    path, parts = _resolve(ctx, params["path"])
    where = quote_path(_rel(parts))
    try:
        raw = read_regular(ctx.workspace, path, max_bytes=ctx.max_file_bytes)
    except NotFoundError:
        raise NotFoundError(f"file to edit does not exist: {where}\nHINT: create it first with create_file") from None
    text = raw.decode("utf-8", "surrogateescape")
    value = params[mode]
    if mode == "content":
        new_text, changes = str(value), 1
    elif mode == "append":
        new_text, changes = text + str(value), 1
    elif mode == "replace":
        new_text, changes = _edit_replace(text, value, where)
    elif mode == "regex":
        new_text, changes = _edit_regex(text, value, where)
    else:
        new_text, changes = _edit_insert(text, value, where)
    size = atomic_write(
        ctx.workspace,
        path,
        _encode(new_text, "edited text"),
        mode=None,
        max_bytes=ctx.max_file_bytes,
    )
    return {"path": _rel(parts), "size": size, "changes": changes}


# ---------------------------------------------------------------------------------------------
# delete_file


def _root_refused() -> StepError:
    return PathEscapeError("refusing to delete the workspace root\nHINT: delete the files inside it one path at a time")


def _git_refused(shown: str) -> StepError:
    return PathEscapeError(
        f"refusing to delete .git: {shown}\nHINT: file steps never touch .git/; use a git step for repository work"
    )


@_clean_os_errors
def delete_file(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
    given = str(params["path"])
    recursive = bool(params.get("recursive", False))
    missing_ok = bool(params.get("missing_ok", True))
    if given in ("", ".", "./"):
        if given and Path(os.path.realpath(ctx.cwd)) != Path(os.path.realpath(ctx.workspace)):
            raise StepError("refusing to delete the working directory '.'\nHINT: name the directory to delete")
        raise _root_refused()
    if any(is_git_name(part) for part in PurePosixPath(given).parts):
        raise _git_refused(quote_path(given))
    _, parts = _resolve(ctx, given, follow_last=False)
    if not parts:
        raise _root_refused()
    shown = quote_path(_rel(parts))
    if lstat_beneath(ctx.workspace, parts) is None:
        if missing_ok:
            return {"path": _rel(parts), "existed": False}
        raise NotFoundError(
            f"nothing to delete: {shown} does not exist\nHINT: set missing_ok: true if a missing file is fine"
        )
    dir_fd = open_dir_beneath(ctx.workspace, parts[:-1])
    try:
        name = parts[-1]
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            if not recursive:
                raise StepError(f"is a directory: {shown}\nHINT: set recursive: true to delete it and everything in it")
            for parent, entry, _ in _walk(ctx.workspace, parts, recursive=True):
                if is_git_name(entry):
                    raise _git_refused(f"{quote_path(_rel((*parent, entry)))} is inside {shown}")
            # rmtree with dir_fd uses the fd-based walk on Linux: it never follows a symlink.
            shutil.rmtree(name, dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return {"path": _rel(parts), "existed": True}


# ---------------------------------------------------------------------------------------------
# copy_file, move_file


def _check_link_target(ctx: StepContext, link: Parts, target: str, where: Parts) -> None:
    """Refuse a symlink whose text, read from directory ``where``, leaves the workspace."""
    base = Path(os.path.realpath(ctx.workspace)).joinpath(*where)
    try:
        resolve_in_workspace(ctx.workspace, base / target)
    except PathEscapeError:
        raise PathEscapeError(
            f"refusing to copy or move the symlink {quote_path(_rel(link))} -> {quote_path(target)}\n"
            f"from {quote_path(_rel(where))} it points outside the workspace or into .git\n"
            "HINT: replace the symlink with the file it points to"
        ) from None


def _copy_symlink(ctx: StepContext, src: Parts, dst: Parts, *, overwrite: bool) -> None:
    src_fd = open_dir_beneath(ctx.workspace, src[:-1])
    try:
        target = os.readlink(src[-1], dir_fd=src_fd)
    finally:
        os.close(src_fd)
    _check_link_target(ctx, src, target, src[:-1])
    _check_link_target(ctx, src, target, dst[:-1])
    dst_fd = open_dir_beneath(ctx.workspace, dst[:-1], create=True)
    try:
        if not overwrite and _exists_at(dst_fd, dst[-1]):
            raise _exists_refused(dst)
        temp = TEMP_PREFIX + secrets.token_hex(8)
        os.symlink(target, temp, dir_fd=dst_fd)
        try:
            os.replace(temp, dst[-1], src_dir_fd=dst_fd, dst_dir_fd=dst_fd)
        except BaseException:
            os.unlink(temp, dir_fd=dst_fd)
            raise
    finally:
        os.close(dst_fd)


def _exists_at(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _exists_refused(parts: Parts) -> StepError:
    return StepError(
        f"destination already exists: {quote_path(_rel(parts))}\n"
        "HINT: set overwrite: true to replace it, or delete it first"
    )


def _copy_regular(ctx: StepContext, src: Parts, dst: Parts, st: os.stat_result, *, overwrite: bool) -> int:
    data = read_regular(ctx.workspace, _as_path(src), max_bytes=ctx.max_file_bytes)
    return atomic_write(
        ctx.workspace,
        _as_path(dst),
        data,
        mode=stat.S_IMODE(st.st_mode) & 0o1777,
        overwrite=overwrite,
        max_bytes=ctx.max_file_bytes,
    )


def _copy_tree(ctx: StepContext, src: Parts, dst: Parts, *, overwrite: bool) -> int:
    copied = 0
    os.close(open_dir_beneath(ctx.workspace, dst, create=True))
    for parent, name, st in _walk(ctx.workspace, src, recursive=True):
        if name.startswith(TEMP_PREFIX):
            continue
        inner = (*parent[len(src) :], name)
        if is_git_name(name):
            raise PathEscapeError(
                f"refusing to copy .git: {quote_path(_rel((*parent, name)))}\n"
                "HINT: file steps never read .git/; copy the other files one by one"
            )
        target = (*dst, *inner)
        if stat.S_ISDIR(st.st_mode):
            os.close(open_dir_beneath(ctx.workspace, target, create=True))
        elif stat.S_ISLNK(st.st_mode):
            _copy_symlink(ctx, (*parent, name), target, overwrite=overwrite)
        else:
            copied += _copy_regular(ctx, (*parent, name), target, st, overwrite=overwrite)
    return copied


def _source_stat(ctx: StepContext, parts: Parts) -> os.stat_result:
    st = lstat_beneath(ctx.workspace, parts)
    if st is None:
        raise NotFoundError(f"source does not exist: {quote_path(_rel(parts))}")
    return st


def _same_path_refused(parts: Parts) -> StepError:
    return StepError(f"source and destination are the same path: {quote_path(_rel(parts))}")


@_clean_os_errors
def copy_file(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
    src_path, src = _resolve(ctx, params["source"])
    dst_path, dst = _resolve(ctx, params["destination"])
    overwrite = bool(params.get("overwrite", True))
    if not dst:
        raise StepError("destination is the workspace root\nHINT: name a path inside it")
    if src == dst:
        raise _same_path_refused(src)
    st = _source_stat(ctx, src)
    existing = lstat_beneath(ctx.workspace, dst)
    if stat.S_ISDIR(st.st_mode):
        if _is_inside(dst_path, src_path):
            raise StepError(
                f"destination {quote_path(_rel(dst))} is inside the source directory {quote_path(_rel(src))}"
            )
        if existing is not None:
            if not stat.S_ISDIR(existing.st_mode):
                raise StepError(f"destination exists and is not a directory: {quote_path(_rel(dst))}")
            if not overwrite:
                raise _exists_refused(dst)
        size = _copy_tree(ctx, src, dst, overwrite=overwrite)
    else:
        if existing is not None and stat.S_ISDIR(existing.st_mode):
            raise StepError(
                f"destination is a directory: {quote_path(_rel(dst))}\n"
                f"HINT: name the file inside it: {quote_path(_rel((*dst, src[-1])))}"
            )
        size = _copy_regular(ctx, src, dst, st, overwrite=overwrite)
    return {"source": _rel(src), "destination": _rel(dst), "size": size}


@_clean_os_errors
def move_file(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
    # Both ends keep their last component: a symlink is moved (or replaced) as itself, as mv does.
    src_path, src = _resolve(ctx, params["source"], follow_last=False)
    dst_path, dst = _resolve(ctx, params["destination"], follow_last=False)
    if not src:
        raise _root_refused_move()
    if not dst:
        raise StepError("destination is the workspace root\nHINT: name a path inside it")
    if src == dst:
        raise _same_path_refused(src)
    st = _source_stat(ctx, src)
    existing = lstat_beneath(ctx.workspace, dst)
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise StepError(
            f"destination exists and is a directory: {quote_path(_rel(dst))}\n"
            f"HINT: name the target inside it: {quote_path(_rel((*dst, src[-1])))}"
        )
    if stat.S_ISDIR(st.st_mode) and _is_inside(dst_path, src_path):
        raise StepError(f"cannot move the directory {quote_path(_rel(src))} into itself")
    if stat.S_ISLNK(st.st_mode):
        src_fd = open_dir_beneath(ctx.workspace, src[:-1])
        try:
            target = os.readlink(src[-1], dir_fd=src_fd)
        finally:
            os.close(src_fd)
        _check_link_target(ctx, src, target, dst[:-1])
    size = _regular_size(ctx.workspace, src, st)
    src_fd = open_dir_beneath(ctx.workspace, src[:-1])
    try:
        dst_fd = open_dir_beneath(ctx.workspace, dst[:-1], create=True)
        try:
            try:
                os.rename(src[-1], dst[-1], src_dir_fd=src_fd, dst_dir_fd=dst_fd)
            except OSError as exc:
                if exc.errno == errno.EXDEV:
                    raise StepError(
                        f"cannot move {quote_path(_rel(src))} to {quote_path(_rel(dst))}: "
                        "they are on different file systems\nHINT: use copy_file, then delete_file"
                    ) from None
                raise
            os.fsync(dst_fd)
            os.fsync(src_fd)
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)
    return {"source": _rel(src), "destination": _rel(dst), "size": size}


def _root_refused_move() -> StepError:
    return PathEscapeError("refusing to move the workspace root\nHINT: move the files inside it")


# ---------------------------------------------------------------------------------------------
# read_file, list_directory


@_clean_os_errors
def read_file(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
    path, _ = _resolve(ctx, params["path"])
    data = read_regular(ctx.workspace, path, max_bytes=ctx.max_file_bytes)
    return {"content": data.decode("utf-8", "replace"), "size": len(data)}


@_clean_os_errors
def list_directory(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
    _, parts = _resolve(ctx, params.get("path", "."))
    recursive = bool(params.get("recursive", False))
    pattern = params.get("pattern")
    st = lstat_beneath(ctx.workspace, parts)
    if st is None:
        raise NotFoundError(f"no such directory: {quote_path(_rel(parts))}")
    if not stat.S_ISDIR(st.st_mode):
        raise StepError(f"not a directory: {quote_path(_rel(parts))}\nHINT: use read_file to read a file")
    entries: list[str] = []
    for parent, name, entry in _walk(ctx.workspace, parts, recursive=recursive):
        # Leftover temp files of an interrupted write are not content; .git is never shown.
        if is_git_name(name) or name.startswith(TEMP_PREFIX):
            continue
        below = "/".join((*parent[len(parts) :], name))
        if pattern is not None and not (fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(below, pattern)):
            continue
        suffix = "/" if stat.S_ISDIR(entry.st_mode) else ""
        entries.append("/".join((*parent, name)) + suffix)
    entries.sort()
    return {"entries": entries, "count": len(entries)}


_PATHS: dict[str, dict[str, PathUse]] = {
    "create_file": {"path": "write"},
    "edit_file": {"path": "write"},
    "delete_file": {"path": "delete"},
    "copy_file": {"source": "read", "destination": "write"},
    "move_file": {"source": "move", "destination": "write"},
    "read_file": {"path": "read"},
    "list_directory": {"path": "read"},
}

for _name, _schema, _run in (
    ("create_file", CREATE_FILE_SCHEMA, create_file),
    ("edit_file", EDIT_FILE_SCHEMA, edit_file),
    ("delete_file", DELETE_FILE_SCHEMA, delete_file),
    ("copy_file", COPY_FILE_SCHEMA, copy_file),
    ("move_file", MOVE_FILE_SCHEMA, move_file),
    ("read_file", READ_FILE_SCHEMA, read_file),
    ("list_directory", LIST_DIRECTORY_SCHEMA, list_directory),
):
    register(
        StepType(
            name=_name,
            schema=_schema,
            run=_run,
            family=FAMILY,
            paths=_PATHS[_name],
            content="content" if _name == "create_file" else None,
        )
    )
