"""Unit tests of the step-level safety check: what it judges for each kind of step."""

from __future__ import annotations

import venv
from pathlib import Path

from pytest_rustchain.guard import Guard
from pytest_rustchain.model import Step
from pytest_rustchain.safety import Policy


def _step(step_type: str, **params: object) -> Step:
    return Step(id="s", name="s", step_type=step_type, parameters=params, line=3, source="m.yaml")


def _guard(tmp_path: Path, level: str = "standard") -> Guard:
    return Guard(policy=Policy(level=level), workspace=tmp_path / "ws", mission_path="m.yaml")


def test_sh_c_argv_is_judged_as_the_script(tmp_path: Path) -> None:
    """`sh -c SCRIPT` given as argv is judged as SCRIPT: its own `$X` is not an unknown command part."""
    guard = _guard(tmp_path)
    quiet = guard.judge(_step("command", command="sh", args=["-c", 'echo "$NAME" >> "$MISSION_OUTPUT"']), {
        "command": "sh", "args": ["-c", 'echo "$NAME" >> "$MISSION_OUTPUT"']})  # fmt: skip
    assert quiet.score == 0
    params = {"command": "sh", "args": ["-c", "cd / && rm -rf home"]}
    loud = guard.judge(_step("command", **params), params)
    assert loud.blocked and loud.score == 100


def test_dry_run_fills_in_values_known_before_the_run(tmp_path: Path) -> None:
    """`{{ python }}` and `{{ vars.x }}` are filled in for the dry run; step outputs stay unknown."""
    guard = _guard(tmp_path, "strict")
    step = _step("command", command="{{ python }}", args=["-m", "compileall", "{{ vars.src }}"])
    known = {"python": "/usr/bin/python3", "vars": {"src": "src"}}
    assert guard.judge_raw(step, known).score == 0
    assert guard.judge_raw(step, {}).score == 40
    danger = _step("command", shell=True, command="rm -rf {{ vars.target }}")  # noqa: S604 - a mission step, judged not run
    assert guard.judge_raw(danger, {"vars": {"target": "/"}}).blocked


def test_unknown_template_parts_raise_but_do_not_block(tmp_path: Path) -> None:
    """A template part that cannot be known raises the score; it blocks only with a literal word too."""
    guard = _guard(tmp_path)
    maybe = _step("command", shell=True, command="rm -rf {{ steps.probe.stdout }}")  # noqa: S604 - a mission step, judged not run
    verdict = guard.judge_raw(maybe)
    assert verdict.score == 100 and not verdict.blocked
    always = _step("command", shell=True, command="rm -rf /srv/{{ steps.probe.stdout }}")  # noqa: S604 - a mission step, judged not run
    assert guard.judge_raw(always).blocked


def test_file_steps_are_judged_on_their_paths(tmp_path: Path) -> None:
    """Reading .git/config and writing outside the workspace are high; a plain write is info."""
    guard = _guard(tmp_path)
    read = _step("read_file", path=".git/config")
    assert guard.judge(read, read.parameters).blocked
    outside = _step("create_file", path="/etc/cron.d/x", content="x")
    assert guard.judge(outside, outside.parameters).score >= 70
    inside = _step("create_file", path="src/a.py", content="x")
    assert guard.judge(inside, inside.parameters).score == 0


def test_blocked_text_names_rule_location_and_fix(tmp_path: Path) -> None:
    """The explanation gives the step, its file and line, the rule, and a scoped allow entry."""
    params = {"command": "git push origin main"}
    verdict = _guard(tmp_path).judge(_step("command", **params), params)
    text = verdict.explanation
    assert text.startswith("BLOCKED step 's' (m.yaml:3) risk 70 (high), policy standard")
    assert "RC-NET-004" in text
    assert "HINT:" in text and "RC-NET-004@m.yaml::s" in text


def _venv(path: Path) -> Path:
    """A real virtualenv (no pip: quick), as `python -m venv` writes it."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(path)
    return path


def test_a_virtualenv_on_disk_is_trusted_by_its_pyvenv_cfg(tmp_path: Path) -> None:
    """At run time `.mission-venv/bin/python -m pip ...` is pip when `.mission-venv` holds a pyvenv.cfg."""
    guard = _guard(tmp_path, "strict")
    params = {"command": ".mission-venv/bin/python", "args": ["-m", "pip", "install", "requests"]}
    step = _step("command", **params)
    assert guard.judge(step, params).blocked
    _venv(tmp_path / "ws" / ".mission-venv")
    assert guard.judge(step, params).score == 0


def test_a_folder_named_venv_without_pyvenv_cfg_is_not_trusted(tmp_path: Path) -> None:
    """A `.venv/bin/python` script with no pyvenv.cfg next to bin/ is an unknown workspace program."""
    fake = tmp_path / "ws" / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho pretend\n")
    fake.chmod(0o755)
    guard = _guard(tmp_path, "strict")
    params = {"command": ".venv/bin/python", "args": ["-m", "pytest"]}
    verdict = guard.judge(_step("command", **params), params)
    assert verdict.blocked
    assert "RC-EXEC-005" in {f.rule_id for f in verdict.verdict.findings}
    # A pyvenv.cfg without the `home` key a virtualenv has is not enough either.
    (tmp_path / "ws" / ".venv" / "pyvenv.cfg").write_text("version = 3.11\n")
    assert guard.judge(_step("command", **params), params).blocked


def test_a_link_to_a_virtualenv_outside_the_workspace_is_not_trusted(tmp_path: Path) -> None:
    """A workspace `.venv` that is a symlink to a real virtualenv elsewhere is not vouched for."""
    outside = _venv(tmp_path / "elsewhere")
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / ".venv").symlink_to(outside)
    guard = _guard(tmp_path, "strict")
    params = {"command": ".venv/bin/python", "args": ["-m", "pytest"]}
    assert guard.judge(_step("command", **params), params).blocked


def test_dry_run_trusts_a_virtualenv_an_earlier_step_makes(tmp_path: Path) -> None:
    """The dry run, where nothing exists, trusts `D/bin/...` after a step that runs `python -m venv D`."""
    guard = _guard(tmp_path, "strict")
    use = _step("command", command=".mission-venv/bin/python", args=["-m", "pytest"])
    assert guard.judge_raw(use).blocked
    make = _step("command", command="{{ python }}", args=["-m", "venv", ".mission-venv"])
    assert guard.judge_raw(make, {"python": "/usr/bin/python3"}).score == 0
    assert guard.judge_raw(use).score == 0


def test_dry_run_of_a_project_workspace_trusts_its_virtualenv_on_disk(tmp_path: Path) -> None:
    """A project checkout's own virtualenv exists before the run: the dry run trusts it as the run will."""
    guard = Guard(policy=Policy(level="strict"), workspace=tmp_path, workspace_kind="project", mission_path="m.yaml")
    use = _step("command", command="env-3.11/bin/python", args=["-m", "pytest"])
    assert guard.judge_raw(use).blocked
    _venv(tmp_path / "env-3.11")
    assert guard.judge_raw(use).score == 0


def test_a_path_into_a_workspace_virtualenv_is_judged_again_once_the_virtualenv_exists(tmp_path: Path) -> None:
    """With the mission's PATH starting at `.mission-venv/bin`, `pytest` is an unknown workspace program
    until a step makes that virtualenv; from then on it is judged by name, under the same PATH."""
    guard = _guard(tmp_path, "strict")
    (tmp_path / "ws").mkdir()
    env = {"PATH": ".mission-venv/bin:/usr/bin:/bin"}
    params = {"command": "pytest", "args": ["-q"]}
    for _ in range(2):  # the same command line under the same PATH, step after step
        before = guard.judge(_step("command", **params), params, env=env)
        assert "RC-EXEC-006" in {f.rule_id for f in before.verdict.findings}
    _venv(tmp_path / "ws" / ".mission-venv")
    after = guard.judge(_step("command", **params), params, env=env)
    assert after.score == 0
    plain = {"PATH": "/usr/bin:/bin"}
    assert guard.judge(_step("command", **params), params, env=plain).score == 0
    assert guard.judge(_step("command", **params), params, env=plain).score == 0
