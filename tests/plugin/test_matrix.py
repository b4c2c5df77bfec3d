"""Black-box tests of ``matrix:``: one item per combination, with ids that -k, --lf and xdist use,
values in templates, and every report naming the combination."""

from __future__ import annotations

import json
import textwrap
from importlib import resources
from typing import Any

import jsonschema
import pytest
from junitparser import JUnitXml, TestSuite

MATRIX = """\
    name: CI
    vars: {python: "2.7", greeting: hello}
    matrix:
      os: [linux, mac]
      python: ["3.11", "3.12"]
      exclude:
        - {os: mac, python: "3.11"}
    steps:
      - id: show
        step_type: command
        parameters:
          command: echo
          args: ["{{ matrix.os }}/{{ matrix.python }}/{{ vars.python }}/{{ vars.greeting }}"]
        expect:
          stdout_contains: "{{ matrix.os }}/{{ matrix.python }}/{{ vars.python }}/hello"
      - id: mac-only
        step_type: command
        if: matrix.os == 'mac'
        parameters: {command: "false"}
"""

IDS = ["os=linux-python=3.11", "os=linux-python=3.12", "os=mac-python=3.12"]
REPORT_SCHEMA = json.loads(resources.files("pytest_rustchain").joinpath("schema/report.schema.json").read_text())


def _write(pytester: pytest.Pytester, text: str = MATRIX, name: str = "ci") -> None:
    pytester.path.joinpath(f"{name}.mission.yaml").write_text(textwrap.dedent(text), encoding="utf-8")


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--mission-sandbox=none", "-p", "no:cacheprovider", *args)


def test_each_combination_is_an_item_with_a_parametrize_style_id(pytester: pytest.Pytester) -> None:
    """--collect-only lists one item per combination, path::stem[name=value-...], in matrix order."""
    _write(pytester)
    result = _run(pytester, "--collect-only", "-q")
    result.stdout.fnmatch_lines([f"ci.mission.yaml::ci[[]{i}[]]" for i in IDS] + ["3 tests collected*"])


def test_values_reach_templates_and_each_combination_counts_on_its_own(pytester: pytest.Pytester) -> None:
    """matrix.<name> and vars.<name> hold the combination's values (they win over the mission's vars);
    the failing combination fails alone, and the success-rate section agrees with pytest's verdict."""
    _write(pytester)
    result = _run(pytester, "-v")
    assert result.ret == 1
    outcomes = result.parseoutcomes()
    assert (outcomes["passed"], outcomes["failed"]) == (2, 2)  # the failed item and its failed step
    result.stdout.fnmatch_lines(
        [
            "*ci.mission.yaml::ci[[]os=linux-python=3.11[]] PASSED*",
            "*ci.mission.yaml::ci[[]os=mac-python=3.12[]] SUBFAILED[[]mac-only[]]*",
            "*ci.mission.yaml::ci[[]os=mac-python=3.12[]] FAILED*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*mission success rates*",
            "ci.mission.yaml[[]os=linux-python=3.11[]] * 1/1 *100.0%*passed",
            "    CI [[]os=linux-python=3.11[]]",
            "ci.mission.yaml[[]os=linux-python=3.12[]] * 1/1 *100.0%*passed",
            "*",
            "ci.mission.yaml[[]os=mac-python=3.12[]] * 1/2 * 50.0%*failed",
            "*",
            "missions: 2/3 passed (66.6%)",
            "steps:    3/4 passed (75.0%), 2 skipped steps not counted",
        ]
    )


def test_command_line_vars_win_over_the_combination_in_vars_only(pytester: pytest.Pytester) -> None:
    """--mission-var python=X sets vars.python for every combination; matrix.python stays the combination's."""
    _write(
        pytester,
        """\
        name: CI
        matrix: {python: ["3.11", "3.12"]}
        steps:
          - id: show
            step_type: command
            parameters: {command: echo, args: ["{{ matrix.python }}/{{ vars.python }}"]}
            expect: {stdout_contains: "{{ matrix.python }}/pinned"}
        """,
    )
    _run(pytester, "--mission-var", "python=pinned").assert_outcomes(passed=2)


def test_k_selects_combinations(pytester: pytest.Pytester) -> None:
    """-k "python and 3.12" runs the 3.12 combinations only; -k "not mac" drops the mac one."""
    _write(pytester)
    result = _run(pytester, "-v", "-k", "python and 3.12")
    result.stdout.fnmatch_lines(["*ci[[]os=linux-python=3.12[]] PASSED*", "*ci[[]os=mac-python=3.12[]] FAILED*"])
    assert "python=3.11" not in result.stdout.str()
    assert "1 deselected" in result.stdout.lines[-1]
    again = _run(pytester, "-v", "-k", "not mac").parseoutcomes()
    assert (again["passed"], again["deselected"], again.get("failed", 0)) == (2, 1, 0)


def test_last_failed_reruns_only_the_failed_combination(pytester: pytest.Pytester) -> None:
    """--lf after a run with one failed combination reruns exactly that combination; --ff runs it first."""
    _write(pytester)
    first = pytester.runpytest("--mission-sandbox=none", "-v")
    assert first.ret == 1
    again = pytester.runpytest("--mission-sandbox=none", "-v", "--lf")
    again.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure*"])
    again.stdout.fnmatch_lines(["*ci[[]os=mac-python=3.12[]] FAILED*"])
    assert "os=linux" not in again.stdout.str()
    first_first = pytester.runpytest("--mission-sandbox=none", "-v", "--ff")
    verdicts = [
        line for line in first_first.stdout.lines if "::ci[" in line and (" PASSED" in line or " FAILED" in line)
    ]
    assert "os=mac-python=3.12" in verdicts[0]


def _report(pytester: pytest.Pytester, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((pytester.path / name).read_text())
    jsonschema.validate(doc, REPORT_SCHEMA)
    return doc


def test_xdist_runs_the_combinations_like_a_serial_run(pytester: pytest.Pytester) -> None:
    """-n 2 gives the same items, verdicts and report numbers as a serial run; workspaces never collide."""
    _write(pytester)
    serial = _run(pytester, "--mission-report=serial.json")
    parallel = _run(pytester, "-n", "2", "--mission-report=parallel.json", "--mission-keep-workspace=always")
    assert serial.ret == parallel.ret == 1
    one, two = _report(pytester, "serial.json"), _report(pytester, "parallel.json")
    assert one["totals"] == two["totals"]

    def rows(doc: dict[str, Any]) -> list[tuple[str, str, int, int]]:
        return [(m["nodeid"], m["status"], m["steps_passed"], m["steps_total"]) for m in doc["missions"]]

    assert rows(one) == rows(two)
    assert [m["nodeid"] for m in two["missions"]] == [f"ci.mission.yaml::ci[{i}]" for i in IDS]
    workspaces = [m["workspace"] for m in two["missions"]]
    assert len(set(workspaces)) == 3
    parallel.stdout.fnmatch_lines(["missions: 2/3 passed (66.6%)"])


def test_reports_name_the_combination(pytester: pytest.Pytester) -> None:
    """JSON (matrix id and values), Markdown, JUnit testcase names and the HTML page each name the combination."""
    _write(pytester)
    _run(pytester, "--mission-report=r.json", "--mission-summary=s.md", "--junitxml=j.xml", "--mission-html=r.html")
    doc = _report(pytester, "r.json")
    mac = doc["missions"][2]
    assert mac["matrix"] == {"id": "os=mac-python=3.12", "values": {"os": "mac", "python": "3.12"}}
    assert mac["status"] == "failed"
    markdown = (pytester.path / "s.md").read_text()
    assert "| CI \\[os=mac-python=3.12\\] | ci.mission.yaml | 1/2 | 50.0% |" in markdown
    assert "- **CI \\[os=mac-python=3.12\\]**, step **mac-only**" in markdown
    xml = JUnitXml.fromfile(str(pytester.path / "j.xml"))
    suite = xml if isinstance(xml, TestSuite) else next(iter(xml))
    verdicts = {case.name: case.is_passed for case in suite if case.name.startswith("ci[") and case.result != []}
    assert verdicts.get("ci[os=mac-python=3.12]") is False
    assert {case.name for case in suite} == {f"ci[{i}]" for i in IDS}
    html = (pytester.path / "r.html").read_text()
    assert '"id": "os=mac-python=3.12"' in html or '"id":"os=mac-python=3.12"' in html


def test_history_trajectories_and_repeats_are_per_combination(pytester: pytest.Pytester) -> None:
    """History is kept per combination; trajectories go to a directory per combination; a repeated
    matrix item repeats its own combination."""
    _write(pytester)
    pytester.runpytest("--mission-sandbox=none")
    result = pytester.runpytest(
        "--mission-sandbox=none", "--mission-history", "--mission-repeat=2", "--mission-trajectories=traj"
    )
    result.stdout.fnmatch_lines(
        [
            "*mission history*",
            "*",
            "*",
            "ci.mission.yaml::ci[[]os=linux-python=3.11[]]: 2 runs, 3/3 steps passed (100%)",
            "*",
            "*",
            "*",
            "ci.mission.yaml::ci[[]os=linux-python=3.12[]]: 2 runs, 3/3 steps passed (100%)",
            "*",
            "*",
            "*",
            "ci.mission.yaml::ci[[]os=mac-python=3.12[]]: 2 runs, 3/6 steps passed (50%)",
        ]
    )
    result.stdout.fnmatch_lines(["*ci[[]os=mac-python=3.12[]] - 2 of 2 repeats failed: r1, r2*"])
    dirs = sorted(p.name for p in (pytester.path / "traj").iterdir() if p.is_dir())
    assert dirs == [f"ci.{i}" for i in IDS]
    (run_dir,) = (pytester.path / "traj" / "ci.os=mac-python=3.12").iterdir()
    assert sorted(p.name for p in run_dir.iterdir()) == ["r1.jsonl", "r2.jsonl"]
    first = json.loads((run_dir / "r1.jsonl").read_text().splitlines()[0])
    assert first["nodeid"] == "ci.mission.yaml::ci[os=mac-python=3.12]"


MALFORMED = [
    (
        '{python: "3.12"}',
        "*:2:18: expected array, got string *3.12*",
        '*HINT: an axis is a list of values: python: [[]"3.12"[]]',
    ),
    ("{python: []}", "*:2:18: [[][]] should be non-empty", "*HINT: give python at least one value, or remove it"),
    ("{python: [{v: 1}]}", "*:2:19: expected string or number or boolean, got a mapping", "*HINT:*include:*"),
    ("[python]", "*:2:9: expected object, got a list", "*HINT: a matrix maps names to lists of values*"),
    (
        "{python: [3.10]}",
        "*:2:19: matrix value read as the number 3.1 ('3.10' loses its trailing zero)",
        "*HINT: quote*",
    ),
    (
        '{python: ["3.11"], exclude: [{pyton: "3.11"}]}',
        "*names 'pyton', which is not an axis*",
        "*did you mean 'python'?*",
    ),
    ('{python: ["3.11"], exclude: [{python: "3.11"}]}', "*exclude list removes every combination", "*HINT:*"),
    (
        "{a: [1,2,3,4,5,6,7,8,9], b: [1,2,3,4,5,6,7,8,9], c: [1,2,3,4]}",
        "*:2:9: the matrix makes 324 combinations (9 a x 9 b x 4 c), more than the limit of 256",
        "*HINT: drop values or axes*",
    ),
    ('{"bad-name": [1]}', "*does not match*", "*HINT: names start with a letter or '_'*"),
    ("{python: [null]}", "*expected string or number or boolean, got null", "*HINT:*"),
    ("{axes: [1], include: {a: 1}}", "*expected array, got a mapping", "*HINT: include is a list of mappings*"),
]


@pytest.mark.parametrize(("matrix", "what", "hint"), MALFORMED)
def test_malformed_matrix_fails_its_item_with_file_line_and_hint(
    pytester: pytest.Pytester, matrix: str, what: str, hint: str
) -> None:
    """A malformed matrix fails the mission's one item with path:line:col and a HINT; other missions run."""
    pytester.path.joinpath("bad.mission.yaml").write_text(
        f"name: bad\nmatrix: {matrix}\nsteps:\n  - {{id: a, step_type: noop}}\n", encoding="utf-8"
    )
    _write(pytester, "name: fine\nsteps:\n  - {id: a, step_type: noop}\n", name="fine")
    result = _run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"bad.mission.yaml{what[1:]}" if what.startswith("*:") else what, hint])
    assert "Traceback" not in result.stdout.str()


def test_next_mission_with_a_matrix_is_refused(pytester: pytest.Pytester) -> None:
    """A next mission runs inside its parent's item, so a matrix there is an error with a HINT."""
    _write(pytester, "name: after\nmatrix: {a: [1, 2]}\nsteps:\n  - {id: a, step_type: noop}\n", name="after")
    first = "name: first\nnext_missions: [after.mission.yaml]\nsteps:\n  - {id: a, step_type: noop}\n"
    _write(pytester, first, name="first")
    result = _run(pytester, "first.mission.yaml")
    result.stdout.fnmatch_lines(
        [
            "first.mission.yaml:2:*: next mission 'after.mission.yaml' has a matrix*",
            "*HINT: move the matrix to this mission*",
        ]
    )


def test_extends_inherits_the_matrix_and_the_child_may_replace_it(pytester: pytest.Pytester) -> None:
    """A mission that extends a base with a matrix runs its combinations; its own matrix replaces the base's."""
    base = 'name: base\nmatrix: {python: ["3.11", "3.12"]}\nsteps:\n  - {id: a, step_type: noop}\n'
    _write(pytester, base, name="base")
    pytester.path.joinpath("child.mission.yaml").write_text("extends: base.mission.yaml\nname: child\n")
    own = "extends: base.mission.yaml\nname: own\nmatrix: {os: [linux]}\n"
    pytester.path.joinpath("own.mission.yaml").write_text(own)
    result = _run(pytester, "--collect-only", "-q", "child.mission.yaml", "own.mission.yaml")
    result.stdout.fnmatch_lines(
        [
            "child.mission.yaml::child[[]python=3.11[]]",
            "child.mission.yaml::child[[]python=3.12[]]",
            "own.mission.yaml::own[[]os=linux[]]",
        ]
    )


def test_dry_run_lists_every_combination(pytester: pytest.Pytester) -> None:
    """--mission-dry-run judges each combination as its own item."""
    _write(pytester)
    result = _run(pytester, "--mission-dry-run")
    result.stdout.fnmatch_lines(["*mission dry run*", *[f"ci.mission.yaml::ci[[]{i}[]]" for i in IDS]])
    assert result.ret == 0


def test_each_combination_records_and_replays_its_own_cassette(pytester: pytest.Pytester, httpserver: Any) -> None:
    """Model answers of each combination go to its own cassette (also when two workers record at once),
    and replay offline from there."""
    httpserver.expect_request("/v1/chat/completions").respond_with_json(
        {
            "model": "m1",
            "choices": [{"message": {"content": "hello"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1},
        }
    )
    base = httpserver.url_for("/v1").rstrip("/")
    pytester.makeini(
        f"[pytest]\nmission_llm_providers =\n    local = openai {base}\nmission_llm_roles = default = local:m1\n"
    )
    _write(
        pytester,
        """\
        name: greet
        matrix: {lang: [en, fr]}
        steps:
          - id: ask
            step_type: llm
            parameters: {prompt: "Say hello in {{ matrix.lang }}."}
        """,
        name="greet",
    )
    _run(pytester, "-n", "2").assert_outcomes(passed=2)
    cassettes = sorted(p.name for p in (pytester.path / "cassettes").iterdir())
    assert cassettes == ["greet.lang=en.cassette.yaml", "greet.lang=fr.cassette.yaml"]
    assert "Say hello in fr." in (pytester.path / "cassettes" / "greet.lang=fr.cassette.yaml").read_text()
    httpserver.clear()
    replay = _run(pytester, "--mission-record-mode=none")
    replay.assert_outcomes(passed=2)
    replay.stdout.fnmatch_lines(["llm:      2 calls (2 recorded, 0 scripted, 0 live)*"])


def test_mission_fixture_runs_one_combination(pytester: pytest.Pytester) -> None:
    """The mission fixture runs the combination a test names with matrix={...}."""
    _write(pytester)
    pytester.makepyfile(
        test_ci="""
        def test_mac(mission):
            result = mission.run("ci.mission.yaml", matrix={"os": "mac"})
            assert result.matrix == {"os": "mac", "python": "3.12"}
            assert not result.passed
            assert result.steps["mac-only"].status.value == "failed"
        """
    )
    result = _run(pytester, "test_ci.py")
    result.assert_outcomes(passed=1)


def test_slowest_steps_name_the_combination(pytester: pytest.Pytester) -> None:
    """Each line of the slowest-steps list says which combination its step ran in."""
    _write(pytester)
    result = _run(pytester)
    slowest = result.stdout.str().split("slowest steps:")[1].splitlines()
    shows = [line for line in slowest if " show (command) " in line]
    assert sorted(line.rsplit("[", 1)[-1] for line in shows) == [f"{i}]" for i in IDS], slowest
