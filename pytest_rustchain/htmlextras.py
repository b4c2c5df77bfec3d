"""pytest-html integration: each mission's dependency graph and step table as an ``extras`` entry."""

from __future__ import annotations

import html
import shutil
import subprocess
from collections.abc import Generator, Mapping, Sequence
from typing import Any

import pytest

from pytest_rustchain import graph

__all__ = ["PytestHtmlExtras", "configure", "mission_html", "svg_graph"]

DOT_TIMEOUT = 20.0
"""Seconds Graphviz may take for one mission's graph before the edge list is shown instead."""


def configure(config: pytest.Config) -> None:
    """Register the extras when pytest-html is installed and writing a report (``--html``)."""
    if config.pluginmanager.hasplugin("html") and config.getoption("htmlpath", None):
        config.pluginmanager.register(PytestHtmlExtras(dot=shutil.which("dot")), "rustchain-pytest-html")


def svg_graph(mission: Mapping[str, Any], dot: str | None) -> str | None:
    """The mission's graph drawn by Graphviz as inline SVG, or None without Graphviz (or when it fails)."""
    if dot is None:
        return None
    try:
        proc = subprocess.run(
            [dot, "-Tsvg"],
            input=graph.dot(mission).encode("utf-8"),
            capture_output=True,
            timeout=DOT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = proc.stdout.decode("utf-8", "replace")
    start = text.find("<svg")
    if proc.returncode != 0 or start < 0:
        return None
    # From <svg on: no XML prolog or DOCTYPE inside the page. Graphviz escapes every label it writes.
    return text[start:]


def _edge_list(mission: Mapping[str, Any]) -> str:
    edges = graph.edges(mission)
    if not edges:
        return "<p>No dependencies between the steps.</p>"
    items = []
    for edge in edges:
        how = f" ({html.escape(edge.why or 'inferred')})" if edge.inferred else ""
        items.append(f"<li>{html.escape(edge.source)} &rarr; {html.escape(edge.target)}{how}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def mission_html(mission: Mapping[str, Any], *, dot: str | None) -> str:
    """An HTML fragment: the dependency graph (Graphviz SVG, else the edge list) and the step table;
    every text from the mission is escaped."""
    steps: Sequence[Mapping[str, Any]] = mission.get("steps", ())
    drawn = svg_graph(mission, dot) if steps else None
    rows = []
    for step in steps:
        rules = sorted({str(f.get("rule", "")) for f in step.get("findings", ()) or () if isinstance(f, Mapping)})
        cells = [
            step.get("id", ""),
            step.get("type", ""),
            step.get("status", ""),
            _first_line(str(step.get("reason", ""))),
            f"{float(step.get('duration', 0.0)):.2f}s",
            step.get("attempts", ""),
            step.get("risk", ""),
            ", ".join(r for r in rules if r),
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("step", "type", "status", "reason", "time", "attempts", "risk", "rules"))
    return (
        '<div class="rustchain-mission">'
        f"<h4>{html.escape(str(mission.get('name', '')))}: dependency graph</h4>"
        f"{drawn if drawn is not None else _edge_list(mission)}"
        f'<table class="rustchain-steps"><tr>{head}</tr>{"".join(rows)}</table>'
        "</div>"
    )


class PytestHtmlExtras:
    """Adds the extras to the mission's call report where the mission ran (the worker under xdist);
    pytest-html reads them from the report on the controller."""

    def __init__(self, *, dot: str | None) -> None:
        self.dot = dot

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        data = getattr(report, "mission", None)
        if report.when == "call" and isinstance(data, dict):
            import pytest_html

            extras = list(getattr(report, "extras", []))
            extras.append(pytest_html.extras.html(mission_html(data, dot=self.dot)))
            report.extras = extras  # type: ignore[attr-defined]
        return report
