"""The ``--mission-html`` page: one self-contained HTML file made from the JSON report's document."""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["DAGRE_VERSION", "Assets", "assets", "render", "with_history"]

DAGRE_VERSION = "3.1.3"
"""The bundled ``@dagrejs/dagre`` (``_vendor/README.md`` says where it comes from)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Assets:
    """What every page embeds: one script (the graph layout library and the page's own code), one
    style sheet, the license text of the library, and the Content-Security-Policy that lets exactly
    those two run and nothing else load."""

    script: str
    style: str
    license: str
    csp: str


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


@functools.cache
def assets() -> Assets:
    """Read once per process: the page's fixed parts."""
    package = resources.files("pytest_rustchain")
    dagre = (package / "_vendor" / "dagre.min.js").read_text(encoding="utf-8")
    # The source map is not shipped; without this line a browser's developer tools would ask for it.
    dagre = "\n".join(line for line in dagre.splitlines() if not line.startswith("//# sourceMappingURL="))
    app = (package / "_html" / "report.js").read_text(encoding="utf-8")
    script = f"\n{dagre}\n;\n{app}\n"
    style = "\n" + (package / "_html" / "report.css").read_text(encoding="utf-8")
    license_text = (package / "_vendor" / "dagre.LICENSE").read_text(encoding="utf-8")
    # default-src 'none': no request of any kind leaves the page (images, fonts, fetch, frames);
    # only the two inline blocks below, by hash, may run or apply.
    csp = (
        f"default-src 'none'; script-src {_hash(script)}; style-src {_hash(style)}; "
        "img-src 'none'; base-uri 'none'; form-action 'none'"
    )
    return Assets(script=script, style=style, license=license_text.replace("--", "- -"), csp=csp)


def _json_for_script(document: Mapping[str, Any]) -> str:
    """JSON that cannot end its ``<script type="application/json">`` block or open a comment in it:
    ``<``, ``>`` and ``&`` only occur inside JSON strings, where ``\\u003c`` means the same."""
    text = json.dumps(document, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


HISTORY_FIELDS = ("when", "status", "passed", "total")


def with_history(document: Mapping[str, Any], history: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The document with each mission's kept runs (``history.missions_of``: when, status, passed and
    total of each run, oldest first) as its ``history``, for the page's chart; the document itself is
    not changed."""
    missions = []
    for mission in document.get("missions", ()):
        runs = history.get(str(mission.get("nodeid", "")), {}).get("runs", ())
        if runs:
            mission = {**mission, "history": [{k: run[k] for k in HISTORY_FIELDS if k in run} for run in runs]}
        missions.append(mission)
    return {**document, "missions": missions}


def render(
    document: Mapping[str, Any],
    *,
    title: str = "Mission report",
    history: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """The page for a ``--mission-report`` document (``summary.report_document``): the data embedded
    as JSON, drawn by the embedded script when opened, each mission's details when it is expanded.
    ``history`` (``history.missions_of``) adds each mission's success-rate chart over its kept runs."""
    parts = assets()
    if history:
        document = with_history(document, history)
    created = str(document.get("created", ""))
    heading = html.escape(f"{title} {created}".strip())
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{html.escape(parts.csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="pytest-rustchain">
<title>{heading}</title>
<style>{parts.style}</style>
</head>
<body>
<header>
<h1>{html.escape(title)}</h1>
<div class="totals" id="totals"></div>
<div class="meta" id="meta"></div>
<div id="run-history"></div>
</header>
<nav>
<input id="filter" type="search" placeholder="filter by name, path or status" aria-label="filter missions">
<label><input type="checkbox" id="only-failed"> failed only</label>
<button type="button" id="expand-all">expand all</button>
<button type="button" id="collapse-all">collapse all</button>
</nav>
<main id="missions"></main>
<noscript><p>This page draws its missions with JavaScript; the report data is in it as JSON.</p></noscript>
<script type="application/json" id="mission-data">{_json_for_script(document)}</script>
<script>{parts.script}</script>
<!--
The dependency graphs are laid out by @dagrejs/dagre {DAGRE_VERSION}, embedded above under this license:

{parts.license}
-->
</body>
</html>
"""
