"""``expect``: assertions on a step's result, each failure saying expected versus seen."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_rustchain import userregex
from pytest_rustchain.errors import StepError
from pytest_rustchain.templating import values_equal

__all__ = ["check_expectations", "json_lookup"]

_TOKEN = re.compile(r"\.?([^.\[\]]+)|\[(-?\d+)\]")


def _trim(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = text.strip()
    if len(text) > limit:
        text = text[: limit // 2] + f" ... ({len(text)} chars) ... " + text[-limit // 2 :]
    return text


_DIFF_LINES = 40


def _lines_of(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.splitlines()
    try:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    except (TypeError, ValueError):
        return repr(value).splitlines()


def _exists(path: Path) -> bool:
    """Whether ``path`` exists, a symbolic link in the workspace that points outside it included (a
    virtualenv's ``bin/python``): asking is no read, so it is answered; reading through it is refused."""
    return path.exists() or (path.is_symlink() and Path(os.path.realpath(path)).exists())


def _read_checked(check: Mapping[str, Any], key: str, resolve: Any) -> tuple[bytes | None, str]:
    """The bytes of ``check['path']`` (inside the workspace), or None and the failure text."""
    rel = check["path"]
    try:
        target: Path = resolve(rel)
        return target.read_bytes(), ""
    except StepError as exc:
        return None, f"{key}: {exc.message}"
    except OSError as exc:
        return None, f"{key}: cannot read {rel!r}: {exc.strerror}"


def _file_checks(expect: Mapping[str, Any], resolve: Any) -> list[str]:
    """``file_sha256``, ``file_matches`` and ``file_size``: each names a workspace file."""
    failures: list[str] = []
    for check in _as_list(expect.get("file_sha256", [])):
        data, problem = _read_checked(check, "file_sha256", resolve)
        if data is None:
            failures.append(problem)
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest != str(check["sha256"]).lower():
            failures.append(f"file_sha256: {check['path']!r} has sha256 {digest} (expected {check['sha256']})")
    for check in _as_list(expect.get("file_matches", [])):
        data, problem = _read_checked(check, "file_matches", resolve)
        if data is None:
            failures.append(problem)
            continue
        text = data.decode("utf-8", errors="replace")
        try:
            found = userregex.search(check["pattern"], text, userregex.MULTILINE)
        except (userregex.PatternError, userregex.PatternTimeout) as exc:
            failures.append(f"file_matches: {exc}")
            continue
        if not found:
            failures.append(f"file_matches: /{check['pattern']}/ does not match {check['path']!r}: {_trim(text)!r}")
    for check in _as_list(expect.get("file_size", [])):
        data, problem = _read_checked(check, "file_size", resolve)
        if data is None:
            failures.append(problem)
            continue
        size, rel = len(data), check["path"]
        if "equals" in check and size != check["equals"]:
            failures.append(f"file_size: {rel!r} is {size} bytes (expected {check['equals']})")
        if "min" in check and size < check["min"]:
            failures.append(f"file_size: {rel!r} is {size} bytes (expected at least {check['min']})")
        if "max" in check and size > check["max"]:
            failures.append(f"file_size: {rel!r} is {size} bytes (expected at most {check['max']})")
    return failures


def _show(value: Any) -> str:
    """A value as YAML readers tell types apart: text quoted, numbers and the rest as written."""
    return repr(_trim(value)) if isinstance(value, str) else _trim(value)


def _mismatch(what: str, seen: Any, want: Any) -> str:
    """``what is X (expected Y)``, or for long or multi-line values a line diff, as pytest gives for
    ``assert a == b``: cutting both values in the middle would hide the line that differs."""
    long_or_lines = any(
        isinstance(v, (str, list, dict)) and (len(_lines_of(v)) > 1 or len(str(v)) > 200) for v in (seen, want)
    )
    if not long_or_lines:
        return f"{what} is {_show(seen)} (expected {_show(want)})"
    diff = list(difflib.unified_diff(_lines_of(want), _lines_of(seen), "expected", "actual", n=2, lineterm=""))
    if not diff:
        return f"{what} is {_show(seen)} (expected {_show(want)})"
    if len(diff) > _DIFF_LINES:
        diff = [*diff[:_DIFF_LINES], f"[... {len(diff) - _DIFF_LINES} more diff lines]"]
    return "\n".join([f"{what} differs from the expected value (-expected +actual):", *(f"  {d}" for d in diff)])


MAX_CHECKED_BYTES = 50 * 1024 * 1024
"""The most a file check (``file_contains``, ``json.file``) reads of one file."""


def read_checked_file(target: Path, shown: str) -> str:
    """Text of a regular file for a check. ``O_NONBLOCK`` and ``fstat``: a FIFO or device named in an
    ``expect`` is refused at once instead of blocking the pytest process; a huge file is refused too."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(target, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AssertionError(f"{shown!r} is not a regular file (a FIFO, device or directory is never read)")
        if info.st_size > MAX_CHECKED_BYTES:
            raise AssertionError(f"{shown!r} has {info.st_size} bytes, more than the {MAX_CHECKED_BYTES} a check reads")
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, min(1 << 20, MAX_CHECKED_BYTES + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > MAX_CHECKED_BYTES:
                raise AssertionError(f"{shown!r} is larger than the {MAX_CHECKED_BYTES} bytes a check reads")
        return b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(fd)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def json_lookup(data: Any, path: str) -> Any:
    """Follow ``a.b[0].c`` (dotted keys and ``[index]``, nothing more); KeyError when absent."""
    pos = 0
    current = data
    path = path.strip()
    if path in ("", "$", "."):
        return current
    if path.startswith("$"):
        path = path[1:]
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m or m.end() == pos:
            raise KeyError(f"cannot read path {path!r} at character {pos + 1}")
        key, index = m.group(1), m.group(2)
        if key is not None:
            if not isinstance(current, Mapping) or key not in current:
                raise KeyError(f"no key {key!r} at {path[: m.start()] or '$'}")
            current = current[key]
        else:
            i = int(index)
            if not isinstance(current, list) or not -len(current) <= i < len(current):
                raise KeyError(f"no index [{i}] at {path[: m.start()] or '$'}")
            current = current[i]
        pos = m.end()
    return current


def _json_source(check: Mapping[str, Any], outputs: Mapping[str, Any], resolve: Any) -> Any:
    if "file" in check:
        target: Path = resolve(check["file"])
        try:
            text = read_checked_file(target, check["file"])
        except AssertionError as exc:
            raise AssertionError(f"json: {exc}") from None
        except OSError as exc:
            raise AssertionError(f"json: cannot read {check['file']!r}: {exc.strerror}") from None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise AssertionError(f"json: cannot read {check['file']!r} as JSON: {exc}") from None
    for key in ("data", "json"):
        if key in outputs and outputs[key] is not None:
            return outputs[key]
    if "stdout" in outputs:
        try:
            return json.loads(outputs["stdout"])
        except ValueError as exc:
            raise AssertionError(f"json: stdout is not JSON ({exc}): {_trim(outputs['stdout'])}") from None
    raise AssertionError("json: the step has no JSON output; name a file with 'file:'")


def check_expectations(
    expect: Mapping[str, Any],
    outputs: Mapping[str, Any],
    *,
    duration: float,
    resolve: Any,
    command_like: bool,
) -> list[str]:
    """Return one message per failed assertion (empty when all hold).

    ``resolve(rel) -> Path`` maps a workspace-relative path safely (raising ``StepError``).
    """
    failures: list[str] = []
    if command_like:
        wanted = expect.get("exit_code", 0)
        codes = _as_list(wanted)
        seen = outputs.get("exit_code")
        if seen not in codes:
            shown = codes[0] if len(codes) == 1 else codes
            failures.append(f"exit code {seen} (expected {shown})")
    if not expect:
        return failures  # most steps expect nothing beyond their exit code
    for stream in ("stdout", "stderr"):
        text = str(outputs.get(stream, ""))
        for needle in _as_list(expect.get(f"{stream}_contains", [])):
            if needle not in text:
                failures.append(f"{stream}_contains: {needle!r} not found in {stream}: {_trim(text)!r}")
        for needle in _as_list(expect.get(f"{stream}_not_contains", [])):
            if needle in text:
                failures.append(f"{stream}_not_contains: {needle!r} found in {stream}: {_trim(text)!r}")
    for stream in ("stdout", "stderr"):
        text = str(outputs.get(stream, ""))
        for pattern in _as_list(expect.get(f"{stream}_matches", [])):
            try:
                if not userregex.search(pattern, text, userregex.MULTILINE):
                    failures.append(f"{stream}_matches: /{pattern}/ does not match {stream}: {_trim(text)!r}")
            except (userregex.PatternError, userregex.PatternTimeout) as exc:
                failures.append(f"{stream}_matches: {exc}")
    for rel in _as_list(expect.get("file_exists", [])):
        try:
            if not _exists(resolve(rel, follow_last=False)):
                failures.append(f"file_exists: {rel!r} does not exist")
        except StepError as exc:
            failures.append(f"file_exists: {exc.message}")
    for rel in _as_list(expect.get("file_not_exists", [])):
        try:
            if _exists(resolve(rel, follow_last=False)):
                failures.append(f"file_not_exists: {rel!r} exists")
        except StepError as exc:
            failures.append(f"file_not_exists: {exc.message}")
    failures.extend(_file_checks(expect, resolve))
    for check in _as_list(expect.get("file_contains", [])):
        try:
            target = resolve(check["path"])
            content = read_checked_file(target, check["path"])
        except StepError as exc:
            failures.append(f"file_contains: {exc.message}")
            continue
        except AssertionError as exc:
            failures.append(f"file_contains: {exc}")
            continue
        except OSError as exc:
            failures.append(f"file_contains: cannot read {check['path']!r}: {exc.strerror}")
            continue
        if check["text"] not in content:
            failures.append(f"file_contains: {check['text']!r} not found in {check['path']!r}: {_trim(content)!r}")
    for check in _as_list(expect.get("json", [])):
        try:
            value = json_lookup(_json_source(check, outputs, resolve), check["path"])
        except AssertionError as exc:
            failures.append(str(exc))
            continue
        except KeyError as exc:
            failures.append(f"json: {check['path']}: {exc.args[0]}")
            continue
        if "equals" in check and not values_equal(value, check["equals"]):
            failures.append(_mismatch(f"json: {check['path']}", value, check["equals"]))
    limit = expect.get("max_duration_seconds")
    if limit is not None and duration > limit:
        failures.append(f"max_duration_seconds: took {duration:.2f} s (limit {limit:g} s)")
    for key, want in expect.get("output", {}).items():
        if key not in outputs:
            failures.append(f"output: the step has no output {key!r} (outputs: {', '.join(sorted(outputs))})")
        elif not values_equal(outputs[key], want):
            failures.append(_mismatch(f"output: {key}", outputs[key], want))
    return failures
