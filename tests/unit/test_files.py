"""File step types and workspace containment: every parameter, failure and path escape."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import threading
from pathlib import Path
from typing import Any

import hypothesis
import jsonschema  # type: ignore[import-untyped,unused-ignore]
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from stepkit import make_ctx, run, schema_accepts

from pytest_rustchain import paths
from pytest_rustchain.errors import PathEscapeError, StepError
from pytest_rustchain.paths import (
    TEMP_PREFIX,
    atomic_write,
    open_beneath,
    open_dir_beneath,
    read_regular,
    resolve_in_workspace,
)
from pytest_rustchain.steps import files
from pytest_rustchain.steps.base import StepContext, registry

FILE_STEPS = ("create_file", "edit_file", "delete_file", "copy_file", "move_file", "read_file", "list_directory")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the workspace that no step may touch."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "secret.txt").write_text("secret\n")
    return directory.resolve()


def fails(step: str, ctx: StepContext, error: type[StepError] = StepError, **params: Any) -> str:
    with pytest.raises(error) as info:
        run(step, ctx, **params)
    return info.value.message


def temp_leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(TEMP_PREFIX)]


# ---------------------------------------------------------------------------------------------
# registration and schemas


@pytest.mark.parametrize("name", FILE_STEPS)
def test_step_type_is_registered_with_a_valid_schema(name: str) -> None:
    """Each file step type exists, counts as 'file operations' and has a valid strict schema."""
    step_type = registry()[name]
    assert step_type.family == "file operations"
    jsonschema.Draft202012Validator.check_schema(step_type.schema)
    assert step_type.schema["additionalProperties"] is False
    assert not schema_accepts(name, {"path": "x", "source": "a", "destination": "b", "bogus": 1})


def test_create_file_schema_leaves_template_to_the_runner() -> None:
    """A `template` key never reaches create_file: the runner renders it into `content` first."""
    assert not schema_accepts("create_file", {"path": "x", "template": "t.j2"})
    assert schema_accepts("create_file", {"path": "x", "content": "", "mode": "0644", "overwrite": False})


@pytest.mark.parametrize("mode", ["0644", "644", "0755", "1777", "04755"])
def test_mode_pattern_accepts_octal_strings(mode: str) -> None:
    """Quoted octal modes are accepted by the schema."""
    assert schema_accepts("create_file", {"path": "x", "mode": mode})


@pytest.mark.parametrize("mode", ["0999", "rwx", "75", "007555", 493])
def test_mode_pattern_rejects_other_spellings(mode: object) -> None:
    """A mode that is not a quoted octal string is a schema error, found before anything runs."""
    assert not schema_accepts("create_file", {"path": "x", "mode": mode})


def test_edit_file_schema_requires_exactly_one_mode() -> None:
    """edit_file with two edit modes, or none, is rejected by the schema."""
    assert schema_accepts("edit_file", {"path": "x", "append": "y"})
    assert not schema_accepts("edit_file", {"path": "x"})
    assert not schema_accepts("edit_file", {"path": "x", "append": "y", "content": "z"})
    assert not schema_accepts("edit_file", {"path": "x", "insert": {"text": "t", "after": "a", "before": "b"}})
    assert not schema_accepts("edit_file", {"path": "x", "replace": {"old": "", "new": "y"}})


# ---------------------------------------------------------------------------------------------
# resolve_in_workspace


@pytest.mark.parametrize("given", ["../x", "a/../../x", "/etc/passwd", "~/.ssh/x", "~", "~root/x", "/", "a/../.."])
def test_escaping_paths_are_refused(ws: Path, given: str) -> None:
    """`..`, absolute paths outside and `~` paths get "path escapes the workspace" with a hint."""
    with pytest.raises(PathEscapeError) as info:
        resolve_in_workspace(ws, given)
    lines = info.value.message.splitlines()
    assert lines[0] == f"path escapes the workspace: {given!r}"
    assert lines[-1].startswith("HINT: ")


def test_paths_inside_resolve_to_real_absolute_paths(ws: Path) -> None:
    """Relative and absolute paths inside the workspace are fine, and come back absolute."""
    assert resolve_in_workspace(ws, "a/b.txt") == ws / "a" / "b.txt"
    assert resolve_in_workspace(ws, str(ws / "a" / "b.txt")) == ws / "a" / "b.txt"
    assert resolve_in_workspace(ws, "a/../b") == ws / "b"
    assert resolve_in_workspace(ws, ".") == ws


def test_relative_paths_start_at_the_working_directory(ws: Path) -> None:
    """A relative path resolves against `cwd`; containment stays the workspace."""
    sub = ws / "sub"
    sub.mkdir()
    assert resolve_in_workspace(ws, "x", cwd=sub) == sub / "x"
    assert resolve_in_workspace(ws, "../x", cwd=sub) == ws / "x"
    with pytest.raises(PathEscapeError):
        resolve_in_workspace(ws, "../../x", cwd=sub)


def test_working_directory_outside_the_workspace_is_refused(ws: Path, outside: Path) -> None:
    """A cwd outside the workspace cannot be used as the base of relative paths."""
    with pytest.raises(PathEscapeError, match="working directory is outside"):
        resolve_in_workspace(ws, "x", cwd=outside)


def test_symlink_pointing_out_is_refused(ws: Path, outside: Path) -> None:
    """Writing `link/x` where `link -> outside` is refused, and the message says where it leads."""
    (ws / "link").symlink_to(outside)
    with pytest.raises(PathEscapeError) as info:
        resolve_in_workspace(ws, "link/x")
    assert "path escapes the workspace: 'link/x'" in info.value.message
    assert "through a symlink" in info.value.message
    with pytest.raises(PathEscapeError):
        resolve_in_workspace(ws, "link")


def test_symlink_to_etc_is_refused(ws: Path) -> None:
    """The HOSTILE.md case: `link -> /etc`, then `link/x`."""
    (ws / "link").symlink_to("/etc")
    with pytest.raises(PathEscapeError, match="escapes the workspace"):
        resolve_in_workspace(ws, "link/x")


def test_dangling_symlink_pointing_out_is_refused(ws: Path, tmp_path: Path) -> None:
    """A symlink to a file that does not exist yet outside the workspace cannot be created through."""
    (ws / "new").symlink_to(tmp_path / "not-yet")
    with pytest.raises(PathEscapeError):
        resolve_in_workspace(ws, "new")


def test_symlink_staying_inside_is_followed(ws: Path) -> None:
    """A symlink to another place in the workspace is fine and resolves to its target."""
    (ws / "real").mkdir()
    (ws / "alias").symlink_to("real")
    assert resolve_in_workspace(ws, "alias/f") == ws / "real" / "f"
    assert resolve_in_workspace(ws, "alias", follow_last=False) == ws / "alias"


def test_symlink_loop_is_a_clean_error(ws: Path) -> None:
    """A symlink loop does not crash resolution; opening through it is refused."""
    (ws / "a").symlink_to("b")
    (ws / "b").symlink_to("a")
    with pytest.raises(PathEscapeError) as info:
        resolve_in_workspace(ws, "a/x")
    assert info.value.message.splitlines() == ["symlink loop in path: 'a/x'", "'a' leads back to itself"]
    assert "symlink loop" in fails("create_file", make_ctx(ws), PathEscapeError, path="a/x", content="x")


@pytest.mark.parametrize("given", [".git", ".git/config", "sub/../.git/hooks/pre-commit", ".GIT/config", "a/.git/x"])
def test_anything_under_git_is_refused(ws: Path, given: str) -> None:
    """`.git` holds the CI token and hooks: file steps never reach it."""
    with pytest.raises(PathEscapeError, match=r"inside \.git"):
        resolve_in_workspace(ws, given)


def test_symlink_into_git_is_refused(ws: Path) -> None:
    """A symlink to `.git` does not open a way into it."""
    (ws / ".git").mkdir()
    (ws / "g").symlink_to(".git")
    with pytest.raises(PathEscapeError, match=r"inside \.git"):
        resolve_in_workspace(ws, "g/config")


def test_nul_in_path_is_a_clean_error(ws: Path) -> None:
    """A NUL byte is refused with a message, not a ValueError traceback."""
    with pytest.raises(PathEscapeError, match="NUL byte"):
        resolve_in_workspace(ws, "a\x00b")


def test_name_of_4096_bytes_is_a_clean_error(ws: Path) -> None:
    """A 4,096-byte name is refused with the limit in the message."""
    with pytest.raises(PathEscapeError, match="too long") as info:
        resolve_in_workspace(ws, "a" * 4096)
    assert len(info.value.message) < 500


def test_component_over_255_bytes_is_a_clean_error(ws: Path) -> None:
    """One component longer than a file name can be is refused before any system call."""
    with pytest.raises(PathEscapeError, match="component is too long"):
        resolve_in_workspace(ws, "d/" + "é" * 200)


def test_path_over_4096_bytes_is_a_clean_error(ws: Path) -> None:
    """A path of many short components longer than PATH_MAX is refused."""
    with pytest.raises(PathEscapeError, match="path is too long"):
        resolve_in_workspace(ws, "/".join(["abcdefgh"] * 600))


def test_empty_path_is_refused(ws: Path) -> None:
    """An empty path names no file: refused with a hint."""
    with pytest.raises(PathEscapeError, match="path is empty"):
        resolve_in_workspace(ws, "")


def test_lone_surrogate_is_a_clean_error(ws: Path) -> None:
    """A path that cannot be encoded for the file system is refused cleanly."""
    with pytest.raises(PathEscapeError, match="not valid text"):
        resolve_in_workspace(ws, "a\ud800")


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@hypothesis.given(st.lists(st.sampled_from(["a", "b", "..", ".", "", "link", "inner"]), min_size=1, max_size=8))
def test_resolution_never_leaves_the_workspace(tmp_path: Path, parts: list[str]) -> None:
    """Whatever mix of `..`, `.` and symlinks a path holds, it resolves inside or is refused."""
    ws = tmp_path / "prop-ws"
    if not ws.exists():
        (ws / "a" / "b").mkdir(parents=True)
        (ws / "link").symlink_to(tmp_path)
        (ws / "a" / "inner").symlink_to("..")
    real = ws.resolve()
    try:
        result = resolve_in_workspace(ws, "/".join(parts))
    except PathEscapeError:
        return
    assert result == real or real in result.parents


# ---------------------------------------------------------------------------------------------
# open-time checks


def test_symlink_swapped_in_after_the_check_is_refused_at_write(ws: Path, outside: Path) -> None:
    """A directory replaced by a symlink between the check and the write is caught at open time."""
    (ws / "sub").mkdir()
    checked = resolve_in_workspace(ws, "sub/x.txt")
    shutil.rmtree(ws / "sub")
    (ws / "sub").symlink_to(outside)
    with pytest.raises(PathEscapeError, match="symlink at open time"):
        atomic_write(ws, checked, b"pwned", mode=None)
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_symlink_swapped_in_after_the_check_is_refused_at_read(ws: Path, outside: Path) -> None:
    """A file replaced by a symlink to a secret after the check is not read."""
    (ws / "f.txt").write_text("mine")
    checked = resolve_in_workspace(ws, "f.txt")
    (ws / "f.txt").unlink()
    (ws / "f.txt").symlink_to(outside / "secret.txt")
    with pytest.raises(PathEscapeError):
        read_regular(ws, checked, max_bytes=1024)


def test_symlink_swapped_in_deep_in_a_tree_is_refused(ws: Path, outside: Path) -> None:
    """Every intermediate directory is opened without following symlinks, not just the first."""
    (ws / "a" / "b").mkdir(parents=True)
    checked = resolve_in_workspace(ws, "a/b/c/d.txt")
    shutil.rmtree(ws / "a" / "b")
    (ws / "a" / "b").symlink_to(outside)
    with pytest.raises(PathEscapeError):
        atomic_write(ws, checked, b"x", mode=None)
    assert not (outside / "c").exists()


def test_symlink_appearing_during_a_create_file_step_is_refused(
    ws: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A symlink planted between create_file's path check and its write does not redirect the write."""
    (ws / "sub").mkdir()
    real_resolve = resolve_in_workspace

    def resolve_then_swap(*args: Any, **kwargs: Any) -> Path:
        checked = real_resolve(*args, **kwargs)
        shutil.rmtree(ws / "sub")
        (ws / "sub").symlink_to(outside)
        return checked

    monkeypatch.setattr(files, "resolve_in_workspace", resolve_then_swap)
    message = fails("create_file", make_ctx(ws), PathEscapeError, path="sub/x.txt", content="pwned")
    assert "'sub' is a symlink at open time" in message
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_open_beneath_refuses_a_symlink_as_the_last_component(ws: Path, outside: Path) -> None:
    """open_beneath uses O_NOFOLLOW on the last component too."""
    (ws / "s").symlink_to(outside / "secret.txt")
    with pytest.raises(PathEscapeError):
        open_beneath(ws, ("s",), os.O_RDONLY)


def test_open_beneath_refuses_dotdot_components(ws: Path) -> None:
    """Components are names, never `..` or `.git`."""
    for parts in (("..", "x"), ("a", ".git", "x")):
        with pytest.raises(PathEscapeError):
            open_beneath(ws, parts, os.O_RDONLY)


def test_open_dir_beneath_creates_missing_parents(ws: Path) -> None:
    """Missing parents are made one by one when asked."""
    fd = open_dir_beneath(ws, ("x", "y", "z"), create=True)
    os.close(fd)
    assert (ws / "x" / "y" / "z").is_dir()
    with pytest.raises(paths.NotFoundError):
        open_dir_beneath(ws, ("nope",))


def test_atomic_write_refuses_paths_outside(ws: Path) -> None:
    """atomic_write checks its own argument: no `..`, nothing outside the workspace."""
    with pytest.raises(PathEscapeError):
        atomic_write(ws, "../x", b"x", mode=None)
    with pytest.raises(PathEscapeError):
        atomic_write(ws, "/etc/x", b"x", mode=None)


# ---------------------------------------------------------------------------------------------
# regular files only


def _call_with_deadline(func: Any, seconds: float = 5.0) -> BaseException | None:
    """Run ``func`` in a thread; fail the test if it is still blocked after ``seconds``."""
    caught: list[BaseException] = []

    def target() -> None:
        try:
            func()
        except BaseException as exc:
            caught.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the step blocked"
    return caught[0] if caught else None


def test_reading_a_fifo_is_refused_without_hanging(ws: Path) -> None:
    """read_file on a FIFO fails at once ("not a regular file") instead of waiting for a writer."""
    os.mkfifo(ws / "pipe")
    ctx = make_ctx(ws)
    error = _call_with_deadline(lambda: run("read_file", ctx, path="pipe"))
    assert isinstance(error, StepError)
    assert "not a regular file" in error.message


def test_editing_a_fifo_is_refused_without_hanging(ws: Path) -> None:
    """edit_file on a FIFO fails at once."""
    os.mkfifo(ws / "pipe")
    ctx = make_ctx(ws)
    error = _call_with_deadline(lambda: run("edit_file", ctx, path="pipe", append="x"))
    assert isinstance(error, StepError)
    assert "not a regular file" in error.message


def test_fifo_swapped_in_before_open_does_not_block(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even if a FIFO appears between the lstat and the open, the open cannot hang."""
    (ws / "f").write_text("x")
    real_stat = os.stat

    def swapping_stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        result = real_stat(path, *args, **kwargs)
        if path == "f" and (ws / "f").is_file():
            (ws / "f").unlink()
            os.mkfifo(ws / "f")
        return result

    monkeypatch.setattr(os, "stat", swapping_stat)
    error = _call_with_deadline(lambda: read_regular(ws, "f", max_bytes=100))
    assert isinstance(error, StepError)
    assert "not a regular file" in error.message


def test_overwriting_a_fifo_is_refused(ws: Path) -> None:
    """create_file does not replace a FIFO or other special file."""
    os.mkfifo(ws / "pipe")
    assert "not a regular file" in fails("create_file", make_ctx(ws), path="pipe", content="x")


@pytest.mark.parametrize("given", ["/proc/self/environ", "/dev/zero", "/proc/self/mem"])
def test_system_files_are_refused(ws: Path, given: str) -> None:
    """/proc and /dev files are outside the workspace: refused before any open."""
    assert "escapes the workspace" in fails("read_file", make_ctx(ws), PathEscapeError, path=given)


def test_symlink_to_proc_environ_is_refused(ws: Path) -> None:
    """A symlink planted in the workspace does not reach the process environment."""
    (ws / "env").symlink_to("/proc/self/environ")
    assert "escapes the workspace" in fails("read_file", make_ctx(ws), PathEscapeError, path="env")


# ---------------------------------------------------------------------------------------------
# atomic writes


def test_failed_fsync_leaves_the_old_file_and_no_temp(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error while writing leaves the old content intact and removes the temporary file."""
    (ws / "f.txt").write_text("old\n")

    def broken_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    message = fails("create_file", make_ctx(ws), path="f.txt", content="new\n")
    assert "Input/output error" in message
    assert (ws / "f.txt").read_text() == "old\n"
    assert temp_leftovers(ws) == []


def test_write_failing_midway_leaves_the_old_file(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk that fills up half way through an edit leaves the old file, never half a file."""
    (ws / "f.txt").write_text("a" * 100)
    real_write = os.write
    calls = []

    def half_write(fd: int, data: Any) -> int:
        calls.append(fd)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, bytes(data[: len(data) // 2]))

    monkeypatch.setattr(os, "write", half_write)
    message = fails("edit_file", make_ctx(ws), path="f.txt", content="b" * 100)
    assert "No space left on device" in message
    assert (ws / "f.txt").read_text() == "a" * 100
    assert temp_leftovers(ws) == []


def test_interrupt_during_write_removes_the_temp(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C during a write leaves the old file and no temp file; the interrupt goes on."""
    (ws / "f.txt").write_text("old")

    def interrupted(fd: int, data: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(ws, "f.txt", b"new", mode=None)
    assert (ws / "f.txt").read_text() == "old"
    assert temp_leftovers(ws) == []


def test_failed_rename_removes_the_temp(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the final rename fails, the temp file does not stay behind."""

    def broken_replace(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(StepError, match="Read-only"):
        atomic_write(ws, "f.txt", b"new", mode=None)
    assert list(ws.iterdir()) == []


def test_atomic_write_refuses_setuid_modes(ws: Path) -> None:
    """No file step can make a setuid or setgid file."""
    with pytest.raises(StepError, match="setuid"):
        atomic_write(ws, "f", b"x", mode=0o4755)


# ---------------------------------------------------------------------------------------------
# create_file


def test_create_file_writes_content_and_reports_size(ws: Path) -> None:
    """The file holds the content; size counts UTF-8 bytes; the path is workspace-relative."""
    out = run("create_file", make_ctx(ws), path="out/hello.txt", content="héllo\n")
    assert out == {"path": "out/hello.txt", "size": 7}
    assert (ws / "out" / "hello.txt").read_text(encoding="utf-8") == "héllo\n"


def test_create_file_without_content_makes_an_empty_file(ws: Path) -> None:
    """`content` may be left out for an empty file."""
    assert run("create_file", make_ctx(ws), path="empty")["size"] == 0
    assert (ws / "empty").read_bytes() == b""


def test_create_file_creates_missing_parent_directories(ws: Path) -> None:
    """Parents that do not exist are created."""
    run("create_file", make_ctx(ws), path="a/b/c/d.txt", content="x")
    assert (ws / "a" / "b" / "c" / "d.txt").read_text() == "x"


@pytest.mark.parametrize(("mode", "expected"), [("0755", 0o755), ("600", 0o600), ("0640", 0o640)])
def test_create_file_applies_mode(ws: Path, mode: str, expected: int) -> None:
    """`mode` sets the permission bits exactly (the umask does not apply)."""
    run("create_file", make_ctx(ws), path="script.sh", content="#!/bin/sh\n", mode=mode)
    assert stat.S_IMODE((ws / "script.sh").stat().st_mode) == expected


def test_create_file_refuses_setuid_mode(ws: Path) -> None:
    """A setuid mode passes the schema but the step refuses it."""
    assert "setuid" in fails("create_file", make_ctx(ws), path="x", content="", mode="4755")
    assert not (ws / "x").exists()


def test_create_file_keeps_mode_of_replaced_file(ws: Path) -> None:
    """Overwriting an executable without `mode` keeps it executable."""
    (ws / "run.sh").write_text("old")
    (ws / "run.sh").chmod(0o751)
    run("create_file", make_ctx(ws), path="run.sh", content="new")
    assert stat.S_IMODE((ws / "run.sh").stat().st_mode) == 0o751


def test_create_file_overwrites_by_default(ws: Path) -> None:
    """`overwrite` defaults to true."""
    (ws / "f").write_text("old")
    run("create_file", make_ctx(ws), path="f", content="new")
    assert (ws / "f").read_text() == "new"


def test_create_file_with_overwrite_false_fails_when_present(ws: Path) -> None:
    """`overwrite: false` fails on an existing file and leaves it as it was."""
    (ws / "f").write_text("old")
    message = fails("create_file", make_ctx(ws), path="f", content="new", overwrite=False)
    assert message.splitlines()[0] == "file already exists: 'f'"
    assert message.splitlines()[-1].startswith("HINT: set overwrite: true")
    assert (ws / "f").read_text() == "old"
    assert temp_leftovers(ws) == []


def test_create_file_with_overwrite_false_creates_a_new_file(ws: Path) -> None:
    """`overwrite: false` is fine when the file does not exist."""
    run("create_file", make_ctx(ws), path="f", content="new", overwrite=False)
    assert (ws / "f").read_text() == "new"


def test_create_file_on_a_directory_fails(ws: Path) -> None:
    """A directory is not replaced by a file."""
    (ws / "d").mkdir()
    assert "is a directory" in fails("create_file", make_ctx(ws), path="d", content="x")
    assert "workspace root" in fails("create_file", make_ctx(ws), path=".", content="x")


def test_create_file_is_relative_to_the_working_directory(ws: Path) -> None:
    """With a working directory, relative paths start there and outputs stay workspace-relative."""
    (ws / "sub").mkdir()
    out = run("create_file", make_ctx(ws, cwd=ws / "sub"), path="f.txt", content="x")
    assert out["path"] == "sub/f.txt"
    assert (ws / "sub" / "f.txt").exists()


def test_create_file_through_an_inside_symlink_writes_the_target(ws: Path) -> None:
    """A symlink to a file inside the workspace is written through, and stays a symlink."""
    (ws / "real.txt").write_text("old")
    (ws / "alias.txt").symlink_to("real.txt")
    out = run("create_file", make_ctx(ws), path="alias.txt", content="new")
    assert out["path"] == "real.txt"
    assert (ws / "real.txt").read_text() == "new"
    assert (ws / "alias.txt").is_symlink()


@pytest.mark.parametrize(
    "given", ["../x", "a/../../x", "/etc/passwd", "~/.ssh/x", ".git/config", ".git/hooks/pre-commit"]
)
def test_create_file_refuses_escapes(ws: Path, given: str) -> None:
    """Nothing is written outside the workspace or under .git."""
    fails("create_file", make_ctx(ws), PathEscapeError, path=given, content="x")


def test_create_file_through_a_symlink_out_writes_nothing(ws: Path, outside: Path) -> None:
    """`link -> outside` then `link/x`: refused, nothing appears outside."""
    (ws / "link").symlink_to(outside)
    fails("create_file", make_ctx(ws), PathEscapeError, path="link/x", content="x")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_create_file_respects_the_size_limit(ws: Path) -> None:
    """Content larger than max_file_bytes is refused and no file is made."""
    message = fails("create_file", make_ctx(ws, max_file_bytes=10), path="big", content="x" * 11)
    assert "too large" in message
    assert not (ws / "big").exists()


def test_create_file_with_a_lone_surrogate_is_a_clean_error(ws: Path) -> None:
    """Content that is not valid Unicode fails with a message."""
    assert "not valid Unicode" in fails("create_file", make_ctx(ws), path="f", content="a\ud800")


def test_create_file_with_nul_in_path_is_a_clean_error(ws: Path) -> None:
    """The HOSTILE.md NUL case through the step."""
    assert "NUL" in fails("create_file", make_ctx(ws), PathEscapeError, path="a\x00b", content="x")


def test_create_file_with_a_4096_byte_name_is_a_clean_error(ws: Path) -> None:
    """The HOSTILE.md long-name case through the step."""
    assert "too long" in fails("create_file", make_ctx(ws), PathEscapeError, path="n" * 4096, content="x")


# ---------------------------------------------------------------------------------------------
# edit_file


@pytest.fixture
def target(ws: Path) -> Path:
    path = ws / "conf.txt"
    path.write_text("alpha = 1\nbeta = 2\nalpha = 3\n")
    return path


def test_edit_content_replaces_the_whole_file(ws: Path, target: Path) -> None:
    """`content` replaces everything."""
    out = run("edit_file", make_ctx(ws), path="conf.txt", content="new\n")
    assert out == {"path": "conf.txt", "size": 4, "changes": 1}
    assert target.read_text() == "new\n"


def test_edit_append_adds_at_the_end(ws: Path, target: Path) -> None:
    """`append` adds text after the last byte."""
    out = run("edit_file", make_ctx(ws), path="conf.txt", append="gamma = 4\n")
    assert target.read_text().endswith("alpha = 3\ngamma = 4\n")
    assert out["changes"] == 1


def test_edit_replace_replaces_every_occurrence_by_default(ws: Path, target: Path) -> None:
    """`replace` without `count` replaces all occurrences, and says how many."""
    out = run("edit_file", make_ctx(ws), path="conf.txt", replace={"old": "alpha", "new": "ALPHA"})
    assert out["changes"] == 2
    assert target.read_text() == "ALPHA = 1\nbeta = 2\nALPHA = 3\n"


def test_edit_replace_count_limits_replacements(ws: Path, target: Path) -> None:
    """`count: 1` replaces only the first occurrence; `count: 0` means all."""
    out = run("edit_file", make_ctx(ws), path="conf.txt", replace={"old": "alpha", "new": "A", "count": 1})
    assert out["changes"] == 1
    assert target.read_text() == "A = 1\nbeta = 2\nalpha = 3\n"
    out = run("edit_file", make_ctx(ws), path="conf.txt", replace={"old": " = ", "new": "=", "count": 0})
    assert out["changes"] == 3


def test_edit_replace_is_literal(ws: Path) -> None:
    """`replace.old` is not a regex: dots and brackets are plain text."""
    (ws / "f").write_text("a.b [x]\n")
    run("edit_file", make_ctx(ws), path="f", replace={"old": "[x]", "new": "(y)"})
    assert (ws / "f").read_text() == "a.b (y)\n"


def test_edit_replace_fails_when_old_is_absent(ws: Path, target: Path) -> None:
    """`replace` with text that is not there fails and changes nothing."""
    message = fails("edit_file", make_ctx(ws), path="conf.txt", replace={"old": "delta", "new": "x"})
    assert message.splitlines()[0] == "text to replace not found in 'conf.txt': 'delta'"
    assert target.read_text() == "alpha = 1\nbeta = 2\nalpha = 3\n"


def test_edit_regex_substitutes_with_groups(ws: Path, target: Path) -> None:
    """`regex` uses Python re syntax, groups included, and counts substitutions."""
    out = run(
        "edit_file", make_ctx(ws), path="conf.txt", regex={"pattern": r"(?m)^(\w+) = (\d)$", "replacement": r"\1: \2"}
    )
    assert out["changes"] == 3
    assert target.read_text() == "alpha: 1\nbeta: 2\nalpha: 3\n"


def test_edit_regex_count_limits_substitutions(ws: Path, target: Path) -> None:
    """`regex.count: 1` substitutes only the first match."""
    out = run("edit_file", make_ctx(ws), path="conf.txt", regex={"pattern": r"\d", "replacement": "N", "count": 1})
    assert out["changes"] == 1
    assert target.read_text() == "alpha = N\nbeta = 2\nalpha = 3\n"


def test_edit_regex_fails_when_nothing_matches(ws: Path, target: Path) -> None:
    """A regex that matches nothing fails the step."""
    message = fails("edit_file", make_ctx(ws), path="conf.txt", regex={"pattern": "zzz+", "replacement": ""})
    assert "regex found no match in 'conf.txt'" in message


def test_edit_regex_invalid_pattern_is_a_clean_error(ws: Path, target: Path) -> None:
    """An invalid regex fails with the reason and position, not a traceback."""
    message = fails("edit_file", make_ctx(ws), path="conf.txt", regex={"pattern": "a(b", "replacement": ""})
    assert message.startswith("invalid regular expression 'a(b': missing ) at position 3")


def test_edit_regex_invalid_replacement_is_a_clean_error(ws: Path, target: Path) -> None:
    """A replacement naming a group that does not exist fails cleanly."""
    message = fails("edit_file", make_ctx(ws), path="conf.txt", regex={"pattern": "alpha", "replacement": r"\9"})
    assert message.startswith("invalid regex replacement")


def test_edit_insert_after_anchor_line(ws: Path, target: Path) -> None:
    """`insert.after` adds a line after the first line containing the anchor."""
    out = run("edit_file", make_ctx(ws), path="conf.txt", insert={"after": "beta", "text": "inserted"})
    assert out["changes"] == 1
    assert target.read_text() == "alpha = 1\nbeta = 2\ninserted\nalpha = 3\n"


def test_edit_insert_before_anchor_line(ws: Path, target: Path) -> None:
    """`insert.before` adds lines before the first line containing the anchor."""
    run("edit_file", make_ctx(ws), path="conf.txt", insert={"before": "alpha", "text": "# header\n# two\n"})
    assert target.read_text() == "# header\n# two\nalpha = 1\nbeta = 2\nalpha = 3\n"


def test_edit_insert_after_last_line_without_newline(ws: Path) -> None:
    """Inserting after a last line that has no line ending puts the text on its own line."""
    (ws / "f").write_text("one\ntwo")
    run("edit_file", make_ctx(ws), path="f", insert={"after": "two", "text": "three"})
    assert (ws / "f").read_text() == "one\ntwo\nthree"


def test_edit_insert_keeps_crlf_line_endings(ws: Path) -> None:
    """A CRLF file stays CRLF after an insert."""
    (ws / "f").write_bytes(b"one\r\ntwo\r\n")
    run("edit_file", make_ctx(ws), path="f", insert={"after": "one", "text": "mid\nmid2"})
    assert (ws / "f").read_bytes() == b"one\r\nmid\r\nmid2\r\ntwo\r\n"


def test_edit_insert_fails_when_anchor_is_absent(ws: Path, target: Path) -> None:
    """An anchor that is on no line fails the step and changes nothing."""
    message = fails("edit_file", make_ctx(ws), path="conf.txt", insert={"after": "gamma", "text": "x"})
    assert message.splitlines()[0] == "anchor line not found in 'conf.txt': 'gamma'"
    assert target.read_text() == "alpha = 1\nbeta = 2\nalpha = 3\n"


def test_edit_missing_file_fails_with_a_hint(ws: Path) -> None:
    """Editing a file that does not exist fails and suggests create_file."""
    message = fails("edit_file", make_ctx(ws), path="nope.txt", append="x")
    assert message.splitlines() == [
        "file to edit does not exist: 'nope.txt'",
        "HINT: create it first with create_file",
    ]


def test_edit_with_two_modes_fails_clearly(ws: Path, target: Path) -> None:
    """Even without the schema, two edit modes (or none) are a clear error."""
    ctx = make_ctx(ws)
    with pytest.raises(StepError, match="exactly one of content, append, replace, regex, insert; got content, append"):
        run("edit_file", ctx, check_schema=False, path="conf.txt", content="x", append="y")
    with pytest.raises(StepError, match="got none"):
        run("edit_file", ctx, check_schema=False, path="conf.txt")


def test_edit_keeps_the_file_mode(ws: Path, target: Path) -> None:
    """An edited executable stays executable."""
    target.chmod(0o755)
    run("edit_file", make_ctx(ws), path="conf.txt", append="x")
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


def test_edit_keeps_bytes_that_are_not_utf8(ws: Path) -> None:
    """Bytes that are not UTF-8 elsewhere in the file survive an edit unchanged."""
    (ws / "bin").write_bytes(b"\xff\xfe header\nkey = 1\n")
    run("edit_file", make_ctx(ws), path="bin", replace={"old": "1", "new": "2"})
    assert (ws / "bin").read_bytes() == b"\xff\xfe header\nkey = 2\n"


def test_edit_refuses_escapes_and_git(ws: Path) -> None:
    """edit_file is contained like every file step."""
    for given in ("../x", "/etc/hosts", ".git/config"):
        fails("edit_file", make_ctx(ws), PathEscapeError, path=given, append="x")


def test_edit_respects_the_size_limit(ws: Path) -> None:
    """A file larger than max_file_bytes is not read for an edit."""
    (ws / "big").write_text("x" * 100)
    assert "too large" in fails("edit_file", make_ctx(ws, max_file_bytes=50), path="big", append="y")
    (ws / "small").write_text("x" * 40)
    assert "too large" in fails("edit_file", make_ctx(ws, max_file_bytes=50), path="small", append="y" * 20)


# ---------------------------------------------------------------------------------------------
# delete_file


def test_delete_file_removes_a_file(ws: Path) -> None:
    """A file is deleted and `existed` is true."""
    (ws / "f").write_text("x")
    assert run("delete_file", make_ctx(ws), path="f") == {"path": "f", "existed": True}
    assert not (ws / "f").exists()


def test_delete_missing_file_is_fine_by_default(ws: Path) -> None:
    """`missing_ok` defaults to true, as in RustChain; `existed` says it was not there."""
    assert run("delete_file", make_ctx(ws), path="nope/f") == {"path": "nope/f", "existed": False}


def test_delete_missing_file_fails_without_missing_ok(ws: Path) -> None:
    """`missing_ok: false` turns a missing file into a failure."""
    message = fails("delete_file", make_ctx(ws), path="nope", missing_ok=False)
    assert message.splitlines()[0] == "nothing to delete: 'nope' does not exist"


def test_delete_directory_needs_recursive(ws: Path) -> None:
    """A directory is not deleted without `recursive: true`, and the hint says so."""
    (ws / "d").mkdir()
    message = fails("delete_file", make_ctx(ws), path="d")
    assert message.splitlines() == [
        "is a directory: 'd'",
        "HINT: set recursive: true to delete it and everything in it",
    ]
    assert (ws / "d").is_dir()


def test_delete_directory_recursively(ws: Path) -> None:
    """`recursive: true` deletes a whole tree."""
    (ws / "d" / "e").mkdir(parents=True)
    (ws / "d" / "e" / "f").write_text("x")
    assert run("delete_file", make_ctx(ws), path="d", recursive=True)["existed"] is True
    assert not (ws / "d").exists()


def test_delete_symlink_removes_the_link_not_the_target(ws: Path, outside: Path) -> None:
    """Deleting `link -> outside` removes the link; the outside directory is untouched."""
    (ws / "link").symlink_to(outside)
    run("delete_file", make_ctx(ws), path="link", recursive=True)
    assert not (ws / "link").is_symlink()
    assert (outside / "secret.txt").exists()


def test_recursive_delete_does_not_follow_symlinks_inside(ws: Path, outside: Path) -> None:
    """A symlink to outside inside a deleted tree is unlinked, its target kept."""
    (ws / "d").mkdir()
    (ws / "d" / "out").symlink_to(outside)
    run("delete_file", make_ctx(ws), path="d", recursive=True)
    assert not (ws / "d").exists()
    assert (outside / "secret.txt").exists()


@pytest.mark.parametrize("given", ["", ".", "./", "sub/.."])
def test_deleting_the_workspace_root_is_refused(ws: Path, given: str) -> None:
    """ "", ".", and paths that resolve to the root are refused by name."""
    (ws / "sub").mkdir()
    (ws / "keep").write_text("x")
    message = fails("delete_file", make_ctx(ws), PathEscapeError, path=given, recursive=True)
    assert message.splitlines()[0] == "refusing to delete the workspace root"
    assert (ws / "keep").exists()


def test_deleting_the_root_by_absolute_path_is_refused(ws: Path) -> None:
    """The workspace's own absolute path is the root too."""
    message = fails("delete_file", make_ctx(ws), PathEscapeError, path=str(ws), recursive=True)
    assert message.startswith("refusing to delete the workspace root")


def test_deleting_dot_in_a_subdirectory_is_refused(ws: Path) -> None:
    """With a working directory, "." is refused rather than deleting it from under later steps."""
    (ws / "sub").mkdir()
    message = fails("delete_file", make_ctx(ws, cwd=ws / "sub"), path=".", recursive=True)
    assert message.startswith("refusing to delete the working directory")
    assert (ws / "sub").is_dir()


@pytest.mark.parametrize("given", [".git", ".git/config", "sub/.git", ".GIT"])
def test_deleting_git_is_refused(ws: Path, given: str) -> None:
    """.git is never deleted by a file step."""
    (ws / ".git").mkdir()
    (ws / ".git" / "config").write_text("[core]\n")
    message = fails("delete_file", make_ctx(ws), PathEscapeError, path=given, recursive=True)
    assert message.startswith("refusing to delete .git")
    assert (ws / ".git" / "config").exists()


def test_recursive_delete_of_a_tree_holding_git_is_refused(ws: Path) -> None:
    """A directory with a nested repository is not deleted with its .git."""
    (ws / "vendor" / "lib" / ".git").mkdir(parents=True)
    message = fails("delete_file", make_ctx(ws), PathEscapeError, path="vendor", recursive=True)
    assert message.splitlines()[0] == "refusing to delete .git: 'vendor/lib/.git' is inside 'vendor'"
    assert (ws / "vendor" / "lib" / ".git").is_dir()


@pytest.mark.parametrize("given", ["../x", "/etc/passwd", "~/.bashrc"])
def test_delete_refuses_escapes(ws: Path, given: str) -> None:
    """delete_file never removes anything outside the workspace."""
    fails("delete_file", make_ctx(ws), PathEscapeError, path=given)


def test_delete_through_symlink_out_is_refused(ws: Path, outside: Path) -> None:
    """`link/secret.txt` with `link -> outside` is refused; the secret stays."""
    (ws / "link").symlink_to(outside)
    fails("delete_file", make_ctx(ws), PathEscapeError, path="link/secret.txt")
    assert (outside / "secret.txt").exists()


# ---------------------------------------------------------------------------------------------
# copy_file


def test_copy_file_copies_content_and_mode(ws: Path) -> None:
    """A copy has the same bytes and permissions; size is reported."""
    (ws / "a.sh").write_text("echo hi\n")
    (ws / "a.sh").chmod(0o750)
    out = run("copy_file", make_ctx(ws), source="a.sh", destination="bin/b.sh")
    assert out == {"source": "a.sh", "destination": "bin/b.sh", "size": 8}
    assert (ws / "bin" / "b.sh").read_text() == "echo hi\n"
    assert stat.S_IMODE((ws / "bin" / "b.sh").stat().st_mode) == 0o750
    assert (ws / "a.sh").exists()


def test_copy_file_overwrites_by_default(ws: Path) -> None:
    """`overwrite` defaults to true for copies."""
    (ws / "a").write_text("new")
    (ws / "b").write_text("old")
    run("copy_file", make_ctx(ws), source="a", destination="b")
    assert (ws / "b").read_text() == "new"


def test_copy_file_with_overwrite_false_fails_when_present(ws: Path) -> None:
    """`overwrite: false` keeps an existing destination and fails."""
    (ws / "a").write_text("new")
    (ws / "b").write_text("old")
    assert "already exists" in fails("copy_file", make_ctx(ws), source="a", destination="b", overwrite=False)
    assert (ws / "b").read_text() == "old"


def test_copy_directory_recursively(ws: Path) -> None:
    """A directory source is copied with its tree; an inside symlink is copied as a symlink."""
    (ws / "src" / "pkg").mkdir(parents=True)
    (ws / "src" / "pkg" / "m.py").write_text("x = 1\n")
    (ws / "src" / "top.txt").write_text("top")
    (ws / "src" / "alias").symlink_to("top.txt")
    out = run("copy_file", make_ctx(ws), source="src", destination="dst")
    assert out["size"] == len("x = 1\n") + len("top")
    assert (ws / "dst" / "pkg" / "m.py").read_text() == "x = 1\n"
    assert (ws / "dst" / "alias").is_symlink()
    assert os.readlink(ws / "dst" / "alias") == "top.txt"


def test_copy_directory_with_symlink_out_is_refused(ws: Path, outside: Path) -> None:
    """A tree holding a symlink that leads out of the workspace is refused."""
    (ws / "src").mkdir()
    (ws / "src" / "out").symlink_to(outside)
    message = fails("copy_file", make_ctx(ws), PathEscapeError, source="src", destination="dst")
    assert "refusing to copy or move the symlink 'src/out'" in message


def test_copy_directory_with_symlink_that_would_point_out_is_refused(ws: Path) -> None:
    """A relative symlink that is fine where it is but would leave the workspace at the copy is refused."""
    (ws / "a" / "b").mkdir(parents=True)
    (ws / "a" / "b" / "up").symlink_to("../..")
    fails("copy_file", make_ctx(ws), PathEscapeError, source="a/b", destination="c")


def test_copy_directory_holding_git_is_refused(ws: Path) -> None:
    """Copying a tree with a .git inside would read .git: refused."""
    (ws / "repo" / ".git").mkdir(parents=True)
    assert "refusing to copy .git" in fails("copy_file", make_ctx(ws), PathEscapeError, source="repo", destination="r2")


def test_copy_directory_into_itself_is_refused(ws: Path) -> None:
    """Copying a directory into its own subtree is refused instead of recursing forever."""
    (ws / "d").mkdir()
    assert "inside the source" in fails("copy_file", make_ctx(ws), source="d", destination="d/sub")


def test_copy_directory_onto_existing_directory_merges(ws: Path) -> None:
    """Copying onto an existing directory merges, replacing files when overwrite is true."""
    (ws / "src").mkdir()
    (ws / "src" / "a").write_text("new")
    (ws / "dst").mkdir()
    (ws / "dst" / "a").write_text("old")
    (ws / "dst" / "b").write_text("kept")
    run("copy_file", make_ctx(ws), source="src", destination="dst")
    assert (ws / "dst" / "a").read_text() == "new"
    assert (ws / "dst" / "b").read_text() == "kept"
    assert "already exists" in fails("copy_file", make_ctx(ws), source="src", destination="dst", overwrite=False)


def test_copy_file_onto_a_directory_fails_with_a_hint(ws: Path) -> None:
    """The destination names the new file; a directory there is an error with the path to use."""
    (ws / "a.txt").write_text("x")
    (ws / "d").mkdir()
    message = fails("copy_file", make_ctx(ws), source="a.txt", destination="d")
    assert message.splitlines() == ["destination is a directory: 'd'", "HINT: name the file inside it: 'd/a.txt'"]


def test_copy_missing_source_fails(ws: Path) -> None:
    """A source that does not exist fails the step."""
    assert "source does not exist: 'nope'" in fails("copy_file", make_ctx(ws), source="nope", destination="x")


def test_copy_to_the_same_path_fails(ws: Path) -> None:
    """Copying a file onto itself is refused."""
    (ws / "a").write_text("x")
    assert "same path" in fails("copy_file", make_ctx(ws), source="a", destination="./a")


@pytest.mark.parametrize(
    ("source", "destination"),
    [
        ("../x", "a"),
        ("a", "../x"),
        ("/etc/passwd", "p"),
        ("a", "/tmp/x"),
        (".git/config", "c"),
        ("a", ".git/hooks/post-checkout"),
    ],
)
def test_copy_refuses_escapes_on_either_side(ws: Path, source: str, destination: str) -> None:
    """Both copy paths are contained."""
    (ws / "a").write_text("x")
    fails("copy_file", make_ctx(ws), PathEscapeError, source=source, destination=destination)


def test_copy_from_a_fifo_is_refused(ws: Path) -> None:
    """Only regular files are copied."""
    os.mkfifo(ws / "pipe")
    ctx = make_ctx(ws)
    error = _call_with_deadline(lambda: run("copy_file", ctx, source="pipe", destination="x"))
    assert isinstance(error, StepError)
    assert "not a regular file" in error.message


# ---------------------------------------------------------------------------------------------
# move_file


def test_move_file_renames(ws: Path) -> None:
    """The file is at its new path and gone from the old one."""
    (ws / "a.txt").write_text("hello")
    out = run("move_file", make_ctx(ws), source="a.txt", destination="new/b.txt")
    assert out == {"source": "a.txt", "destination": "new/b.txt", "size": 5}
    assert not (ws / "a.txt").exists()
    assert (ws / "new" / "b.txt").read_text() == "hello"


def test_move_replaces_an_existing_file(ws: Path) -> None:
    """Like mv, a file at the destination is replaced."""
    (ws / "a").write_text("new")
    (ws / "b").write_text("old")
    run("move_file", make_ctx(ws), source="a", destination="b")
    assert (ws / "b").read_text() == "new"


def test_move_directory(ws: Path) -> None:
    """A directory moves with its contents; size counts the files in it."""
    (ws / "d").mkdir()
    (ws / "d" / "f").write_text("abc")
    assert run("move_file", make_ctx(ws), source="d", destination="e")["size"] == 3
    assert (ws / "e" / "f").read_text() == "abc"


def test_move_onto_a_directory_fails_with_a_hint(ws: Path) -> None:
    """A directory at the destination is not replaced; the hint names the path to use."""
    (ws / "a").write_text("x")
    (ws / "d").mkdir()
    message = fails("move_file", make_ctx(ws), source="a", destination="d")
    assert message.splitlines()[-1] == "HINT: name the target inside it: 'd/a'"


def test_move_symlink_moves_the_link(ws: Path) -> None:
    """A symlink is moved as a link, not the file it points to."""
    (ws / "d").mkdir()
    (ws / "t").write_text("x")
    (ws / "l").symlink_to(str(ws / "t"))
    run("move_file", make_ctx(ws), source="l", destination="d/l")
    assert (ws / "d" / "l").is_symlink()
    assert (ws / "t").read_text() == "x"


def test_move_symlink_that_would_point_out_is_refused(ws: Path) -> None:
    """A relative symlink moved deeper would point elsewhere; if that is outside, it is refused."""
    (ws / "a" / "b").mkdir(parents=True)
    (ws / "a" / "b" / "up").symlink_to("../..")
    fails("move_file", make_ctx(ws), PathEscapeError, source="a/b/up", destination="up")
    assert (ws / "a" / "b" / "up").is_symlink()


def test_move_directory_into_itself_is_refused(ws: Path) -> None:
    """Moving a directory under itself fails clearly."""
    (ws / "d").mkdir()
    assert "into itself" in fails("move_file", make_ctx(ws), source="d", destination="d/e")


def test_move_missing_source_fails(ws: Path) -> None:
    """A missing source fails the step."""
    assert "source does not exist" in fails("move_file", make_ctx(ws), source="nope", destination="x")


def test_move_workspace_root_is_refused(ws: Path) -> None:
    """The workspace root cannot be moved, nor replaced."""
    (ws / "a").write_text("x")
    assert "workspace root" in fails("move_file", make_ctx(ws), PathEscapeError, source=".", destination="x")
    assert "workspace root" in fails("move_file", make_ctx(ws), source="a", destination=".")


@pytest.mark.parametrize(("source", "destination"), [("../x", "a"), ("a", "../x"), ("a", "~/x"), ("a", ".git/x")])
def test_move_refuses_escapes(ws: Path, source: str, destination: str) -> None:
    """Both move paths are contained."""
    (ws / "a").write_text("x")
    fails("move_file", make_ctx(ws), PathEscapeError, source=source, destination=destination)
    assert (ws / "a").exists()


# ---------------------------------------------------------------------------------------------
# read_file


def test_read_file_returns_content_and_size(ws: Path) -> None:
    """read_file gives the text and its size in bytes."""
    (ws / "f").write_text("héllo", encoding="utf-8")
    assert run("read_file", make_ctx(ws), path="f") == {"content": "héllo", "size": 6}


def test_read_file_replaces_invalid_utf8(ws: Path) -> None:
    """Bytes that are not UTF-8 come back as U+FFFD instead of failing."""
    (ws / "f").write_bytes(b"a\xffb")
    assert run("read_file", make_ctx(ws), path="f")["content"] == "a\ufffdb"


def test_read_missing_file_fails(ws: Path) -> None:
    """A missing file fails the step with its path."""
    assert fails("read_file", make_ctx(ws), path="nope.txt") == "no such file: 'nope.txt'"


def test_read_directory_fails(ws: Path) -> None:
    """A directory is not a file to read."""
    (ws / "d").mkdir()
    assert "is a directory" in fails("read_file", make_ctx(ws), path="d")


def test_read_git_config_is_refused(ws: Path) -> None:
    """.git/config, where CI keeps its token, is never read."""
    (ws / ".git").mkdir()
    (ws / ".git" / "config").write_text("token")
    assert "inside .git" in fails("read_file", make_ctx(ws), PathEscapeError, path=".git/config")


def test_read_file_respects_the_size_limit(ws: Path) -> None:
    """A file larger than max_file_bytes is refused, with both sizes in the message."""
    (ws / "big").write_text("x" * 101)
    message = fails("read_file", make_ctx(ws, max_file_bytes=100), path="big")
    assert message.splitlines()[0] == "file is too large: 'big' has 101 bytes, the limit is 100"


# ---------------------------------------------------------------------------------------------
# list_directory


@pytest.fixture
def tree(ws: Path) -> Path:
    (ws / "src" / "pkg").mkdir(parents=True)
    (ws / "src" / "pkg" / "mod.py").write_text("")
    (ws / "src" / "main.py").write_text("")
    (ws / "README.md").write_text("")
    (ws / ".git" / "objects").mkdir(parents=True)
    (ws / ".git" / "config").write_text("")
    (ws / f"{TEMP_PREFIX}leftover").write_text("")
    return ws


def test_list_directory_lists_top_level_sorted(tree: Path) -> None:
    """Default: the workspace root, sorted, directories with a slash, no .git, no temp files."""
    out = run("list_directory", make_ctx(tree))
    assert out == {"entries": ["README.md", "src/"], "count": 2}


def test_list_directory_recursive(tree: Path) -> None:
    """`recursive: true` lists the whole tree as workspace-relative paths."""
    out = run("list_directory", make_ctx(tree), recursive=True)
    assert out["entries"] == ["README.md", "src/", "src/main.py", "src/pkg/", "src/pkg/mod.py"]
    assert out["count"] == 5


def test_list_directory_of_a_subdirectory(tree: Path) -> None:
    """Entries stay workspace-relative when listing a subdirectory."""
    assert run("list_directory", make_ctx(tree), path="src")["entries"] == ["src/main.py", "src/pkg/"]


def test_list_directory_pattern_matches_names(tree: Path) -> None:
    """`pattern` is a glob on the entry name."""
    out = run("list_directory", make_ctx(tree), recursive=True, pattern="*.py")
    assert out["entries"] == ["src/main.py", "src/pkg/mod.py"]


def test_list_directory_pattern_matches_relative_paths(tree: Path) -> None:
    """`pattern` also matches the path below the listed directory."""
    out = run("list_directory", make_ctx(tree), path="src", recursive=True, pattern="pkg/*")
    assert out["entries"] == ["src/pkg/mod.py"]


def test_list_directory_does_not_descend_into_symlinks(ws: Path) -> None:
    """A symlink to /etc is listed as a name and never entered."""
    (ws / "etc").symlink_to("/etc")
    out = run("list_directory", make_ctx(ws), recursive=True)
    assert out["entries"] == ["etc"]


def test_list_missing_directory_fails(ws: Path) -> None:
    """A missing directory fails the step."""
    assert fails("list_directory", make_ctx(ws), path="nope") == "no such directory: 'nope'"


def test_list_a_file_fails(ws: Path) -> None:
    """A file is not a directory to list; the hint points to read_file."""
    (ws / "f").write_text("")
    assert fails("list_directory", make_ctx(ws), path="f").splitlines()[-1] == "HINT: use read_file to read a file"


@pytest.mark.parametrize("given", ["..", "/etc", "~", ".git"])
def test_list_directory_refuses_escapes(ws: Path, given: str) -> None:
    """Listing outside the workspace, or .git, is refused."""
    fails("list_directory", make_ctx(ws), PathEscapeError, path=given)


def test_files_module_exports() -> None:
    """The edit modes are published for the loader and docs."""
    assert files.EDIT_MODES == ("content", "append", "replace", "regex", "insert")
