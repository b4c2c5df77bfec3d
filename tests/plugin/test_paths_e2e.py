"""End-to-end path containment (HOSTILE.md D): file steps never touch anything outside the workspace."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest


def _digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _steps(canary: Path) -> dict[str, list[dict[str, object]]]:
    c = str(canary)
    return {
        "dotdot": [{"id": "w", "step_type": "create_file", "parameters": {"path": "../escape.txt", "content": "x"}}],
        "deep-dotdot": [
            {"id": "w", "step_type": "create_file", "parameters": {"path": "a/../../x.txt", "content": "x"}}
        ],
        "absolute": [{"id": "w", "step_type": "create_file", "parameters": {"path": f"{c}/keep.txt", "content": "x"}}],
        "home": [{"id": "r", "step_type": "read_file", "parameters": {"path": "~/.ssh/id_rsa"}}],
        "etc-passwd": [{"id": "r", "step_type": "read_file", "parameters": {"path": "/etc/passwd"}}],
        "symlink-dir": [
            {"id": "link", "step_type": "command", "parameters": {"command": "ln", "args": ["-s", c, "link"]}},
            {"id": "w", "step_type": "create_file", "parameters": {"path": "link/keep.txt", "content": "pwned"}},
        ],
        "symlink-edit": [
            {
                "id": "link",
                "step_type": "command",
                "parameters": {"command": "ln", "args": ["-s", f"{c}/keep.txt", "k"]},
            },
            {"id": "e", "step_type": "edit_file", "parameters": {"path": "k", "append": "pwned"}},
        ],
        "symlink-delete": [
            {"id": "link", "step_type": "command", "parameters": {"command": "ln", "args": ["-s", c, "d"]}},
            {"id": "del", "step_type": "delete_file", "parameters": {"path": "d/keep.txt"}},
        ],
        "proc-environ": [{"id": "r", "step_type": "read_file", "parameters": {"path": "/proc/self/environ"}}],
        "fifo": [
            {"id": "mk", "step_type": "command", "parameters": {"command": "mkfifo", "args": ["pipe"]}},
            {"id": "r", "step_type": "read_file", "parameters": {"path": "pipe"}},
        ],
        "delete-root": [{"id": "d", "step_type": "delete_file", "parameters": {"path": ".", "recursive": True}}],
        "delete-empty": [{"id": "d", "step_type": "delete_file", "parameters": {"path": ""}}],
        "git-config": [
            {"id": "init", "step_type": "command", "parameters": {"command": "git", "args": ["init", "-q"]}},
            {"id": "r", "step_type": "read_file", "parameters": {"path": ".git/config"}},
        ],
        "git-hook": [
            {"id": "init", "step_type": "command", "parameters": {"command": "git", "args": ["init", "-q"]}},
            {
                "id": "w",
                "step_type": "create_file",
                "parameters": {"path": ".git/hooks/pre-commit", "content": "#!/bin/sh\n", "mode": "0755"},
            },
        ],
        "nul": [{"id": "w", "step_type": "create_file", "parameters": {"path": "a\u0000b", "content": "x"}}],
        "long-name": [{"id": "w", "step_type": "create_file", "parameters": {"path": "n" * 4096, "content": "x"}}],
        "copy-out": [
            {"id": "w", "step_type": "create_file", "parameters": {"path": "a.txt", "content": "x"}},
            {"id": "c", "step_type": "copy_file", "parameters": {"source": "a.txt", "destination": f"{c}/b.txt"}},
        ],
        "move-in": [
            {"id": "m", "step_type": "move_file", "parameters": {"source": f"{c}/keep.txt", "destination": "k"}}
        ],
    }


def test_every_path_escape_fails_cleanly_and_canary_survives(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """Each escape attempt fails its mission with a clear message; nothing outside changes."""
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep.txt").write_text("precious\n")
    before = _digest(canary)
    cases = _steps(canary)
    for name, steps in cases.items():
        doc = {"name": name, "config": {"fail_fast": True}, "steps": steps}
        pytester.path.joinpath(f"{name}.mission.yaml").write_text(json.dumps(doc))
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert _digest(canary) == before
    assert "Traceback" not in out
    for name in cases:
        assert f"{name}.mission.yaml::{name} FAILED" in out, name
    result.assert_outcomes(failed=len(cases) * 2)
    assert "path escapes the workspace" in out
    assert "BLOCKED step" in out
