"""Unit tests of the dependency graph forms (Mermaid, DOT, files) and the HTML page's fixed parts."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pytest_rustchain import graph, htmlreport
from pytest_rustchain.loader import load_mission


def _step(sid: str, status: str = "passed", deps: list[str] | None = None, **more: Any) -> dict[str, Any]:
    return {"id": sid, "type": "noop", "status": status, "depends_on": deps or [], "inferred": [], **more}


def _mission(*steps: dict[str, Any], status: str = "failed", path: str = "m.mission.yaml") -> dict[str, Any]:
    return {"name": "m", "path": path, "nodeid": f"{path}::m", "status": status, "steps": list(steps)}


def test_edges_declared_and_inferred_in_step_order() -> None:
    """Each dependency is one edge; inferred ones carry their reason; unknown ids draw nothing."""
    mission = _mission(
        _step("a"),
        _step("b", deps=["a", "ghost"], inferred=[{"step": "a", "why": "inferred: uses steps.a"}]),
    )
    assert graph.edges(mission) == [
        graph.Edge(source="a", target="b"),
        graph.Edge(source="a", target="b", inferred=True, why="inferred: uses steps.a"),
    ]


def test_add_dependencies_from_a_loaded_mission(tmp_path: Path) -> None:
    """Result data gains each step's declared and inferred dependencies, as the loader found them."""
    path = tmp_path / "x.mission.yaml"
    path.write_text(
        "name: x\nsteps:\n"
        "  - {id: make, step_type: create_file, parameters: {path: d/f.txt, content: hi}}\n"
        "  - {id: read, step_type: read_file, parameters: {path: d/f.txt}}\n"
        "  - {id: last, step_type: noop, depends_on: [read]}\n",
        encoding="utf-8",
    )
    mission = load_mission(path)
    data = graph.add_dependencies({"steps": [{"id": "make"}, {"id": "read"}, {"id": "last"}]}, mission)
    by_id = {s["id"]: s for s in data["steps"]}
    assert by_id["make"] == {"id": "make", "depends_on": (), "inferred": ()}
    assert [d["step"] for d in by_id["read"]["inferred"]] == ["make"]
    assert by_id["read"]["inferred"][0]["why"].startswith("inferred: ")
    assert by_id["last"]["depends_on"] == ["read"]


def test_mermaid_labels_cannot_break_out() -> None:
    """Quotes, brackets, pipes and markup in labels become Mermaid entity codes; ids become s0, s1, ..."""
    mission = _mission(
        _step("a", status="failed"),
        _step("b", inferred=[{"step": "a", "why": 'path "x|y"] <b>'}], type='t"]'),
    )
    text = graph.mermaid(mission)
    assert '  s1["b (t#quot;]): passed"]:::passed' in text
    assert '  s0 -.->|"path #quot;x#124;y#quot;] #lt;b#gt;"| s1' in text
    assert "<" not in text


def test_dot_strings_are_quoted() -> None:
    """DOT ids and labels are quoted with backslash escapes, so any id or reason is one token."""
    mission = _mission(_step("a"), _step("b", inferred=[{"step": "a", "why": 'say "hi"\\n'}]))
    text = graph.dot(mission)
    assert '"a" -> "b" [style=dashed, label="say \\"hi\\"\\\\n"];' in text
    assert text.startswith('digraph "m" {')


def test_graph_file_names_are_unique_and_safe(tmp_path: Path) -> None:
    """Two missions whose paths flatten alike still get their own files; missions without steps none."""
    missions = [
        _mission(_step("a"), path="a/b.mission.yaml"),
        _mission(_step("a"), path="a__b.mission.yml"),
        _mission(path="empty.mission.yaml"),
        _mission(_step("a"), path="../we ird/$x.mission.yaml"),
    ]
    written = graph.write_graphs(missions, tmp_path / "g")
    assert sorted(p.name for p in written) == [
        "a__b-2.dot", "a__b-2.mmd", "a__b.dot", "a__b.mmd", "we_ird___x.dot", "we_ird___x.mmd",
    ]  # fmt: skip


def test_markdown_graphs_only_for_failed_missions_and_capped() -> None:
    """Failed missions get a mermaid block each, up to the cap; passed missions and huge ones none."""
    missions = [_mission(_step("a"), status="passed")]
    missions += [_mission(_step("a"), path=f"f{i}.mission.yaml") for i in range(graph.MARKDOWN_GRAPHS + 2)]
    text = graph.markdown_graphs(missions)
    assert text.count("```mermaid") == graph.MARKDOWN_GRAPHS
    assert "and 2 more failed missions" in text
    big = _mission(*[_step(f"s{i}") for i in range(graph.MARKDOWN_GRAPH_STEPS + 1)])
    assert "too many to draw" in graph.markdown_graphs([big])
    assert graph.markdown_graphs(missions[:1]) == ""


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_page_policy_allows_exactly_its_own_script_and_style() -> None:
    """The Content-Security-Policy names the hashes of the page's one script and one style block, and
    forbids every other source."""
    page = htmlreport.render({"missions": [], "totals": {}, "created": "2026-01-01T00:00:00Z"})
    script = re.findall(r"<script>(.*?)</script>", page, re.S)
    style = re.findall(r"<style>(.*?)</style>", page, re.S)
    assert len(script) == 1 and len(style) == 1
    csp = htmlreport.assets().csp
    assert csp.startswith("default-src 'none'; ")
    assert f"script-src {_sha(script[0])};" in csp
    assert f"style-src {_sha(style[0])};" in csp
    assert "sourceMappingURL" not in page
    assert "Permission is hereby granted" in page


def test_embedded_data_round_trips_and_never_closes_its_block() -> None:
    """Any text in the data (``</script>``, ``<!--``, ``&``, non-ASCII) comes back unchanged from the
    page, and the raw page never holds it as markup."""
    tricky = "</script><!-- & \u2028 é \U0001f600 ]]>"
    page = htmlreport.render({"missions": [{"name": tricky, "steps": []}], "totals": {}})
    block = re.search(r'<script type="application/json" id="mission-data">(.*?)</script>', page, re.S)
    assert block is not None
    assert json.loads(block.group(1))["missions"][0]["name"] == tricky
    assert tricky not in page
    assert "<!--" not in block.group(1)
