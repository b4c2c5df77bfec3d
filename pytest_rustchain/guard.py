"""The safety check in front of every step: a step's findings under the effective policy."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pytest_rustchain.model import Step
from pytest_rustchain.safety import Finding, Policy, Verdict, analyse_command, analyse_env, analyse_path, explain
from pytest_rustchain.safety import verdict as decide
from pytest_rustchain.safety.rules import analyse_url
from pytest_rustchain.steps.command import build_argv

__all__ = ["Guard", "StepVerdict"]

_TEMPLATE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)

# Which parameters of a file step are paths, and what the step does with each.
_PATH_OPS: dict[str, tuple[tuple[str, str], ...]] = {
    "create_file": (("path", "write"),),
    "edit_file": (("path", "write"),),
    "delete_file": (("path", "delete"),),
    "copy_file": (("source", "read"), ("destination", "write")),
    "move_file": (("source", "delete"), ("destination", "write")),
    "read_file": (("path", "read"),),
    "list_directory": (("path", "read"),),
    "parse_json": (("path", "read"),),
    "parse_yaml": (("path", "read"),),
    "validate_schema": (("path", "read"), ("schema_path", "read")),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class StepVerdict:
    verdict: Verdict
    explanation: str

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


def _with_unknowns(value: Any, counter: list[int]) -> Any:
    """Template parts become unset variables, so the analyser treats them as unknown."""
    if isinstance(value, str):

        def sub(_: re.Match[str]) -> str:
            counter[0] += 1
            return "${TPL_" + str(counter[0]) + "}"

        return _TEMPLATE.sub(sub, value)
    if isinstance(value, Mapping):
        return {k: _with_unknowns(v, counter) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_unknowns(v, counter) for v in value]
    return value


def _with_literals(value: Any) -> Any:
    if isinstance(value, str):
        return _TEMPLATE.sub("tpl", value)
    if isinstance(value, Mapping):
        return {k: _with_literals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_literals(v) for v in value]
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Guard:
    """Judges steps for one mission: its policy, workspace and the scripts earlier steps wrote."""

    policy: Policy
    workspace: Path
    workspace_kind: str = "tmp"
    mission_path: str = ""
    written_scripts: dict[str, str] = field(default_factory=dict)

    def step_key(self, step: Step) -> str:
        return f"{self.mission_path}::{step.id}"

    def findings(
        self, step: Step, params: Mapping[str, Any], *, env: Mapping[str, str] | None = None
    ) -> tuple[Finding, ...]:
        kind: Literal["tmp", "project"] = "project" if self.workspace_kind == "project" else "tmp"
        found: list[Finding] = list(analyse_env(dict(step.env)))
        if step.step_type == "command":
            try:
                argv = build_argv(params)
            except Exception:
                argv = None
            command: str | list[str] = argv if argv is not None else ""
            shell = bool(params.get("shell")) or argv is None
            if shell:
                command = " ".join([params.get("command", ""), *(str(a) for a in params.get("args", ()))])
            found += analyse_command(
                command,
                shell=shell,
                workspace=self.workspace,
                cwd=params.get("working_dir"),
                workspace_kind=kind,
                written_scripts=self.written_scripts,
                env={**dict(step.env), **dict(env or {})},
            )
            found += analyse_env({k: str(v) for k, v in dict(params.get("env", {})).items()})
        elif step.step_type == "http":
            url = params.get("url")
            if isinstance(url, str):
                found += analyse_url(url, self.policy.allow_hosts)
        for key, op in _PATH_OPS.get(step.step_type, ()):
            value = params.get(key)
            if isinstance(value, str) and value:
                recursive = bool(params.get("recursive")) or (op == "delete" and step.step_type == "move_file")
                found += analyse_path(value, op=op, workspace=self.workspace, recursive=recursive)  # type: ignore[arg-type]
        return tuple(found)

    def judge(self, step: Step, params: Mapping[str, Any], *, env: Mapping[str, str] | None = None) -> StepVerdict:
        """The run-time verdict on the rendered parameters; this one decides."""
        return self._explain(step, decide(self.findings(step, params, env=env), self.policy, self.step_key(step)))

    def judge_raw(self, step: Step) -> StepVerdict:
        """The collection-time verdict on the raw parameters.

        Template parts count as unknown and may raise the score, but a step is blocked only when it
        would be blocked with its template parts replaced by plain words.
        """
        params = step.parameters
        unknown = decide(self.findings(step, _with_unknowns(params, [0])), self.policy, self.step_key(step))
        if not unknown.blocked:
            return self._explain(step, unknown)
        literal = decide(self.findings(step, _with_literals(params)), self.policy, self.step_key(step))
        if literal.blocked:
            return self._explain(step, unknown)
        shown = Verdict(
            blocked=False,
            score=unknown.score,
            level=unknown.level,
            threshold=unknown.threshold,
            findings=unknown.findings,
            waived=unknown.waived,
        )
        return self._explain(step, shown)

    def _explain(self, step: Step, v: Verdict) -> StepVerdict:
        location = f"{step.source or self.mission_path}:{step.line}"
        return StepVerdict(
            verdict=v, explanation=explain(v, step_id=step.id, location=location, step_key=self.step_key(step))
        )

    def remember_written(self, rel: str, content: str) -> None:
        """A file an earlier step wrote; running it later is judged as its content."""
        self.written_scripts[rel] = content
