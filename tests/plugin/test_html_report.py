"""Black-box tests of --mission-html, --mission-graph and the Mermaid graphs in the Markdown summary."""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

WriteMission = Callable[[str, str], None]

CHAIN = """
name: Chain with a failure
steps:
  - id: prepare
    step_type: create_file
    parameters: {path: out/a.txt, content: hi}
  - id: build
    step_type: command
    depends_on: [prepare]
    parameters: {command: sh, args: [-c, "echo built; exit 4"]}
  - id: read
    step_type: read_file
    parameters: {path: out/a.txt}
"""

FINE = """
name: Fine
steps:
  - id: one
    step_type: noop
  - id: two
    step_type: noop
    depends_on: [one]
"""


def page_data(page: Path) -> dict[str, Any]:
    """The report data embedded in the page."""
    text = page.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="mission-data">(.*?)</script>', text, re.S)
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def test_html_page_holds_the_json_reports_data(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """--mission-html writes one page whose data is the JSON report's, dependencies included, and which
    names no outside resource."""
    write_mission("chain", CHAIN)
    write_mission("fine", FINE)
    result = pytester.runpytest("--mission-html=out/report.html", "--mission-report=out/report.json")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["mission HTML report: *out/report.html"])
    page = pytester.path / "out" / "report.html"
    report = json.loads((pytester.path / "out" / "report.json").read_text(encoding="utf-8"))
    data = page_data(page)
    assert [{k: v for k, v in m.items() if k != "history"} for m in data["missions"]] == report["missions"]
    assert data["totals"] == report["totals"]
    chain = next(m for m in report["missions"] if m["name"] == "Chain with a failure")
    steps = {s["id"]: s for s in chain["steps"]}
    assert steps["build"]["depends_on"] == ["prepare"]
    assert steps["read"]["inferred"] == [{"step": "prepare", "why": steps["read"]["inferred"][0]["why"]}]
    schema = json.loads(resources.files("pytest_rustchain").joinpath("schema/report.schema.json").read_text())
    jsonschema.validate(report, schema)
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", text)
    assert '<meta http-equiv="Content-Security-Policy" content="default-src &#x27;none&#x27;' in text


def test_html_page_under_xdist_matches_a_serial_run(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """Under -n 2 the controller writes the page once, with the same missions and steps as without -n."""
    write_mission("chain", CHAIN)
    write_mission("fine", FINE)
    pytester.runpytest("--mission-html=serial.html")
    pytester.runpytest("-n", "2", "--mission-html=parallel.html")

    def shape(data: dict[str, Any]) -> list[Any]:
        return [
            (m["nodeid"], m["status"], [(s["id"], s["status"], s["depends_on"], s["inferred"]) for s in m["steps"]])
            for m in data["missions"]
        ]

    serial, parallel = page_data(pytester.path / "serial.html"), page_data(pytester.path / "parallel.html")
    assert shape(parallel) == shape(serial)
    assert len(parallel["missions"]) == 2
    assert not list(pytester.path.glob(".parallel.html.*"))


def test_secret_canary_is_masked_everywhere_in_the_page(
    pytester: pytest.Pytester, write_mission: WriteMission, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret a step prints (raw, base64, URL-encoded, in stdout, stderr and the failure text) never
    reaches the HTML page, the Mermaid/DOT files or the Markdown summary."""
    secret = "canary-41d7c0-html-secret"
    monkeypatch.setenv("DEPLOY_TOKEN", secret)
    pytester.makeini("[pytest]\nmission_pass_env = DEPLOY_TOKEN\n")
    write_mission(
        "leak",
        """
        name: leak
        steps:
          - id: show
            step_type: command
            parameters:
              shell: true
              command: >-
                echo "$DEPLOY_TOKEN"; echo "$DEPLOY_TOKEN" | base64;
                python3 -c "import os,urllib.parse as u;print(u.quote(os.environ['DEPLOY_TOKEN']+'/x'))";
                echo "err $DEPLOY_TOKEN" >&2; exit 1
          - id: after
            step_type: noop
            depends_on: [show]
        """,
    )
    result = pytester.runpytest("--mission-html=report.html", "--mission-graph=graphs", "--mission-summary=summary.md")
    assert result.ret == 1
    page = (pytester.path / "report.html").read_text(encoding="utf-8")
    texts = [page, (pytester.path / "summary.md").read_text(encoding="utf-8")]
    texts += [p.read_text(encoding="utf-8") for p in (pytester.path / "graphs").iterdir()]
    forms = [secret, base64.b64encode(secret.encode()).decode()[:20], urllib.parse.quote(secret)]
    for text in texts:
        for form in forms:
            assert form not in text
    shown = page_data(pytester.path / "report.html")["missions"][0]["steps"][0]
    assert "***" in shown["outputs"]["stdout"]
    assert "***" in shown["reason"]


def test_markup_in_missions_stays_text(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A mission name and step output holding <script> never become markup in the page: the page keeps
    exactly its own two script blocks, and the text is in the data escaped."""
    write_mission(
        "evil",
        """
        name: "</script><script>alert(1)</script><!--"
        steps:
          - id: say
            step_type: command
            parameters: {command: sh, args: [-c, "echo '</script><script>alert(2)</script>'; exit 1"]}
        """,
    )
    pytester.runpytest("--mission-html=report.html")
    text = (pytester.path / "report.html").read_text(encoding="utf-8")
    assert text.count("<script") == 2
    assert text.count("</script>") == 2
    assert "<!--" not in text.split("<body>", 1)[1].split("\n<!--\nThe dependency graphs", 1)[0]
    data = page_data(pytester.path / "report.html")
    assert data["missions"][0]["name"] == "</script><script>alert(1)</script><!--"
    assert "</script><script>alert(2)</script>" in data["missions"][0]["steps"][0]["outputs"]["stdout"]


def test_graph_files_and_markdown_mermaid(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """--mission-graph writes a .mmd and a .dot per mission; the Markdown summary draws a Mermaid graph
    for the failed mission only."""
    write_mission("chain", CHAIN)
    write_mission("fine", FINE)
    result = pytester.runpytest("--mission-graph=graphs", "--mission-summary=summary.md")
    result.stdout.fnmatch_lines(["mission graphs (2): *graphs"])
    names = sorted(p.name for p in (pytester.path / "graphs").iterdir())
    assert names == ["chain.dot", "chain.mmd", "fine.dot", "fine.mmd"]
    mmd = (pytester.path / "graphs" / "chain.mmd").read_text(encoding="utf-8")
    assert mmd.startswith("flowchart LR\n")
    assert "s0 --> s1" in mmd
    assert re.search(r'  s0 -\.->\|"inferred: [^"]+"\| s2', mmd)
    dot = (pytester.path / "graphs" / "chain.dot").read_text(encoding="utf-8")
    assert '"prepare" -> "build";' in dot
    assert re.search(r'"prepare" -> "read" \[style=dashed', dot)
    summary = (pytester.path / "summary.md").read_text(encoding="utf-8")
    assert summary.count("```mermaid") == 1
    assert "**Chain with a failure** (chain.mission.yaml)" in summary


def test_graph_option_naming_a_file_is_a_usage_error(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """--mission-graph must name a directory; a file there stops the run with a hint, not a traceback."""
    write_mission("fine", FINE)
    pytester.path.joinpath("taken").write_text("x", encoding="utf-8")
    result = pytester.runpytest("--mission-graph=taken")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--mission-graph=taken is a file*", "*HINT: give a directory*"])


def test_page_carries_each_missions_run_history(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """With run history in pytest's cache, each mission in the page carries its kept runs (oldest
    first) for the chart, while the JSON report stays as its schema says."""
    write_mission("chain", CHAIN)
    pytester.runpytest("-p", "cacheprovider")
    pytester.runpytest("-p", "cacheprovider", "--mission-html=page.html", "--mission-report=report.json")
    runs = page_data(pytester.path / "page.html")["missions"][0]["history"]
    assert [(r["status"], r["passed"], r["total"]) for r in runs] == [("failed", 1, 3), ("failed", 1, 3)]
    report = json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))
    assert "history" not in report["missions"][0]
