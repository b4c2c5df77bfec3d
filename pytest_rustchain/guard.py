"""The safety check in front of every step: a step's findings under the effective policy."""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pytest_rustchain.levels import Policy
from pytest_rustchain.model import Step
from pytest_rustchain.safety.findings import Finding
from pytest_rustchain.safety.patterns import LazyPattern
from pytest_rustchain.safety.policy import Verdict, explain
from pytest_rustchain.safety.policy import verdict as decide
from pytest_rustchain.steps.base import registry
from pytest_rustchain.steps.code import TOOLS, tool_argv

# The analyser (pytest_rustchain.safety.rules, with the shell parser) and the command and tool step
# modules load at the first step that has a command, a path, a URL or an environment to judge.

__all__ = ["Guard", "StepVerdict"]

# Used by the dry run (judge_raw) and virtualenv checks only: compiled when first used.
_TEMPLATE = LazyPattern(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_LOOKUP = LazyPattern(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}")


@dataclass(frozen=True, slots=True, kw_only=True)
class StepVerdict:
    verdict: Verdict
    step_id: str
    location: str
    step_key: str | None = None

    @property
    def explanation(self) -> str:
        """The text a blocked step shows (written when asked for: most steps are never blocked)."""
        return explain(self.verdict, step_id=self.step_id, location=self.location, step_key=self.step_key)

    @property
    def blocked(self) -> bool:
        return self.verdict.blocked

    @property
    def score(self) -> int:
        return self.verdict.score

    def findings_dicts(self) -> list[dict[str, Any]]:
        return [
            {"rule": f.rule_id, "severity": int(f.severity), "category": f.category, "message": f.message,
             "evidence": f.evidence}
            for f in self.verdict.findings
        ]  # fmt: skip


def _known_value(expr: str, known: Mapping[str, Any]) -> str | None:
    """The value of ``{{ a.b }}`` when it is known before the run (``python``, ``vars.x``), else None."""
    match = _LOOKUP.fullmatch(expr)
    if match is None:
        return None
    value: Any = known
    for name in match.group(1).split("."):
        if not isinstance(value, Mapping) or name not in value:
            return None
        value = value[name]
    if isinstance(value, (Mapping, list)) or value is None:
        return None
    return str(value)


def _substitute(value: Any, known: Mapping[str, Any], unknown: Any, *, shell: bool = False) -> Any:
    """Template parts with a value known before the run get it; the others get ``unknown()``."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            found = _known_value(m.group(0), known)
            if found is None:
                return str(unknown())
            return shlex.quote(found) if shell else found

        return _TEMPLATE.sub(sub, value)
    if isinstance(value, Mapping):
        return {
            k: _substitute(v, known, unknown, shell=shell or (k == "command" and bool(value.get("shell"))))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_substitute(v, known, unknown) for v in value]
    return value


class _VenvsOnDisk:
    """Whether a workspace directory is a virtualenv, by what it is: a real directory inside the workspace
    holding a ``pyvenv.cfg`` with a ``home`` key (as ``python -m venv``, virtualenv and uv write it) next
    to a ``bin/`` directory. A folder named ``.venv`` without one is just a folder."""

    __slots__ = ("_answers", "_root")

    def __init__(self, workspace: Path) -> None:
        self._root = workspace
        self._answers: dict[str, bool] = {}

    def __call__(self, rel: str) -> bool:
        answer = self._answers.get(rel)
        if answer is None:
            answer = self._answers[rel] = self._check(rel)
        return answer

    def _check(self, rel: str) -> bool:
        try:
            root = self._root.resolve(strict=True)
            real = (root / rel).resolve(strict=True)
        except (OSError, RuntimeError):
            return False
        if not real.is_relative_to(root):
            return False  # a link to a virtualenv elsewhere: what is there is not the mission's to vouch for
        cfg, bin_dir = real / "pyvenv.cfg", real / "bin"
        try:
            if cfg.is_symlink() or not cfg.is_file() or bin_dir.is_symlink() or not bin_dir.is_dir():
                return False
            with cfg.open("rb") as handle:
                head = handle.read(_PYVENV_CFG_LIMIT).decode("utf-8", "replace")
        except OSError:
            return False
        return _PYVENV_HOME.search(head) is not None


@functools.lru_cache(maxsize=16)
def _nothing_found(policy: Policy) -> Verdict:
    """The verdict on a step without findings (it does not depend on the step)."""
    return decide((), policy)


_PYVENV_CFG_LIMIT = 64 * 1024
_PYVENV_HOME = LazyPattern(r"^\s*home\s*=", re.MULTILINE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Guard:
    """Judges steps for one mission: its policy, workspace and the scripts earlier steps wrote."""

    policy: Policy
    workspace: Path
    workspace_kind: str = "tmp"
    mission_path: str = ""
    written_scripts: dict[str, str] = field(default_factory=dict)
    links: dict[str, str | None] = field(default_factory=dict)
    """Symbolic links earlier steps' commands made: later paths through them are judged by the target."""
    made_venvs: set[str] = field(default_factory=set)
    """Virtualenvs earlier steps make, as the dry run predicts them; at run time the disk decides."""

    def step_key(self, step: Step) -> str:
        return f"{self.mission_path}::{step.id}"

    def findings(
        self,
        step: Step,
        params: Mapping[str, Any],
        *,
        env: Mapping[str, str] | None = None,
        venvs: Callable[[str], bool] | None = None,
        made_venvs: set[str] | None = None,
    ) -> tuple[Finding, ...]:
        kind: Literal["tmp", "project"] = "project" if self.workspace_kind == "project" else "tmp"
        found: list[Finding] = []
        if step.env:
            from pytest_rustchain.safety.rules import analyse_env

            found += analyse_env(dict(step.env))
        if step.step_type == "command":
            from pytest_rustchain.safety.rules import analyse_env

            step_env = {k: str(v) for k, v in dict(params.get("env") or {}).items()}
            # The environment the program gets: the mission's and step's, then the parameter's own.
            final_env = {**dict(step.env), **dict(env or {}), **step_env}
            found += self._command_findings(params, kind, final_env, venvs, made_venvs)
            if step_env:
                found += analyse_env(step_env)
        elif step.step_type in TOOLS and isinstance(params.get("language"), str):
            from pytest_rustchain.safety.rules import analyse_command

            # The tool is known only with a language; without one it is chosen from the files at run
            # time, and the tools themselves run the project's code (see "Honest limits").
            found += analyse_command(
                tool_argv(step.step_type, params["language"], params.get("args", ())),
                shell=False,
                workspace=self.workspace,
                cwd=params.get("path"),
                workspace_kind=kind,
                venvs=venvs,
            )
        elif step.step_type == "http":
            url = params.get("url")
            if isinstance(url, str):
                from pytest_rustchain.safety.rules import analyse_url

                found += analyse_url(url, self.policy.allow_hosts)
        if step.template_path:
            from pytest_rustchain.safety.catalog import RULES

            # The file was read at collection, before any step ran: the dry run shows it too.
            found.append(RULES["RC-FS-012"].finding(f"template: {step.template_path}", detail=step.template_path))
        spec = registry().get(step.step_type)
        for key, use in spec.paths.items() if spec is not None else ():
            value = params.get(key)
            if use == "cwd" or not isinstance(value, str) or not value:
                continue  # a working directory is judged with the command that runs there
            # Moving a path away deletes it, whole trees too.
            from pytest_rustchain.safety.rules import analyse_path

            op: Literal["read", "write", "delete"] = "delete" if use == "move" else use
            recursive = bool(params.get("recursive")) or use == "move"
            found += analyse_path(value, op=op, workspace=self.workspace, recursive=recursive)
        return tuple(found)

    def _command_findings(
        self,
        params: Mapping[str, Any],
        kind: Literal["tmp", "project"],
        env: Mapping[str, str],
        venvs: Callable[[str], bool] | None,
        made_venvs: set[str] | None,
    ) -> list[Finding]:
        """Findings for exactly the argv (and stdin) ``build_argv`` gives the runner."""
        from pytest_rustchain.safety.rules import analyse_command
        from pytest_rustchain.steps.command import build_argv

        try:
            argv: list[str] | None = build_argv(params)
        except Exception:
            argv = None
        common: dict[str, Any] = {
            "workspace": self.workspace,
            "cwd": params.get("working_dir"),
            "workspace_kind": kind,
            "written_scripts": self.written_scripts,
            "links": self.links,
            "env": env,
            "venvs": venvs,
            "made_venvs": made_venvs,
        }
        if argv is None:
            # Cannot be split: judged as the shell would read it (the run fails before starting).
            return list(analyse_command(str(params.get("command", "")), shell=True, **common))  # noqa: S604 - analysed, not run
        shell = bool(params.get("shell"))
        # With shell: true the argv is /bin/sh -c LINE, LINE with args already quoted as they run.
        found = list(analyse_command(argv[2] if shell else argv, shell=shell, **common))
        stdin = params.get("stdin")
        if isinstance(stdin, str) and stdin:
            # What a shell or an interpreter reads on stdin is a script: judged as a here-document,
            # the way the analyser judges `sh <<EOF` written in a command line.
            delimiter = "RUSTCHAIN_STDIN"
            while delimiter in stdin:
                delimiter += "_"
            body = stdin if stdin.endswith("\n") else stdin + "\n"
            line = f"{shlex.join(argv)} <<'{delimiter}'\n{body}{delimiter}\n"
            found += analyse_command(line, shell=True, **common)  # noqa: S604 - analysed, not run
        return found

    def judge(self, step: Step, params: Mapping[str, Any], *, env: Mapping[str, str] | None = None) -> StepVerdict:
        """The run-time verdict on the rendered parameters; this one decides.

        Called just before the step runs: scripts written by earlier steps are judged as they are on
        disk now, not as they were written (a later step may have changed them).
        """
        self.refresh_written()
        found = self.findings(step, params, env=env, venvs=_VenvsOnDisk(self.workspace))
        if not found:  # most steps (and every noop): the policy's verdict on nothing, made once
            return self._explain(step, _nothing_found(self.policy))
        return self._explain(step, decide(found, self.policy, self.step_key(step)))

    def refresh_written(self, limit: int = 256 * 1024) -> None:
        """Re-read the remembered scripts from the workspace; a file that is gone is forgotten."""
        for rel in list(self.written_scripts):
            target = Path(rel) if rel.startswith("/") else self.workspace / rel
            try:
                if target.is_file() and target.stat().st_size <= limit:
                    self.written_scripts[rel] = target.read_text("utf-8", "replace")
                    continue
            except OSError:
                pass
            del self.written_scripts[rel]

    def judge_raw(self, step: Step, known: Mapping[str, Any] | None = None) -> StepVerdict:
        """The collection-time verdict on the raw parameters.

        Template parts whose value is known before the run (``{{ python }}``, ``{{ vars.x }}`` in
        ``known``) are filled in; the others count as unknown and may raise the score, but a step is
        blocked only when it would be blocked with them replaced by plain words.
        """
        known = known or {}
        counter = iter(range(1, 1_000_000))
        params = step.parameters if not step.render else _substitute(
            step.parameters, known, lambda: "${TPL_" + str(next(counter)) + "}"
        )  # fmt: skip
        # A virtualenv counts when an earlier step makes one there, or (a project workspace, which
        # exists before the run) when it is on disk already.
        predicted = self.made_venvs.copy()
        on_disk = _VenvsOnDisk(self.workspace)

        def venvs(rel: str) -> bool:
            return rel in predicted or on_disk(rel)

        unknown = decide(
            self.findings(step, params, venvs=venvs, made_venvs=self.made_venvs),
            self.policy,
            self.step_key(step),
        )
        if not unknown.blocked or not step.render:
            return self._explain(step, unknown)
        literal = decide(
            self.findings(step, _substitute(step.parameters, known, lambda: "tpl"), venvs=venvs),
            self.policy,
            self.step_key(step),
        )
        if literal.blocked:
            return self._explain(step, unknown)
        return self._explain(step, replace(unknown, blocked=False))

    def _explain(self, step: Step, v: Verdict) -> StepVerdict:
        location = f"{step.source or self.mission_path}:{step.line}"
        return StepVerdict(verdict=v, step_id=step.id, location=location, step_key=self.step_key(step))

    def remember_written(self, rel: str, content: str) -> None:
        """A file an earlier step wrote; running it later is judged as its content."""
        self.written_scripts[rel] = content
