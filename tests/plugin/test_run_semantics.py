"""Black-box tests of SPEC 4: order, failure handling, conditions, outcomes and workspaces."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

WriteMission = Callable[[str, str], None]

FAIL = {"command": "sh", "args": ["-c", "exit 1"]}


def test_continue_on_error_is_subxfail_and_mission_passes(
    pytester: pytest.Pytester, write_mission: WriteMission
) -> None:
    """A tolerated failure shows as SUBXFAIL with the reason; dependents still run; the mission passes."""
    write_mission(
        "tolerant",
        """
        name: tolerant
        steps:
          - id: lint
            step_type: command
            continue_on_error: true
            parameters: {command: sh, args: [-c, "exit 4"]}
          - id: after
            step_type: noop
            depends_on: [lint]
        """,
    )
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(["*SUBXFAIL[[]lint[]]*", "*SUBPASSED[[]after[]]*", "*tolerant PASSED*"])
    assert result.ret == 0


def test_runxfail_makes_tolerated_failures_fail(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """Under --runxfail a continue_on_error failure fails the mission."""
    write_mission(
        "tolerant",
        """
        name: tolerant
        steps:
          - id: lint
            step_type: command
            continue_on_error: true
            parameters: {command: sh, args: [-c, "exit 4"]}
        """,
    )
    result = pytester.runpytest("-v", "--runxfail")
    result.stdout.fnmatch_lines(["*SUBFAILED[[]lint[]]*"])
    assert result.ret == 1


def test_fail_fast_skips_later_steps_but_always_runs(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """After a failure later steps are skipped, `if: always()` cleanup still runs, failure() handlers run."""
    write_mission(
        "ff",
        """
        name: ff
        steps:
          - id: broken
            step_type: command
            parameters: {command: sh, args: [-c, "exit 1"]}
          - id: unrelated
            step_type: noop
          - id: on-failure
            step_type: noop
            if: failure()
          - id: cleanup
            step_type: create_file
            if: always()
            parameters: {path: cleaned.txt, content: x}
        """,
    )
    result = pytester.runpytest("-v", "-rs")
    result.stdout.fnmatch_lines(
        [
            "*SUBFAILED[[]broken[]]*",
            "*SUBSKIPPED[[]unrelated[]]*",
            "*SUBPASSED[[]on-failure[]]*",
            "*SUBPASSED[[]cleanup[]]*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["SUBSKIPPED[[]unrelated[]] [[]1[]] ff.mission.yaml:7: skipped after 'broken' failed (fail_fast)"]
    )
    assert result.ret == 1


def test_fail_fast_false_runs_independent_steps(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """With fail_fast: false only dependents of the failed step are skipped (transitively, naming the root)."""
    write_mission(
        "nff",
        """
        name: nff
        config: {fail_fast: false}
        steps:
          - id: broken
            step_type: command
            parameters: {command: sh, args: [-c, "exit 1"]}
          - id: child
            step_type: noop
            depends_on: [broken]
          - id: grandchild
            step_type: noop
            depends_on: [child]
          - id: independent
            step_type: noop
          - id: handler
            step_type: noop
            if: failure()
        """,
    )
    result = pytester.runpytest("-v", "-rs")
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*SUBSKIPPED[[]child[]]*",
            "*SUBSKIPPED[[]grandchild[]]*",
            "*SUBPASSED[[]independent[]]*",
            "*SUBPASSED[[]handler[]]*",
        ]
    )
    assert "dependency 'child' was skipped because 'broken' failed" in out


def test_order_is_dependency_then_file_order(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A step declared before its dependency runs after it; ready steps keep file order."""
    write_mission(
        "order",
        """
        name: order
        steps:
          - id: second
            step_type: command
            depends_on: [first]
            parameters: {command: sh, args: [-c, "echo second >> log.txt"]}
          - id: first
            step_type: command
            parameters: {command: sh, args: [-c, "echo first >> log.txt"]}
          - id: third
            step_type: read_file
            depends_on: [second]
            parameters: {path: log.txt}
            expect:
              output: {content: "first\\nsecond\\n"}
        """,
    )
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(["*SUBPASSED[[]first[]]*", "*SUBPASSED[[]second[]]*", "*SUBPASSED[[]third[]]*"])
    assert result.ret == 0


def test_success_threshold(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A threshold mission passes at 2/3 >= 0.6 and fails at 1/3, giving rate and threshold."""
    body = """
        name: t
        config: {{success_threshold: {t}}}
        steps:
          - id: a
            step_type: noop
          - id: b
            step_type: command
            parameters: {{command: sh, args: [-c, "exit 1"]}}
          - id: c
            step_type: {third}
        """
    write_mission("pass", body.format(t=0.6, third="noop"))
    write_mission("fail", body.format(t=0.6, third="command\n            parameters: {command: 'false'}"))
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(["*SUBXFAIL[[]b[]]*"])
    out = result.stdout.str()
    assert "pass.mission.yaml::pass PASSED" in out
    assert "fail.mission.yaml::fail FAILED" in out
    assert "step success rate 0.33 is below the threshold 0.6" in out


def test_mission_xfail(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """`marks: [{xfail: reason}]` makes a failing mission XFAIL and a passing one fail as XPASS."""
    write_mission(
        "known-bug",
        """
        name: known
        marks: [{xfail: "issue 12"}]
        steps:
          - id: a
            step_type: command
            parameters: {command: "false"}
        """,
    )
    write_mission(
        "fixed-bug",
        """
        name: fixed
        marks: [{xfail: "issue 13"}]
        steps:
          - id: a
            step_type: noop
        """,
    )
    result = pytester.runpytest("-v", "-rxX")
    out = result.stdout.str()
    assert "known-bug.mission.yaml::known-bug XFAIL" in out
    assert "fixed-bug.mission.yaml::fixed-bug FAILED" in out
    assert "every step passed" in out


def test_exitfirst_stops_after_mission_not_inside(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """-x still runs the failing mission's always() steps, then stops before the next mission."""
    write_mission(
        "a_first",
        """
        name: first
        steps:
          - id: broken
            step_type: command
            parameters: {command: "false"}
          - id: cleanup
            step_type: noop
            if: always()
        """,
    )
    write_mission(
        "b_second",
        """
        name: second
        steps:
          - id: s
            step_type: noop
        """,
    )
    result = pytester.runpytest("-v", "-x", "-p", "no:randomly")
    out = result.stdout.str()
    assert "SUBPASSED[cleanup]" in out
    assert "b_second" not in out.split("short test summary")[0].split("a_first.mission.yaml::a_first")[-1]
    assert result.ret == 1


def test_step_timeout_kills_and_reports(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A step past its timeout fails with 'timed out after N s' in bounded time."""
    write_mission(
        "slow",
        """
        name: slow
        steps:
          - id: hang
            step_type: command
            timeout_seconds: 0.5
            parameters: {command: sleep 30}
        """,
    )
    start = time.monotonic()
    result = pytester.runpytest("-v")
    assert time.monotonic() - start < 10
    result.stdout.fnmatch_lines(["*SUBFAILED[[]hang[]]*", "*timed out after 0.5 s*"])


def test_mission_timeout_skips_rest_but_runs_always(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """mission_timeout_seconds stops the mission; always() steps still run."""
    write_mission(
        "mt",
        """
        name: mt
        config: {mission_timeout_seconds: 0.5}
        steps:
          - id: hang
            step_type: command
            parameters: {command: sleep 30}
          - id: later
            step_type: noop
          - id: cleanup
            step_type: noop
            if: always()
        """,
    )
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(["*SUBFAILED[[]hang[]]*", "*SUBSKIPPED[[]later[]]*", "*SUBPASSED[[]cleanup[]]*"])


def test_expression_condition_is_evaluated_not_rendered(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """`if: vars.deploy` is false when deploy is false, and a --mission-var can switch it."""
    write_mission(
        "cond",
        """
        name: cond
        vars: {deploy: false}
        steps:
          - id: deploy
            step_type: noop
            if: vars.deploy
        """,
    )
    result = pytester.runpytest("-v", "-rs")
    result.stdout.fnmatch_lines(["*SUBSKIPPED[[]deploy[]]*"])
    result = pytester.runpytest("-v", "--mission-var", "deploy=yes")
    result.stdout.fnmatch_lines(["*SUBPASSED[[]deploy[]]*"])


def test_workspace_is_fresh_with_own_home_and_tmpdir(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """Steps run in an empty workspace with HOME and TMPDIR of their own, not the machine's."""
    write_mission(
        "ws",
        """
        name: ws
        steps:
          - id: env
            step_type: command
            parameters: {command: sh, args: [-c, 'ls -A | wc -l; echo "$HOME"; echo "$TMPDIR"']}
            expect:
              stdout_matches: ["^0$", "mission-ws.*/home$", "mission-ws.*/tmp$"]
        """,
    )
    result = pytester.runpytest("-v")
    assert result.ret == 0, result.stdout.str()


def test_directories_exist_for_a_command_after_noop_steps(
    pytester: pytest.Pytester, write_mission: WriteMission
) -> None:
    """A command after noop steps still finds its workspace, HOME and TMPDIR made and empty."""
    write_mission(
        "late",
        """
        name: late
        steps:
          - id: first
            step_type: noop
          - id: env
            step_type: command
            parameters: {command: sh, args: [-c, 'test -d "$HOME" && test -d "$TMPDIR" && ls -A | wc -l']}
            expect:
              stdout_matches: ["^0$"]
        """,
    )
    result = pytester.runpytest("-v", "--mission-keep-workspace=never")
    assert result.ret == 0, result.stdout.str()


def test_environment_is_allow_listed(
    pytester: pytest.Pytester, write_mission: WriteMission, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret in the pytest environment is not visible to steps unless passed with mission_pass_env."""
    monkeypatch.setenv("DEPLOY_TOKEN", "s3cr3t-value")
    monkeypatch.setenv("MY_SETTING", "visible")
    pytester.makeini("[pytest]\nmission_pass_env = MY_*\n")
    write_mission(
        "envs",
        """
        name: envs
        steps:
          - id: env
            step_type: command
            parameters: {command: sh, args: [-c, 'echo "token=${DEPLOY_TOKEN-unset} setting=$MY_SETTING"']}
            expect:
              stdout_contains: token=unset setting=visible
        """,
    )
    result = pytester.runpytest("-v")
    assert result.ret == 0, result.stdout.str()


def test_keep_workspace_policy(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A failed mission's workspace is kept and named; a passed one is removed (default `failed`)."""
    write_mission(
        "ok",
        """
        name: ok
        steps:
          - id: w
            step_type: create_file
            parameters: {path: ok-marker.txt, content: x}
        """,
    )
    write_mission(
        "bad",
        """
        name: bad
        steps:
          - id: w
            step_type: create_file
            parameters: {path: bad-marker.txt, content: x}
          - id: f
            step_type: command
            parameters: {command: "false"}
        """,
    )
    base = pytester.path / "bt"
    result = pytester.runpytest("-v", f"--basetemp={base}")
    assert "workspace: " in result.stdout.str()
    assert list(base.rglob("bad-marker.txt"))
    assert not list(base.rglob("ok-marker.txt"))
    result = pytester.runpytest("-v", f"--basetemp={base}", "--mission-keep-workspace=always")
    assert list(base.rglob("ok-marker.txt"))
    result = pytester.runpytest("-v", f"--basetemp={base}", "--mission-keep-workspace=never")
    assert not list(base.rglob("bad-marker.txt"))


def test_copy_workspace_seeds_fixture_tree(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """`workspace: {copy: fixture}` starts from a copy; the original is untouched."""
    fixture = pytester.path / "fixture"
    fixture.mkdir()
    (fixture / "input.txt").write_text("seed\n")
    write_mission(
        "copy",
        """
        name: copy
        config: {workspace: {copy: fixture}}
        steps:
          - id: edit
            step_type: edit_file
            parameters: {path: input.txt, append: "more\\n"}
            expect:
              file_contains: {path: input.txt, text: "seed\\nmore"}
        """,
    )
    result = pytester.runpytest("-v")
    assert result.ret == 0, result.stdout.str()
    assert (fixture / "input.txt").read_text() == "seed\n"


def test_project_workspace_runs_in_rootdir(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """`workspace: project` edits the checkout itself."""
    pytester.makeini("[pytest]\n")
    write_mission(
        "proj",
        """
        name: proj
        config: {workspace: project}
        steps:
          - id: w
            step_type: create_file
            parameters: {path: generated.txt, content: made}
        """,
    )
    result = pytester.runpytest("-v")
    assert result.ret == 0, result.stdout.str()
    assert (pytester.path / "generated.txt").read_text() == "made"


def test_xdist_same_outcome(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """`-n 2` gives the same outcomes and subtest lines as a plain run."""
    for i in range(4):
        write_mission(
            f"m{i}",
            f"""
            name: m{i}
            steps:
              - id: a
                step_type: noop
              - id: b
                step_type: command
                parameters: {{command: sh, args: [-c, "exit {i % 2}"]}}
            """,
        )
    plain = pytester.runpytest("-v")
    dist = pytester.runpytest("-v", "-n", "2")
    assert plain.parseoutcomes() == dist.parseoutcomes()
    dist.stdout.fnmatch_lines(["*SUBFAILED[[]b[]]*"])
    # pytest counts failed subtests with failed items: 2 missions + their 2 failed steps.
    assert dist.parseoutcomes()["failed"] == 4
    assert dist.parseoutcomes()["passed"] == 2


def test_project_missions_need_loadgroup_under_xdist(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """Under -n a `workspace: project` mission says to use --dist loadgroup, and runs with it."""
    pytester.makeini("[pytest]\n")
    write_mission(
        "proj",
        """
        name: proj
        config: {workspace: project}
        steps:
          - id: w
            step_type: create_file
            parameters: {path: generated.txt, content: made}
        """,
    )
    result = pytester.runpytest("-v", "-n", "2", "--dist", "load")
    result.assert_outcomes(failed=1)
    assert "needs --dist loadgroup under -n" in result.stdout.str()
    assert not (pytester.path / "generated.txt").exists()
    result = pytester.runpytest("-v", "-n", "2", "--dist", "loadgroup")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "generated.txt").read_text() == "made"


def test_ini_limits_are_ceilings(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """ini mission_timeout_seconds applies to every mission; a mission may lower it, never raise it."""
    pytester.makeini("[pytest]\nmission_timeout_seconds = 0.5\n")
    write_mission(
        "slow",
        """
        name: slow
        steps:
          - id: hang
            step_type: command
            parameters: {command: sleep 30}
        """,
    )
    write_mission(
        "greedy",
        """
        name: greedy
        config: {mission_timeout_seconds: 60}
        steps: [{id: a, step_type: noop}]
        """,
    )
    start = time.monotonic()
    result = pytester.runpytest("-v")
    assert time.monotonic() - start < 15
    out = result.stdout.str()
    assert "slow.mission.yaml::slow SUBFAILED[hang]" in out
    assert "timed out after 0.5 s" in out
    assert "mission_timeout_seconds 60 is above the allowed 0.5" in out


def test_noop_mission_makes_no_directory_and_others_get_a_private_one(
    pytester: pytest.Pytester, write_mission: WriteMission
) -> None:
    """A mission of bare noop steps makes nothing under basetemp; a failed command mission keeps a 0700 one."""
    write_mission("idle", "name: idle\nsteps:\n  - id: a\n    step_type: noop\n  - id: b\n    step_type: noop\n")
    write_mission(
        "idle2",
        "name: idle2\nsteps:\n  - id: a\n    step_type: noop\n  - id: f\n    step_type: command\n"
        '    parameters: {command: "false"}\n',
    )
    base = pytester.path / "bt"
    # What basetemp holds while each step of the noop mission is reported (the mission is still running).
    pytester.makeconftest(
        f"""
        import os
        seen = set()
        def pytest_runtest_logreport(report):
            if report.nodeid.startswith("idle.mission.yaml") and report.when == "call":
                seen.update(os.listdir({str(base)!r}))
        def pytest_terminal_summary(terminalreporter):
            terminalreporter.write_line("seen while idle ran: " + repr(sorted(seen)))
        """
    )
    result = pytester.runpytest("-v", f"--basetemp={base}")
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["seen while idle ran: []"])
    assert sorted(p.name for p in base.iterdir()) == ["mission-idle20"]
    assert (base / "mission-idle20").stat().st_mode & 0o777 == 0o700
    assert (base / "mission-idle20" / "workspace").is_dir()
