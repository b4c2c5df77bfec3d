"""A mission's dependency graph as report data, Mermaid and Graphviz DOT text."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_rustchain.model import Mission

__all__ = [
    "MARKDOWN_GRAPHS",
    "MARKDOWN_GRAPH_STEPS",
    "Edge",
    "add_dependencies",
    "dot",
    "edges",
    "file_stem",
    "markdown_graphs",
    "mermaid",
    "write_graphs",
]

MARKDOWN_GRAPHS = 10
"""Failed missions that get a Mermaid graph in the Markdown summary (GitHub renders each one)."""
MARKDOWN_GRAPH_STEPS = 200
"""Larger missions get no Markdown graph: GitHub refuses big diagrams, and nobody reads them there."""

# Fill colours by step status, shared by the Mermaid and DOT forms (the HTML page has its own CSS).
_COLOURS = {
    "passed": ("#d7f5dd", "#1a7f37"),
    "failed": ("#ffd8d3", "#cf222e"),
    "blocked": ("#ffd8d3", "#8b0000"),
    "tolerated": ("#fff1c2", "#9a6700"),
    "skipped": ("#eaeef2", "#6e7781"),
}
_UNKNOWN = ("#ffffff", "#57606a")
_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class Edge:
    """``source`` runs before ``target``; ``inferred`` when no ``depends_on`` says so (``why`` tells)."""

    source: str
    target: str
    inferred: bool = False
    why: str = ""


def _walk(mission: Mission, prefix: str = "") -> Iterator[tuple[str, Mission]]:
    """The mission and its ``next_missions``, with the id prefix their steps are reported under."""
    yield prefix, mission
    for follower in mission.next_missions:
        yield from _walk(follower, f"{prefix}next/{follower.stem}/")


def add_dependencies(data: dict[str, Any], mission: Mission) -> dict[str, Any]:
    """Give each step of a result's data (``mission_result_to_dict``) its declared ``depends_on`` and
    its ``inferred`` dependencies (``[{"step": id, "why": text}]``), ids as the report shows them."""
    found: dict[str, tuple[list[str], list[dict[str, str]]]] = {}
    for prefix, part in _walk(mission):
        for step in part.steps:
            declared = [prefix + dep for dep in step.depends_on]
            inferred = [{"step": prefix + dep, "why": why} for dep, why in step.inferred if dep not in step.depends_on]
            found[prefix + step.id] = (declared, inferred)
    for step_data in data.get("steps", ()):
        declared, inferred = found.get(str(step_data.get("id", "")), ([], []))
        # An empty dependency list is the shared empty tuple (a JSON array all the same): reports keep
        # every step's data until the run ends, and empty lists would be scanned by every collection.
        step_data["depends_on"] = declared or ()
        step_data["inferred"] = inferred or ()
    return data


def edges(mission: Mapping[str, Any]) -> list[Edge]:
    """One edge per dependency of a report mission entry, in step order; edges to steps that are not
    in the report (none should be) are left out rather than drawn to nowhere."""
    steps: Sequence[Mapping[str, Any]] = mission.get("steps", ())
    ids = {str(s.get("id", "")) for s in steps}
    out: list[Edge] = []
    for step in steps:
        target = str(step.get("id", ""))
        for dep in step.get("depends_on", ()) or ():
            if str(dep) in ids:
                out.append(Edge(source=str(dep), target=target))
        for dep in step.get("inferred", ()) or ():
            source = str(dep.get("step", "")) if isinstance(dep, Mapping) else str(dep)
            if source in ids:
                why = str(dep.get("why", "")) if isinstance(dep, Mapping) else ""
                out.append(Edge(source=source, target=target, inferred=True, why=why))
    return out


# -- Mermaid ---------------------------------------------------------------------------------------


def _mermaid_text(text: str) -> str:
    """A label inside ``"..."``: Mermaid's entity codes for what would end or break it."""
    text = " ".join(text.split())
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("`", "#96;"), ("|", "#124;")):
        text = text.replace(char, code)
    return text


def mermaid(mission: Mapping[str, Any]) -> str:
    """A ``flowchart LR``: nodes coloured by status, declared edges solid, inferred edges dotted."""
    steps: Sequence[Mapping[str, Any]] = mission.get("steps", ())
    node = {str(s.get("id", "")): f"s{i}" for i, s in enumerate(steps)}
    lines = ["flowchart LR"]
    for status, (fill, stroke) in _COLOURS.items():
        lines.append(f"  classDef {status} fill:{fill},stroke:{stroke},color:#1f2328")
    for step in steps:
        sid = str(step.get("id", ""))
        status = str(step.get("status", ""))
        label = _mermaid_text(f"{sid} ({step.get('type', '')}): {status}")
        cls = f":::{status}" if status in _COLOURS else ""
        lines.append(f'  {node[sid]}["{label}"]{cls}')
    for edge in edges(mission):
        arrow = f'-.->|"{_mermaid_text(edge.why or "inferred")}"|' if edge.inferred else "-->"
        lines.append(f"  {node[edge.source]} {arrow} {node[edge.target]}")
    return "\n".join(lines) + "\n"


# -- DOT -------------------------------------------------------------------------------------------


def _dot_string(text: str) -> str:
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r", "").replace("\n", "\\n") + '"'


def dot(mission: Mapping[str, Any]) -> str:
    """A Graphviz ``digraph``: filled nodes by status, inferred edges dashed and labelled with why."""
    steps: Sequence[Mapping[str, Any]] = mission.get("steps", ())
    lines = [
        f"digraph {_dot_string(str(mission.get('name', 'mission')))} {{",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    for step in steps:
        sid = str(step.get("id", ""))
        status = str(step.get("status", ""))
        fill, stroke = _COLOURS.get(status, _UNKNOWN)
        label = f"{sid}\n{step.get('type', '')}: {status}"
        lines.append(f"  {_dot_string(sid)} [label={_dot_string(label)}, fillcolor={_dot_string(fill)}, "
                     f"color={_dot_string(stroke)}];")  # fmt: skip
    for edge in edges(mission):
        attrs = f" [style=dashed, label={_dot_string(edge.why or 'inferred')}]" if edge.inferred else ""
        lines.append(f"  {_dot_string(edge.source)} -> {_dot_string(edge.target)}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- files -----------------------------------------------------------------------------------------


def file_stem(mission: Mapping[str, Any]) -> str:
    """A file name for a mission, unique in a run: its path without the suffix, ``/`` as ``__``."""
    path = str(mission.get("path", "") or mission.get("nodeid", "mission")).split("::", 1)[0]
    for suffix in (".mission.yaml", ".mission.yml", ".yaml", ".yml"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    combination = mission.get("matrix")
    if isinstance(combination, Mapping) and combination.get("id"):
        path += f".{combination['id']}"  # one file per matrix combination: ci.python=3.12.mmd
    return _FILE_CHARS.sub("_", path.replace("/", "__")).strip("._") or "mission"


def write_graphs(missions: Iterable[Mapping[str, Any]], directory: Path) -> list[Path]:
    """``<stem>.mmd`` and ``<stem>.dot`` per mission with steps, written through a temporary file each."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    used: set[str] = set()
    for mission in missions:
        if not mission.get("steps"):
            continue
        stem = file_stem(mission)
        base, n = stem, 2
        while stem in used:
            stem, n = f"{base}-{n}", n + 1
        used.add(stem)
        for suffix, text in ((".mmd", mermaid(mission)), (".dot", dot(mission))):
            target = directory / f"{stem}{suffix}"
            tmp = directory / f".{stem}{suffix}.tmp"
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(target)
            written.append(target)
    return written


def markdown_graphs(
    missions: Iterable[Mapping[str, Any]], *, failed: Iterable[str] = ("failed", "xpassed", "error")
) -> str:
    """A ``mermaid`` block per failed mission with steps (GitHub draws it), for the Markdown summary."""
    wanted = set(failed)
    chosen = [m for m in missions if m.get("status") in wanted and m.get("steps")]
    if not chosen:
        return ""
    out = ["", "### Graphs of failed missions", ""]
    for mission in chosen[:MARKDOWN_GRAPHS]:
        name = _markdown_inline(str(mission.get("name", "")))
        combination = mission.get("matrix")
        if isinstance(combination, Mapping) and combination.get("id"):
            name += _markdown_inline(f" [{combination['id']}]")
        path = _markdown_inline(str(mission.get("path", "")))
        out.append(f"**{name}** ({path})")
        out.append("")
        if len(mission["steps"]) > MARKDOWN_GRAPH_STEPS:
            out += [f"{len(mission['steps'])} steps: too many to draw here; see --mission-graph or --mission-html.", ""]
            continue
        out += ["```mermaid", mermaid(mission).rstrip("\n"), "```", ""]
    if len(chosen) > MARKDOWN_GRAPHS:
        out.append(f"... and {len(chosen) - MARKDOWN_GRAPHS} more failed missions (see --mission-graph).")
    return "\n".join(out).rstrip("\n") + "\n"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|~&!$#])")


def _markdown_inline(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))
