"""Running one program for a step: environment, sandbox, ``$MISSION_OUTPUT`` and the outputs it gives."""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_rustchain.errors import StepError
from pytest_rustchain.paths import resolve_in_workspace
from pytest_rustchain.procs import ConfinementError, ProcessResult, explain_start_failure, nondumpable, run_process
from pytest_rustchain.steps._output import OutputFile, one_off
from pytest_rustchain.steps.base import Outputs, StepContext

if TYPE_CHECKING:
    from pytest_rustchain.sandbox import Sandbox

__all__ = ["parse_output_file", "run_argv"]


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


def _read_output_file(path: str) -> dict[str, str]:
    """What the step wrote to ``$MISSION_OUTPUT``; most steps write nothing, and an empty file is not opened."""
    try:
        if os.stat(path).st_size == 0:  # noqa: PTH116 - one stat per command, on the hot path
            return {}
        with open(path, encoding="utf-8", errors="replace") as fh:
            return parse_output_file(fh.read(1_048_576))
    except OSError:
        return {}


@contextlib.contextmanager
def _confinement_errors(program: str) -> Iterator[None]:
    try:
        yield
    except ConfinementError as exc:
        message = f"cannot confine '{program}', so it was not run: {exc}\nHINT: run with --mission-sandbox=bwrap"
        raise StepError(message) from None


def run_argv(
    argv: Sequence[str],
    ctx: StepContext,
    *,
    working_dir: str | None = None,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> Outputs:
    """Run ``argv`` in the workspace (or ``working_dir`` inside it) and return the command outputs.

    Raises ``StepError`` when the program cannot start or the step times out; a non-zero exit code
    is an output, judged by the step's ``expect`` (default: 0).
    """
    cwd = ctx.cwd
    if working_dir:
        cwd = resolve_in_workspace(ctx.workspace, working_dir, cwd=ctx.cwd)
        if not cwd.is_dir():
            raise StepError(f"working_dir '{working_dir}' is not a directory in the workspace")
    full_env = dict(ctx.env)
    full_env.update(env or {})
    holder = ctx.extras.get("mission_output")
    directory = full_env.get("TMPDIR") or None
    with holder.use(directory) if isinstance(holder, OutputFile) else one_off(directory) as output_file:
        full_env["MISSION_OUTPUT"] = output_file
        return _run_with_output(argv, ctx, cwd, full_env, stdin, output_file)


def _run_with_output(
    argv: Sequence[str], ctx: StepContext, cwd: Path, full_env: dict[str, str], stdin: str | None, output_file: str
) -> Outputs:
    sandbox = ctx.extras.get("sandbox")
    if sandbox is None:
        # Started here, unconfined (--mission-sandbox=none): the sandbox machinery is not loaded.
        with nondumpable():
            result = run_process(
                argv, cwd=cwd, env=full_env, timeout=ctx.timeout, stdin_text=stdin, output_cap=ctx.output_cap
            )
    else:
        result = _run_sandboxed(sandbox, argv, ctx, cwd, full_env, stdin)
    step_outputs = _read_output_file(output_file)
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
    if (
        sandbox is not None
        and not ctx.extras["sandbox_network"]
        and result.exit_code != 0
        and _network_failure(result.stderr.text + result.stdout.text)
    ):
        outputs["hint"] = (
            f"the {sandbox.layer} sandbox gives command steps no network; "
            "name the hosts this mission needs in mission_allow_hosts"
        )
    if result.timed_out:
        raise StepError(f"timed out after {round(ctx.timeout, 2):g} s", outputs=outputs)
    return outputs


def _run_sandboxed(
    sandbox: Sandbox, argv: Sequence[str], ctx: StepContext, cwd: Path, full_env: dict[str, str], stdin: str | None
) -> ProcessResult:
    with contextlib.ExitStack() as stack, _confinement_errors(argv[0]):
        if not sandbox.precheck(argv[0], cwd, full_env.get("PATH")):
            missing = FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
            raise explain_start_failure(missing, argv[0], cwd, full_env)
        launch = stack.enter_context(
            sandbox.launch(
                argv,
                cwd=cwd,
                writable=ctx.extras["sandbox_writable"],
                network=ctx.extras["sandbox_network"],
                readable=ctx.extras.get("sandbox_readable", ()),
                read_only=ctx.extras.get("sandbox_read_only", ()),
                path=full_env.get("PATH"),
                tcp_ports=ctx.extras.get("sandbox_tcp_ports", ()),
            )
        )
        if sandbox.layer == "landlock":
            stack.enter_context(nondumpable())
        return run_process(
            launch.argv,
            cwd=cwd,
            env=full_env,
            timeout=ctx.timeout,
            stdin_text=stdin,
            output_cap=ctx.output_cap,
            start_in=launch.start_in,
            pass_fds=launch.pass_fds,
        )


def _network_failure(text: str) -> bool:
    from pytest_rustchain.sandbox import NETWORK_FAILURE  # loaded already: a sandbox ran the step

    return NETWORK_FAILURE.search(text) is not None
