"""pytest-html integration: each mission's graph and step table in pytest-html's report, and nothing
broken when pytest-html is not there."""

from __future__ import annotations

import html
import json
import re
import shutil
from collections.abc import Callable
from typing import Any

import pytest

from pytest_rustchain import htmlextras

WriteMission = Callable[[str, str], None]

MISSION = """
name: "Ship <script>alert(1)</script>"
steps:
  - id: prepare
    step_type: create_file
    parameters: {path: out/a.txt, content: hi}
  - id: build
    step_type: command
    depends_on: [prepare]
    parameters: {command: sh, args: [-c, "exit 2"]}
"""


def _extras(page: str) -> dict[str, list[str]]:
    """HTML extras per test id, from the data pytest-html embeds in its page."""
    found = re.search(r'data-jsonblob="([^"]*)"', page)
    assert found is not None
    data: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    out: dict[str, list[str]] = {}
    for test_id, rows in data["tests"].items():
        # pytest-html repeats a test's extras on each of its rows (the mission's and its steps').
        contents = [[e["content"] for e in row.get("extras", ()) if e["format_type"] == "html"] for row in rows]
        assert all(c == contents[0] for c in contents)
        out[test_id] = contents[0]
    return out


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_pytest_html_report_shows_graph_and_steps(
    pytester: pytest.Pytester, write_mission: WriteMission, workers: list[str]
) -> None:
    """With --html, each mission's row in pytest-html's report holds its dependency graph and step
    table, with the mission's text escaped; also when the mission ran on an xdist worker."""
    pytest.importorskip("pytest_html", reason="pytest-html is not installed")
    write_mission("ship", MISSION)
    write_mission("fine", "name: Fine\nsteps:\n  - {id: one, step_type: noop}\n")
    pytester.runpytest(*workers, "--html=report.html")
    extras = _extras((pytester.path / "report.html").read_text(encoding="utf-8"))
    ship = extras["ship.mission.yaml::ship"]
    assert len(ship) == 1
    assert 'class="rustchain-steps"' in ship[0]
    assert "<td>build</td><td>command</td><td>failed</td>" in ship[0]
    assert "Ship &lt;script&gt;alert(1)&lt;/script&gt;" in ship[0]
    assert "<script" not in ship[0]
    assert "prepare" in ship[0] and ("<svg" in ship[0] or "prepare &rarr; build" in ship[0])
    assert len(extras["fine.mission.yaml::fine"]) == 1


def test_without_pytest_html_nothing_changes(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """With pytest-html disabled the missions run and report as always; the plugin adds no extras."""
    write_mission("ship", MISSION)
    result = pytester.runpytest("-p", "no:html", "--mission-html=page.html")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["missions: 0/1 passed (0.0%)"])
    assert sorted(p.name for p in pytester.path.glob("*.html")) == ["page.html"]


def test_fragment_without_graphviz_lists_the_edges() -> None:
    """Without Graphviz the fragment lists each dependency (inferred ones with their reason), escaped."""
    mission = {
        "name": "m",
        "steps": [
            {"id": "a", "type": "noop", "status": "passed", "depends_on": [], "inferred": []},
            {"id": "b", "type": "noop", "status": "failed", "reason": "x <b>\nmore", "depends_on": ["a"],
             "inferred": [{"step": "a", "why": "inferred: uses <a>"}]},
        ],
    }  # fmt: skip
    text = htmlextras.mission_html(mission, dot=None)
    assert "<li>a &rarr; b</li>" in text
    assert "<li>a &rarr; b (inferred: uses &lt;a&gt;)</li>" in text
    assert "<td>x &lt;b&gt;</td>" in text


def test_fragment_with_graphviz_is_escaped_svg() -> None:
    """With Graphviz the fragment holds its SVG drawing (no XML prolog), every mission text escaped."""
    dot = shutil.which("dot")
    if dot is None:
        pytest.skip("Graphviz (dot) is not installed: the SVG form of the graph is not checked")
    mission = {
        "name": "</svg><script>alert(1)</script>",
        "steps": [
            {"id": "a", "type": "noop", "status": "passed", "depends_on": [], "inferred": []},
            {"id": "b", "type": "noop", "status": "failed", "depends_on": ["a"],
             "inferred": [{"step": "a", "why": "inferred: <img src=x>"}]},
        ],
    }  # fmt: skip
    text = htmlextras.mission_html(mission, dot=dot)
    assert text.count("<svg") == 1 and text.count("</svg>") == 1
    assert "<?xml" not in text and "<!DOCTYPE" not in text
    assert "<script" not in text and "<img" not in text
    assert "&lt;img src=x&gt;" in text
