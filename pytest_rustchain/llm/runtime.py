"""What the ``llm``, ``http`` and ``chain`` steps get from the runner for one mission item.

The runner builds one :class:`LLMRuntime` per mission run and puts it in ``StepContext.extras`` under
:data:`RUNTIME_KEY`. It carries the :class:`~pytest_rustchain.llm.session.LLMSession` (record and
replay, calls counted), the conversations shared between steps, the mission repeat, and ``run_step``:
the runner's way to run another step type (a validation command, ``create_file`` for
``output_file``, ``run_tests``) through the same safety check, containment and timeout as a step
written by hand. The agent loop uses ``run_step`` for every tool call in the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from pytest_rustchain.errors import StepError
from pytest_rustchain.llm.cassette import CassetteError, Normaliser, Recorder, cassette_path
from pytest_rustchain.llm.config import LLMOptions
from pytest_rustchain.llm.session import LLMSession, summarise_calls
from pytest_rustchain.llm.transport import HostPolicy
from pytest_rustchain.masking import Masker

__all__ = [
    "RUNTIME_KEY",
    "LLMOptions",
    "LLMRuntime",
    "RunStep",
    "build_runtime",
    "finish_runtime",
    "merge_llm",
    "runtime_of",
]

RUNTIME_KEY: Final = "llm_runtime"


class RunStep(Protocol):
    """``run_step(step_type, params, level=None)`` -> outputs; raises ``StepError`` when it fails and
    ``UnsafeStepError`` (with the risk score and rule ids) when the safety policy blocks it. Parameters
    are final: never template-rendered. ``level`` narrows the mission's policy for this call."""

    def __call__(
        self, step_type: str, params: Mapping[str, Any], /, *, level: str | None = None
    ) -> Mapping[str, Any]: ...


@dataclass(slots=True, kw_only=True)
class LLMRuntime:
    session: LLMSession
    run_step: RunStep
    masker: Masker = field(default_factory=Masker)
    """Masks what goes back to a model (validation errors) as every other sink does."""
    outputs_of: Callable[[str], Mapping[str, Any] | None] = lambda _step_id: None
    """Outputs of an earlier step that passed (None otherwise): how a nested chain gathers its steps."""
    repeat: int = 0
    compat: bool = False
    conversations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """conversation name -> message history (without the system message)."""


def runtime_of(extras: Mapping[str, Any]) -> LLMRuntime:
    runtime = extras.get(RUNTIME_KEY)
    if not isinstance(runtime, LLMRuntime):
        raise StepError("this step needs the mission runner's LLM runtime, which is missing here")
    return runtime


def build_runtime(
    options: LLMOptions,
    *,
    mission_path: Path,
    mission_stem: str,
    rootdir: Path,
    masker: Masker,
    volatile: Mapping[str, str],
    allow_hosts: tuple[str, ...],
    environ: Mapping[str, str],
    run_step: RunStep,
    outputs_of: Callable[[str], Mapping[str, Any] | None],
    compat: bool = False,
    repeat: int = 0,
    only_steps: frozenset[str] | None = None,
) -> LLMRuntime:
    """One mission run's runtime: its cassette, session and the runner's callbacks; ``only_steps`` limits
    the cassette's bookkeeping (unused, pruned, rewritten) to those steps' recordings."""
    directory = options.cassette_dir or (mission_path.parent / "cassettes")
    path = cassette_path(directory, mission_stem)
    try:
        shown = str(path.relative_to(rootdir))
    except ValueError:
        shown = str(path)
    recorder = options.recorders.get(path) if repeat > 0 else None
    if recorder is None:
        recorder = Recorder(
            path=path,
            mode=options.record_mode,
            masker=masker,
            normaliser=Normaliser.of(volatile),
            display_path=shown,
            prune=options.prune,
            steps=only_steps,
        )
        options.recorders[path] = recorder
    else:
        # A later repeat: its own workspace and timestamp are what its requests must not depend on.
        recorder.normaliser = Normaliser.of(volatile)
    session = LLMSession(
        settings=options.settings, recorder=recorder, policy=HostPolicy(allow_hosts=allow_hosts), environ=environ
    )
    return LLMRuntime(
        session=session, run_step=run_step, masker=masker, outputs_of=outputs_of, repeat=repeat, compat=compat
    )


def finish_runtime(runtime: LLMRuntime) -> dict[str, Any]:
    """Save the cassette and summarise the calls: plain data that crosses xdist to the reports."""
    session = runtime.session
    recorder = session.recorder
    calls = [c.to_dict() for c in session.calls]
    if not calls and not recorder.prune:
        return {}
    out: dict[str, Any] = {**summarise_calls(calls), "calls_list": calls, "cassette": recorder.display_path}
    out["record_mode"] = recorder.mode
    try:
        out["cassette_written"] = recorder.save()
    except CassetteError as exc:
        out["cassette_error"] = str(exc)
    out["unused_recordings"] = len(recorder.unused()) if recorder.mode != "all" else 0
    return out


def merge_llm(parts: list[Mapping[str, Any]]) -> dict[str, Any]:
    """One summary for a mission and its next missions."""
    present = [p for p in parts if p]
    if not present:
        return {}
    if len(present) == 1:
        return dict(present[0])
    calls = [c for p in present for c in p.get("calls_list", ())]
    out = {**summarise_calls(calls), "calls_list": calls}
    errors = [str(p["cassette_error"]) for p in present if p.get("cassette_error")]
    if errors:
        out["cassette_error"] = "\n".join(errors)
    out["unused_recordings"] = sum(int(p.get("unused_recordings") or 0) for p in present)
    return out
