"""Unit tests of the success-rate arithmetic and the text, Markdown, JSON and annotation forms."""

from __future__ import annotations

import json
from fractions import Fraction
from importlib import resources
from typing import Any

import jsonschema
import pytest

from pytest_rustchain import summary


def _step(step_id: str, status: str = "passed", **extra: Any) -> dict[str, Any]:
    counted = not (status == "skipped" and extra.get("skip_kind") in ("condition", "provider"))
    return {
        "id": step_id,
        "type": extra.pop("type", "noop"),
        "family": "noop",
        "status": status,
        "reason": extra.pop("reason", ""),
        "skip_kind": extra.pop("skip_kind", ""),
        "counted": counted,
        "flaky": extra.pop("flaky", False),
        "duration": extra.pop("duration", 0.01),
        "attempts": 1,
        "line": extra.pop("line", 3),
        "risk": 0,
        "findings": [],
        "outputs": extra.pop("outputs", {}),
    }


def _mission(nodeid: str, status: str, steps: list[dict[str, Any]], name: str = "m") -> dict[str, Any]:
    return summary.mission_entry(
        nodeid,
        {"name": name, "path": nodeid.split("::")[0], "status": status, "duration": 0.5, "message": "", "steps": steps},
    )


def _identity(text: str) -> str:
    return text


RUN = [
    _mission(
        "b.mission.yaml::b",
        "failed",
        [
            _step("fetch"),
            _step("lint", "failed", type="command", reason="step 'lint' (command) failed at b.mission.yaml:9\n  boom"),
            _step("pkg", "skipped", skip_kind="failure", reason="dependency 'lint' failed", duration=0.0),
            _step("handler", "skipped", skip_kind="condition", reason="if: vars.deploy is false", duration=0.0),
        ],
    ),
    _mission("a.mission.yaml::a", "passed", [_step("one"), _step("two", flaky=True)]),
    summary.error_entry("c.mission.yaml::c", name="c", message="c.mission.yaml:4:3: unknown key 'depend_on'"),
    summary.skipped_entry("d.mission.yaml::d", name="d", reason="not today"),
]


def test_rates_count_only_attempts() -> None:
    """Condition skips are not counted, failure skips are; skipped missions leave the mission rate."""
    result = summary.summarize(RUN)
    assert [m["nodeid"] for m in result.missions] == [
        "a.mission.yaml::a",
        "b.mission.yaml::b",
        "c.mission.yaml::c",
        "d.mission.yaml::d",
    ]
    assert (result.step_rate.passed, result.step_rate.total) == (3, 5)
    assert (result.mission_rate.passed, result.mission_rate.total) == (1, 3)
    assert (result.not_counted, result.skipped_missions, result.steps_shown) == (1, 1, 6)
    assert [(t.type, t.rate.ratio(), t.not_counted) for t in result.step_types] == [
        ("command", "0/1", 0),
        ("noop", "3/4", 1),
    ]


def test_rates_are_truncated_never_rounded_up() -> None:
    """1999 of 2000 shows 99.9%, not 100.0%; 2 of 3 shows 66.6%; nothing counted shows n/a."""
    assert summary.Rate(passed=1999, total=2000).percent() == "99.9%"
    assert summary.Rate(passed=2, total=3).percent() == "66.6%"
    assert summary.Rate(passed=2, total=3).decimal() == "0.66"
    assert summary.Rate().percent() == "n/a"


@pytest.mark.parametrize(
    ("raw", "value", "text"),
    [("0.9", Fraction(9, 10), "0.90"), ("1", Fraction(1), "1.00"), ("0.875", Fraction(7, 8), "0.875")],
)
def test_threshold_parses_exactly(raw: str, value: Fraction, text: str) -> None:
    """A threshold keeps its exact value and is shown with at least two decimals."""
    threshold = summary.parse_threshold(raw)
    assert threshold.value == value
    assert threshold.text() == text


@pytest.mark.parametrize(
    ("raw", "hint"),
    [("90", "a rate of 90% is written 0.9"), ("90%", "90% is 0.9"), ("-0.1", ""), ("high", "")],
)
def test_bad_threshold_explains(raw: str, hint: str) -> None:
    """A threshold outside 0..1 is refused, with a hint when it looks like a percentage."""
    with pytest.raises(ValueError, match="is not a success rate between 0 and 1") as info:
        summary.parse_threshold(raw)
    assert hint in str(info.value)


def test_gate_flips_exactly_at_the_threshold() -> None:
    """9 of 10 meets 0.9, fails 0.9000001; the rate is shown with the threshold's decimals."""
    nine = summary.summarize([_mission("m::m", "passed", [_step(str(i)) for i in range(9)] + [_step("x", "failed")])])
    assert summary.gate_line(nine, summary.parse_threshold("0.9")) == (
        False,
        "mission success rate 0.90 meets the required 0.90 (9 of 10 counted steps passed)",
    )
    assert summary.gate_line(nine, summary.parse_threshold("0.9000001")) == (
        True,
        "mission success rate 0.9000000 is below the required 0.9000001 (9 of 10 counted steps passed)",
    )


def test_gate_ignores_a_run_with_nothing_counted() -> None:
    """n/a (every step skipped by a condition) never fails the gate."""
    run = summary.summarize([_mission("m::m", "passed", [_step("h", "skipped", skip_kind="condition")])])
    below, line = summary.gate_line(run, summary.parse_threshold("0.9"))
    assert not below
    assert line == "mission success rate n/a (no counted steps): the required 0.90 does not apply"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("::error::x", "\\::error::x"),
        ("ok\n  ::set-output name=a::b", "ok\n  \\::set-output name=a::b"),
        ("a\r::warning::x", "a\r\\::warning::x"),
        (":\u200b:error::x", "\\:\u200b:error::x"),
        ("\u200b::error::x", "\\\u200b::error::x"),
        ("a :: b", "a :: b"),
    ],
)
def test_workflow_commands_are_neutralised_under_github_actions(text: str, expected: str) -> None:
    """A line that GitHub would run as a workflow command gets a backslash in front."""
    assert summary._scrub_for_output(text, github_actions=True) == expected
    assert summary._scrub_for_output(text, github_actions=False) == text


def test_markdown_escapes_cells_and_fences_code() -> None:
    """Pipes and backticks in names and reasons cannot break the tables or the code blocks."""
    run = summary.summarize(
        [
            _mission(
                "p.mission.yaml::p",
                "failed",
                [_step("s", "failed", reason="got `a | b`\n```\nend")],
                name="pipe | and `tick`",
            )
        ]
    )
    text = summary.markdown(run, threshold=None, scrub=_identity)
    assert "| pipe \\| and \\`tick\\` | p.mission.yaml | 0/1 | 0.0% | 0.50s | failed |  |" in text
    assert "  ````text\n  got `a | b`\n  ```\n  end\n  ````" in text


def test_markdown_of_a_run_without_missions() -> None:
    """A run that ran no mission says so instead of printing empty tables."""
    text = summary.markdown(summary.summarize([]), threshold=None, scrub=_identity)
    assert text == "## Mission success rates\n\nNo mission ran.\n"


def test_annotations_point_at_yaml_lines() -> None:
    """Failed steps and broken files become ::error lines with file, line and escaped text."""
    lines = summary.workflow_annotations(summary.summarize(RUN), file_for=lambda p: "repo/" + p, scrub=_identity)
    assert lines == [
        "::error file=repo/b.mission.yaml,line=3,title=mission m%3A step lint failed::"
        "step 'lint' (command) failed at b.mission.yaml:9%0A  boom",
        "::error file=repo/c.mission.yaml,line=4,col=3,title=mission c%3A error::"
        "c.mission.yaml:4:3: unknown key 'depend_on'",
    ]


def test_report_document_matches_its_schema_and_trims_outputs() -> None:
    """Long strings and lists in outputs are cut; the document validates against report.schema.json."""
    big = _mission(
        "big.mission.yaml::big",
        "passed",
        [_step("s", outputs={"stdout": "x" * 10_000, "entries": list(range(1500)), "data": {"k": ["y" * 5000]}})],
    )
    doc = summary.report_document(
        summary.summarize([*RUN, big]),
        created="2026-01-01T00:00:00Z",
        duration=1.5,
        exit_status=1,
        threshold=summary.parse_threshold("0.8"),
        versions={"pytest": "9", "pytest-rustchain": "0"},
        scrub=_identity,
    )
    schema = json.loads(resources.files("pytest_rustchain").joinpath("schema/report.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)
    outputs = doc["missions"][2]["steps"][0]["outputs"]
    assert len(outputs["stdout"]) == 4000 + len("\n[... 6000 chars omitted ...]\n")
    assert len(outputs["entries"]) == 1001
    assert outputs["entries"][-1] == "[... 500 more items omitted ...]"
    assert "[... 1000 chars omitted ...]" in outputs["data"]["k"][0]
    assert doc["totals"]["steps_counted"] == 6
    assert doc["gate"] == {
        "min_success_rate": 0.8,
        "passed": False,
        "message": "mission success rate 0.66 is below the required 0.80 (4 of 6 counted steps passed)",
        "statistic": "point",
    }
