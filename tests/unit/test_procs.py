"""Unit tests of procs.run_process: capture, stdin, env, timeouts, and that nothing a step starts survives it."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_rustchain.errors import StepError
from pytest_rustchain.procs import HeadTailBuffer, ProcessResult, _children_of_self, _may_have_children, run_process

ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}

_counter = itertools.count(1)


def _token() -> str:
    """A sleep duration no other process on the machine has on its command line."""
    return f"1000.{os.getpid()}{next(_counter):04d}"


def _sh(
    line: str,
    cwd: Path,
    *,
    timeout: float = 10.0,
    grace: float = 2.0,
    stdin_text: str | None = None,
    output_cap: int = 64 * 1024,
) -> ProcessResult:
    argv = ["/bin/sh", "-c", line]
    return run_process(
        argv, cwd=cwd, env=ENV, timeout=timeout, grace=grace, stdin_text=stdin_text, output_cap=output_cap
    )


def _holders(token: str) -> list[int]:
    """Pids of live processes with ``token`` among their arguments (zombies have an empty command line)."""
    found = []
    needle = token.encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                args = fh.read().split(b"\0")
        except OSError:
            continue
        if needle in args:
            found.append(int(entry.name))
    return found


def _children() -> set[int]:
    """Pids whose parent is this process, zombies included."""
    pids: set[int] = set()
    for task in os.scandir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task.name}/children") as fh:
                pids.update(int(p) for p in fh.read().split())
        except FileNotFoundError:
            continue
    return pids


@pytest.fixture
def no_leftovers() -> Iterator[None]:
    """Fails the test when it leaves a child of the pytest process behind, zombie or alive."""
    before = _children()
    yield
    assert _children() - before == set()


# --- exit codes, capture -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "code"),
    [("exit 0", 0), ("exit 3", 3), ("kill -TERM $$", -signal.SIGTERM), ("kill -KILL $$", -signal.SIGKILL)],
)
def test_exit_code(tmp_path: Path, line: str, code: int) -> None:
    """The step's exit status is reported, minus the signal number when a signal ended it."""
    result = _sh(line, tmp_path)
    assert result.exit_code == code
    assert not result.timed_out


def test_stdout_and_stderr_are_captured_apart(tmp_path: Path) -> None:
    """What the command prints on stdout and on stderr is shown separately."""
    result = _sh("echo out; echo err >&2; echo out2", tmp_path)
    assert result.stdout.text == "out\nout2\n"
    assert result.stderr.text == "err\n"
    assert result.stdout.total_bytes == 9
    assert not result.stdout.truncated
    assert result.argv == ("/bin/sh", "-c", "echo out; echo err >&2; echo out2")


def test_invalid_utf8_is_replaced(tmp_path: Path) -> None:
    """Binary output does not break the report: invalid bytes show as replacement characters."""
    result = _sh(r"printf 'a\377b'", tmp_path)
    assert result.stdout.text == "a\ufffdb"


def test_long_output_keeps_head_and_tail(tmp_path: Path) -> None:
    """Output over the cap shows its beginning and its end with the number of bytes left out."""
    result = _sh("head -c 1000 /dev/zero | tr '\\0' a; printf END", tmp_path, output_cap=100)
    assert result.stdout.truncated
    assert result.stdout.total_bytes == 1003
    assert result.stdout.text == "a" * 100 + "\n[... 803 bytes omitted ...]\n" + "a" * 97 + "END"


def test_output_up_to_twice_the_cap_is_whole(tmp_path: Path) -> None:
    """Output that fits in head plus tail is shown whole, without a marker."""
    result = _sh("head -c 200 /dev/zero | tr '\\0' b", tmp_path, output_cap=100)
    assert not result.stdout.truncated
    assert result.stdout.text == "b" * 200


@settings(deadline=None)  # pure computation; a loaded CI machine must not make it flaky
@given(chunks=st.lists(st.binary(max_size=40), max_size=12), cap=st.integers(min_value=0, max_value=50))
def test_head_tail_buffer_matches_the_whole_stream(chunks: list[bytes], cap: int) -> None:
    """However the output arrives in pieces, the kept text is exactly its first and last ``cap`` bytes."""
    buf = HeadTailBuffer(cap)
    for chunk in chunks:
        buf.feed(chunk)
    data = b"".join(chunks)
    got = buf.result()
    assert got.total_bytes == len(data)
    if len(data) <= 2 * cap:
        assert not got.truncated
        assert got.text == data.decode("utf-8", errors="replace")
    else:
        assert got.truncated
        tail = data[len(data) - cap :]
        marker = f"\n[... {len(data) - 2 * cap} bytes omitted ...]\n"
        assert got.text == data[:cap].decode("utf-8", "replace") + marker + tail.decode("utf-8", "replace")


def _rss_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def test_huge_output_keeps_memory_bounded(tmp_path: Path) -> None:
    """A step printing 400 MB neither fills the memory nor loses count of what it printed."""
    baseline = _rss_kib()
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_kib())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = _sh("yes | head -c 400000000", tmp_path, timeout=60)
    finally:
        done.set()
        sampler.join()
    assert result.exit_code == 0
    assert result.stdout.total_bytes == 400_000_000
    assert result.stdout.truncated
    assert len(result.stdout.text) < 2 * 64 * 1024 + 100
    assert result.stdout.text.startswith("y\ny\n")
    assert result.stdout.text.endswith("y\ny\n")
    assert peak - baseline < 16 * 1024, f"RSS grew by {peak - baseline} KiB"


# --- stdin -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["/bin/sh", "-c", "cat"], 0),
        (["/bin/sh", "-c", "read x"], 1),
        ([sys.executable, "-c", "input()"], 1),
    ],
)
def test_stdin_is_dev_null(tmp_path: Path, argv: list[str], code: int) -> None:
    """A command reading stdin sees end of file at once instead of hanging."""
    result = run_process(argv, cwd=tmp_path, env=ENV, timeout=10)
    assert result.exit_code == code
    assert result.duration < 3


def test_stdin_text_is_fed(tmp_path: Path) -> None:
    """The step's stdin text is what the command reads."""
    result = _sh("cat; echo done", tmp_path, stdin_text="hello\nwörld\n")
    assert result.stdout.text == "hello\nwörld\ndone\n"


def test_big_stdin_and_stdout_at_once_do_not_deadlock(tmp_path: Path) -> None:
    """Megabytes through stdin and back out through stdout finish instead of blocking both pipes."""
    text = "0123456789abcdef\n" * 200_000
    result = _sh("cat", tmp_path, stdin_text=text, output_cap=1024)
    assert result.exit_code == 0
    assert result.stdout.total_bytes == len(text)


def test_stdin_text_ignored_by_the_command_does_not_hang(tmp_path: Path) -> None:
    """A command that exits without reading its stdin text ends the step normally."""
    result = _sh("exit 0", tmp_path, stdin_text="x" * 5_000_000)
    assert result.exit_code == 0
    assert result.duration < 3


# --- environment and program lookup ------------------------------------------------------------------


def test_env_is_exactly_what_was_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command sees the step's environment and nothing of the pytest process's."""
    monkeypatch.setenv("RUSTCHAIN_LEAK_CHECK", "leaked")
    result = run_process(["env"], cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "ONLY": "this"}, timeout=10)
    assert sorted(result.stdout.text.splitlines()) == ["ONLY=this", "PATH=/usr/bin:/bin"]


def test_cwd_is_used(tmp_path: Path) -> None:
    """The command runs in the directory it was given."""
    result = run_process(["pwd"], cwd=tmp_path, env=ENV, timeout=10)
    assert result.stdout.text.strip() == str(tmp_path)


def test_program_found_on_the_steps_path(tmp_path: Path) -> None:
    """A program is looked up in the step's PATH, not in the one pytest runs with."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "rustchain-hello"
    script.write_text("#!/bin/sh\necho from the step PATH\n")
    script.chmod(0o755)
    result = run_process(["rustchain-hello"], cwd=tmp_path, env={"PATH": f"{bindir}:/usr/bin:/bin"}, timeout=10)
    assert result.stdout.text == "from the step PATH\n"


def test_missing_program_names_it_and_the_path(tmp_path: Path) -> None:
    """A program that is not on the step's PATH fails with its name and the directories searched."""
    with pytest.raises(StepError) as excinfo:
        run_process(["sh"], cwd=tmp_path, env={"PATH": "/nonexistent-a:/nonexistent-b"}, timeout=10)
    message = str(excinfo.value)
    assert "program 'sh' not found on PATH" in message
    assert "/nonexistent-a:/nonexistent-b" in message
    assert "HINT:" in message


def test_missing_program_with_a_path(tmp_path: Path) -> None:
    """A relative program path that does not exist is reported with where it was looked for."""
    with pytest.raises(StepError, match=r"program './nope' not found\n.*nope does not exist"):
        run_process(["./nope"], cwd=tmp_path, env=ENV, timeout=10)


def test_program_not_executable(tmp_path: Path) -> None:
    """A script without the executable bit is reported as such, with a hint."""
    (tmp_path / "script.sh").write_text("echo hi\n")
    with pytest.raises(StepError, match=r"program '\./script\.sh' is not executable"):
        run_process(["./script.sh"], cwd=tmp_path, env=ENV, timeout=10)


def test_missing_working_directory(tmp_path: Path) -> None:
    """A working directory that does not exist fails the step with that reason."""
    with pytest.raises(StepError, match="working directory"):
        run_process(["true"], cwd=tmp_path / "gone", env=ENV, timeout=10)


def test_empty_argv_is_an_error(tmp_path: Path) -> None:
    """An empty command fails clearly instead of crashing."""
    with pytest.raises(StepError, match="empty"):
        run_process([], cwd=tmp_path, env=ENV, timeout=10)


# --- timeouts ----------------------------------------------------------------------------------------


def test_timeout_stops_sleep(tmp_path: Path, no_leftovers: None) -> None:
    """`sleep 1000` past its timeout is stopped by SIGTERM, without waiting for the grace."""
    token = _token()
    start = time.monotonic()
    result = _sh(f"echo before; sleep {token}", tmp_path, timeout=0.5)
    elapsed = time.monotonic() - start
    assert result.timed_out
    assert result.exit_code is None
    assert result.stdout.text == "before\n"
    assert 0.5 <= elapsed < 0.5 + 1
    assert _holders(token) == []


def test_timeout_kills_a_process_ignoring_term(tmp_path: Path, no_leftovers: None) -> None:
    """A process that ignores SIGTERM is killed with SIGKILL once the grace is over."""
    token = _token()
    start = time.monotonic()
    result = _sh(f"trap '' TERM; sleep {token}", tmp_path, timeout=0.3, grace=0.7)
    elapsed = time.monotonic() - start
    assert result.timed_out
    assert 0.3 + 0.7 <= elapsed < 0.3 + 0.7 + 1
    assert _holders(token) == []


def test_timeout_of_endless_output(tmp_path: Path, no_leftovers: None) -> None:
    """`yes` past its timeout is stopped and its output is capped and counted."""
    result = _sh("yes", tmp_path, timeout=0.3, output_cap=1000)
    assert result.timed_out
    assert result.stdout.truncated
    assert result.stdout.total_bytes > 10_000
    assert len(result.stdout.text) < 2100


ESCAPES = {
    "background": "sleep {t} &",
    "setsid": "setsid sleep {t} &",
    "double fork": "(sleep {t} &) &",
    "nohup": "nohup sleep {t} >/dev/null 2>&1 &",
}


@pytest.mark.parametrize("how", list(ESCAPES))
def test_nothing_survives_a_normal_exit(tmp_path: Path, how: str, no_leftovers: None) -> None:
    """Background processes the command leaves are killed when it exits, and the step does not hang on them."""
    token = _token()
    # The short sleep lets the background process exec, so that a survivor would show in /proc.
    result = _sh(ESCAPES[how].format(t=token) + " sleep 0.2; echo main done", tmp_path)
    assert result.exit_code == 0
    assert not result.timed_out
    assert result.stdout.text == "main done\n"
    assert result.killed_stragglers >= 1
    assert result.duration < 2
    assert _holders(token) == []


@pytest.mark.parametrize("how", list(ESCAPES))
def test_nothing_survives_a_timeout(tmp_path: Path, how: str, no_leftovers: None) -> None:
    """A step stopped for its timeout takes the processes that escaped its group down with it."""
    token = _token()
    start = time.monotonic()
    result = _sh(ESCAPES[how].format(t=token) + " sleep 1000", tmp_path, timeout=0.5, grace=0.5)
    assert result.timed_out
    assert result.killed_stragglers >= 1
    assert time.monotonic() - start < 0.5 + 0.5 + 1
    assert _holders(token) == []


def test_escapee_in_its_own_session_with_children(tmp_path: Path, no_leftovers: None) -> None:
    """A process tree that left the session is killed whole, children included."""
    t1, t2 = _token(), _token()
    result = _sh(f"setsid sh -c 'sleep {t1} & sleep {t2} & wait' & sleep 0.2", tmp_path)
    assert result.exit_code == 0
    assert _holders(t1) == []
    assert _holders(t2) == []


def test_clean_command_reports_no_stragglers(tmp_path: Path) -> None:
    """A command that leaves nothing behind reports no killed stragglers."""
    assert _sh("true", tmp_path).killed_stragglers == 0


def test_unrelated_children_of_pytest_are_left_alone(tmp_path: Path) -> None:
    """Processes pytest (or a fixture) started before the step keep running after the step's cleanup."""
    t1, t2 = _token(), _token()
    plain = subprocess.Popen(["sleep", t1])
    own_session = subprocess.Popen(["sleep", t2], start_new_session=True)
    try:
        result = _sh(f"setsid sleep {_token()} & (sleep {_token()} &) & sleep 0.2", tmp_path)
        assert result.killed_stragglers >= 2
        assert plain.poll() is None
        assert own_session.poll() is None
    finally:
        for proc in (plain, own_session):
            proc.kill()
            proc.wait()


@pytest.mark.skipif(sys.platform != "linux", reason="the children list is Linux's")
def test_children_started_before_a_step_are_seen_without_reading_proc() -> None:
    """The cheap check before a step agrees with /proc: a running or exited, unreaped child counts."""
    assert _may_have_children() == bool(_children_of_self())
    child = subprocess.Popen(["sleep", _token()])
    try:
        assert _may_have_children()
        child.kill()
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # a zombie until reaped
        assert _may_have_children()
    finally:
        child.kill()
        child.wait()


def test_ctrl_c_stops_the_step_and_propagates(tmp_path: Path, no_leftovers: None) -> None:
    """Ctrl-C during a step stops everything it started, then interrupts the run as usual."""
    t1, t2 = _token(), _token()
    main = threading.main_thread().ident
    assert main is not None
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGINT))
    start = time.monotonic()
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            _sh(f"sleep {t1} & setsid sleep {t2} & sleep 1000", tmp_path, timeout=30, grace=0.5)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - start < 0.3 + 0.5 + 1
    assert _holders(t1) == []
    assert _holders(t2) == []


def test_script_with_missing_interpreter(tmp_path: Path) -> None:
    """A script whose #! interpreter is missing says so, instead of claiming the script is missing."""
    script = tmp_path / "run.sh"
    script.write_text("#!/nonexistent/interpreter\necho hi\n")
    script.chmod(0o755)
    with pytest.raises(StepError, match="interpreter that does not exist: /nonexistent/interpreter"):
        run_process(["./run.sh"], cwd=tmp_path, env=ENV, timeout=10)


def test_timeout_of_a_stopped_process(tmp_path: Path, no_leftovers: None) -> None:
    """A step that stopped itself (SIGSTOP) is still ended by the timeout's SIGTERM, without the grace."""
    token = _token()
    start = time.monotonic()
    result = _sh(f"sleep {token} & kill -STOP $$", tmp_path, timeout=0.3, grace=5)
    assert result.timed_out
    assert time.monotonic() - start < 0.3 + 1
    assert _holders(token) == []


def test_concurrent_step_in_another_thread_is_not_touched(tmp_path: Path) -> None:
    """Cleaning up after one step does not kill a step running at the same time in another thread."""
    results: list[ProcessResult] = []

    def other_step() -> None:
        time.sleep(0.1)  # starts after this thread's step, so it is not among the children seen before it
        results.append(_sh("sleep 0.6; echo other done", tmp_path))

    other = threading.Thread(target=other_step)
    other.start()
    try:
        mine = _sh(f"setsid sleep {_token()} & sleep 0.3", tmp_path)
    finally:
        other.join()
    assert mine.killed_stragglers == 1
    assert results[0].exit_code == 0
    assert results[0].stdout.text == "other done\n"
