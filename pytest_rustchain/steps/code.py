"""RustChain's ``compile_code``, ``run_tests``, ``lint_code`` and ``format_code``: one tool per language."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_rustchain.errors import StepError
from pytest_rustchain.paths import resolve_in_workspace
from pytest_rustchain.steps.base import Outputs, StepContext, StepType, register

__all__ = ["LANGUAGES", "TOOLS", "detect_language", "tool_argv"]

LANGUAGES = ("python", "rust", "go", "node")

#: The program each step type runs, per language, in the step's ``path``. ``{python}`` is the
#: interpreter running pytest, so Python tools come from the environment the tests use.
TOOLS: dict[str, dict[str, tuple[str, ...]]] = {
    "compile_code": {
        "python": ("{python}", "-m", "compileall", "-q", "."),
        "rust": ("cargo", "check"),
        "go": ("go", "build", "./..."),
        "node": ("npm", "run", "build"),
    },
    "run_tests": {
        "python": ("{python}", "-m", "pytest", "-q", "-p", "no:cacheprovider"),
        "rust": ("cargo", "test"),
        "go": ("go", "test", "./..."),
        "node": ("npm", "test"),
    },
    "lint_code": {
        "python": ("{python}", "-m", "ruff", "check", "."),
        "rust": ("cargo", "clippy", "--", "-D", "warnings"),
        "go": ("go", "vet", "./..."),
        "node": ("npm", "run", "lint"),
    },
    "format_code": {
        "python": ("{python}", "-m", "ruff", "format", "--check", "."),
        "rust": ("cargo", "fmt", "--check"),
        "go": ("gofmt", "-l", "."),
        "node": ("npx", "--no-install", "prettier", "--check", "."),
    },
}

# Files that tell a directory's language, in the order they are looked for.
_MARKERS = (
    ("Cargo.toml", "rust"),
    ("go.mod", "go"),
    ("package.json", "node"),
    ("pyproject.toml", "python"),
    ("setup.py", "python"),
    ("setup.cfg", "python"),
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "path": {"type": "string", "description": "directory to work in, relative to the workspace (default .)"},
        "language": {"enum": list(LANGUAGES), "description": "default: detected from the files in path"},
        "args": {"type": "array", "items": {"type": "string"}, "description": "extra arguments for the tool"},
    },
}


def detect_language(directory: Path) -> str | None:
    """The language of a directory from its marker files (``Cargo.toml``, ``go.mod`` ...), or None."""
    for name, language in _MARKERS:
        if (directory / name).is_file():
            return language
    if any(directory.glob("*.py")):
        return "python"
    return None


def tool_argv(step_type: str, language: str, args: list[str] | tuple[str, ...] = (), python: str = "") -> list[str]:
    interpreter = python or sys.executable
    return [interpreter if part == "{python}" else part for part in TOOLS[step_type][language]] + list(args)


def _runner(step_type: str) -> Any:
    def run(params: Mapping[str, Any], ctx: StepContext) -> Outputs:
        # Process machinery loads when a tool first runs: the guard reads TOOLS for every step.
        from pytest_rustchain.steps._exec import run_argv

        rel = params.get("path", ".")
        directory = resolve_in_workspace(ctx.workspace, rel, cwd=ctx.cwd)
        if not directory.is_dir():
            raise StepError(f"path '{rel}' is not a directory in the workspace")
        language = params.get("language") or detect_language(directory)
        if language is None:
            raise StepError(
                f"cannot tell the language of '{rel}' (no Cargo.toml, go.mod, package.json, pyproject.toml or *.py)\n"
                f"HINT: set language: {' | '.join(LANGUAGES)}"
            )
        argv = tool_argv(step_type, language, params.get("args", ()), ctx.extras.get("python", ""))
        outputs = run_argv(argv, ctx, working_dir=rel)
        outputs["language"] = language
        unformatted = outputs["stdout"].strip() if outputs.get("exit_code") == 0 else ""
        if step_type == "format_code" and language == "go" and unformatted:
            # gofmt -l lists unformatted files and still exits 0.
            raise StepError(f"files need gofmt:\n{unformatted}", outputs=outputs)
        return outputs

    return run


for _name, _family in (
    ("compile_code", "compilation"),
    ("run_tests", "tests"),
    ("lint_code", "lint"),
    ("format_code", "format"),
):
    register(
        StepType(
            name=_name, schema=SCHEMA, run=_runner(_name), family=_family, command_like=True, paths={"path": "read"}
        )
    )
