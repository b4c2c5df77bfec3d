"""The ``noop`` and ``command`` step types."""

from __future__ import annotations

import os
import shlex
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_rustchain.errors import StepError
from pytest_rustchain.paths import resolve_in_workspace
from pytest_rustchain.procs import run_process
from pytest_rustchain.steps.base import Outputs, StepContext, StepType, register

_ENV_SCHEMA = {
    "type": "object",
    "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
    "additionalProperties": {"type": ["string", "number", "boolean"]},
}

COMMAND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["command"],
    "properties": {
        "command": {"type": "string", "minLength": 1},
        "args": {"type": "array", "items": {"type": ["string", "number", "boolean"]}},
        "shell": {"type": "boolean"},
        "working_dir": {"type": "string"},
        "stdin": {"type": "string"},
        "env": _ENV_SCHEMA,
    },
}


def _noop(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
    return {"message": str(params.get("message", ""))}


def _word(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def build_argv(params: Mapping[str, Any]) -> list[str]:
    """The argv a ``command`` step runs: a shell line, a split command line, or program + args."""
    command: str = params["command"]
    args = [_word(a) for a in params.get("args", ())]
    if params.get("shell", False):
        line = command if not args else " ".join([command, *(shlex.quote(a) for a in args)])
        return ["/bin/sh", "-c", line]
    if args or "args" in params:
        head = [command]
    else:
        try:
            head = shlex.split(command)
        except ValueError as exc:
            raise StepError(
                f"cannot split the command line {command!r}: {exc}\nHINT: fix the quoting, or set shell: true"
            ) from None
    if not head:
        raise StepError("the command is empty")
    return [*head, *args]


def parse_output_file(text: str) -> dict[str, str]:
    """Parse ``name=value`` lines and ``name<<DELIM`` blocks (GitHub's ``GITHUB_OUTPUT`` syntax)."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            body: list[str] = []
            while i < len(lines) and lines[i] != delim:
                body.append(lines[i])
                i += 1
            i += 1
            out[name.strip()] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            if name.strip():
                out[name.strip()] = value
    return out


def _command(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
    argv = build_argv(params)
    cwd = ctx.cwd
    if params.get("working_dir"):
        cwd = resolve_in_workspace(ctx.workspace, params["working_dir"], cwd=ctx.cwd)
        if not cwd.is_dir():
            raise StepError(f"working_dir '{params['working_dir']}' is not a directory in the workspace")
    env = dict(ctx.env)
    env.update({k: _word(v) for k, v in params.get("env", {}).items()})
    fd, output_file = tempfile.mkstemp(prefix="mission-output-", dir=env.get("TMPDIR") or None)
    os.close(fd)
    env["MISSION_OUTPUT"] = output_file
    sandbox = ctx.extras.get("sandbox")
    run_argv = argv
    if sandbox is not None:
        run_argv = sandbox.wrap(
            argv,
            cwd=cwd,
            writable=ctx.extras["sandbox_writable"],
            network=ctx.extras["sandbox_network"],
            readable=ctx.extras.get("sandbox_readable", ()),
        )
    try:
        result = run_process(
            run_argv, cwd=cwd, env=env, timeout=ctx.timeout, stdin_text=params.get("stdin"), output_cap=ctx.output_cap
        )
        try:
            with open(output_file, encoding="utf-8", errors="replace") as fh:
                step_outputs = parse_output_file(fh.read(1_048_576))
        except OSError:
            step_outputs = {}
    finally:
        Path(output_file).unlink(missing_ok=True)
    outputs: Outputs = {
        "command": shlex.join(argv),
        "exit_code": result.exit_code,
        "stdout": result.stdout.text,
        "stderr": result.stderr.text,
        "stdout_bytes": result.stdout.total_bytes,
        "stderr_bytes": result.stderr.total_bytes,
        "outputs": step_outputs,
    }
    outputs.update({k: v for k, v in step_outputs.items() if k not in outputs})
    if result.timed_out:
        raise StepError(f"timed out after {round(ctx.timeout, 2):g} s", outputs=outputs)
    return outputs


register(
    StepType(
        name="noop",
        schema={"type": "object", "additionalProperties": False, "properties": {"message": {"type": "string"}}},
        run=_noop,
        family="other",
    )
)
register(StepType(name="command", schema=COMMAND_SCHEMA, run=_command, family="commands", command_like=True))
