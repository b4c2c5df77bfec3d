"""End-to-end safety: blocked steps, a canary outside the workspace, dry run, policy and secrets."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

WriteMission = Callable[[str, str], None]

DANGEROUS = [
    "rm -rf {canary}",
    'r""m -rf {canary}',
    "\\rm -rf {canary}",
    "/bin/rm -rf {canary}",
    "env rm -rf {canary}",
    "command rm -rf {canary}",
    "sh -c 'rm -rf {canary}'",
    "find {canary} -delete",
    "echo {canary} | xargs rm -rf",
    'X={canary}; rm -rf "$X"',
    "cp /etc/hostname {canary}/planted",
    "echo pwned > {canary}/keep.txt",
    "echo pwned >> {canary}/keep.txt",
    "tee {canary}/keep.txt < /dev/null",
    "mv {canary}/keep.txt {canary}/moved.txt",
    "cd {canary} && rm -rf .",
    "chmod 000 {canary}/keep.txt",
]


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
        digest.update(oct(path.stat().st_mode).encode())
    return digest.hexdigest()


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """A directory outside every mission workspace that dangerous missions try to destroy."""
    path = tmp_path / "canary"
    path.mkdir()
    (path / "keep.txt").write_text("precious\n")
    return path


@pytest.mark.parametrize("sandbox", ["none", "auto"])
def test_canary_survives_every_dangerous_mission(
    pytester: pytest.Pytester, write_mission: WriteMission, canary: Path, sandbox: str
) -> None:
    """Each dangerous command is BLOCKED, fails its mission, and the canary stays byte-identical."""
    before = _tree_digest(canary)
    for i, template in enumerate(DANGEROUS):
        command = template.format(canary=canary)
        write_mission(
            f"d{i:02d}",
            f"""
            name: d{i}
            steps:
              - id: attack
                step_type: command
                continue_on_error: true
                parameters:
                  shell: true
                  command: {json.dumps(command)}
            """,
        )
    result = pytester.runpytest("-v", f"--mission-sandbox={sandbox}", "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert _tree_digest(canary) == before
    assert len(re.findall(r"::d\d\d SUBFAILED\[attack\]", out)) == len(DANGEROUS), out
    assert out.count("BLOCKED step 'attack'") >= len(DANGEROUS)
    result.assert_outcomes(failed=2 * len(DANGEROUS))


def test_blocked_step_fails_mission_despite_threshold(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A blocked step fails its mission even under success_threshold, with rule id and hint."""
    write_mission(
        "blk",
        """
        name: blk
        config: {success_threshold: 0.1}
        steps:
          - id: ok1
            step_type: noop
          - id: ok2
            step_type: noop
          - id: cleanup
            step_type: command
            parameters: {command: "rm -rf ~"}
        """,
    )
    result = pytester.runpytest("-v", "--junitxml=junit.xml")
    out = result.stdout.str()
    result.stdout.fnmatch_lines(["*SUBFAILED[[]cleanup[]]*"])
    junit = (pytester.path / "junit.xml").read_text()
    assert '<property name="risk_max" value="100"' in junit
    assert "BLOCKED step 'cleanup' (blk.mission.yaml:9) risk 100 (critical), policy standard" in out
    assert "RC-FS-001" in out
    assert "HINT:" in out and "RC-FS-001@blk.mission.yaml::cleanup" in out
    assert result.ret == 1


def test_written_script_is_judged_as_its_content(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A script an earlier step wrote is analysed when a later step runs it."""
    write_mission(
        "wr",
        """
        name: wr
        steps:
          - id: write
            step_type: create_file
            parameters: {path: x.sh, content: "rm -rf ~\\n"}
          - id: run
            step_type: command
            parameters: {command: bash x.sh}
        """,
    )
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(["*SUBPASSED[[]write[]]*", "*SUBFAILED[[]run[]]*", "*BLOCKED step 'run'*"])


def test_false_friends_run(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """echo "rm -rf /", grep sudo, rm -rf build/ inside the workspace and ls /usr/bin are allowed."""
    write_mission(
        "friends",
        """
        name: friends
        steps:
          - id: echo
            step_type: command
            parameters: {command: echo, args: ["rm -rf /"]}
          - id: notes
            step_type: create_file
            parameters: {path: notes.txt, content: "run sudo apt install\\n"}
          - id: grep
            step_type: command
            parameters: {command: grep sudo notes.txt}
          - id: build
            step_type: command
            parameters: {shell: true, command: "mkdir -p build/x && rm -rf build/"}
          - id: ls
            step_type: command
            parameters: {command: ls /usr/bin}
        """,
    )
    result = pytester.runpytest("-v")
    assert result.ret == 0, result.stdout.str()


def test_dry_run_runs_nothing_and_leaves_tree_identical(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """--mission-dry-run prints verdicts, passes safe missions, fails blocked ones, changes no file."""
    write_mission(
        "safe",
        """
        name: safe
        config: {workspace: project}
        steps:
          - id: mk
            step_type: command
            parameters: {command: mkdir -p made-by-mission}
          - id: write
            step_type: create_file
            parameters: {path: made-by-mission/x.txt, content: x}
        """,
    )
    write_mission(
        "unsafe",
        """
        name: unsafe
        steps:
          - id: push
            step_type: command
            parameters: {command: git push origin main}
        """,
    )
    before = _tree_digest(pytester.path)
    result = pytester.runpytest(
        "-v", "--mission-dry-run", "-p", "no:cacheprovider", f"--basetemp={pytester.path.parent / 'bt-dry'}"
    )
    assert _tree_digest(pytester.path) == before
    out = result.stdout.str()
    assert "mission dry run" in out
    assert "allowed  risk   0  write" in out
    assert "after: mk (inferred: path made-by-mission/x.txt is under made-by-mission/)" in out
    assert "BLOCKED  risk  70  push" in out
    result.assert_outcomes(passed=1, failed=2)


def test_floor_and_mission_tightening(
    pytester: pytest.Pytester, write_mission: WriteMission, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MISSION_SAFETY_FLOOR wins over a looser configuration; a mission may tighten, never loosen."""
    pytester.makeini("[pytest]\nmission_safety = permissive\n")
    body = """
        name: n
        steps:
          - id: push
            step_type: command
            parameters: {command: git push origin main}
        """
    write_mission("push", body)
    result = pytester.runpytest("-v")
    assert "safety policy permissive" in result.stdout.str()
    monkeypatch.setenv("MISSION_SAFETY_FLOOR", "standard")
    result = pytester.runpytest("-v")
    assert "safety policy standard (blocks at risk 70), raised from permissive by MISSION_SAFETY_FLOOR=standard" in (
        result.stdout.str()
    )
    result.stdout.fnmatch_lines(["*SUBFAILED[[]push[]]*"])
    monkeypatch.delenv("MISSION_SAFETY_FLOOR")
    pytester.makeini("[pytest]\nmission_safety = strict\n")
    write_mission("loose", "name: l\nconfig: {safety: permissive}\nsteps: [{id: a, step_type: noop}]\n")
    result = pytester.runpytest("-v", "loose.mission.yaml")
    assert "config.safety: permissive is looser than the configured policy strict" in result.stdout.str()


def test_allow_rules_are_scoped_and_shown_in_header(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """An allow entry scoped to one step unblocks only that step, and the header names its file."""
    pytester.makeini("[pytest]\nmission_allow_rules = RC-PERS-004@a.mission.yaml::cfg\n")
    step = "steps: [{id: cfg, step_type: command, parameters: {command: git config --global core.hooksPath hooks}}]\n"
    write_mission("a", "name: a\n" + step)
    write_mission("b", "name: b\n" + step)
    result = pytester.runpytest("-v")
    out = result.stdout.str()
    assert "rustchain: mission_allow_rules from tox.ini: RC-PERS-004@a.mission.yaml::cfg" in out
    assert "a.mission.yaml::a SUBPASSED[cfg]" in out
    assert "b.mission.yaml::b SUBFAILED[cfg]" in out
    assert "BLOCKED step 'cfg' (b.mission.yaml:" in out


def test_secret_canary_never_appears(
    pytester: pytest.Pytester, write_mission: WriteMission, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret from the environment is masked raw, base64- and URL-encoded in terminal and JUnit XML."""
    secret = "canary-9f3a7e1c-secret"
    monkeypatch.setenv("API_TOKEN", secret)
    pytester.makeini("[pytest]\nmission_pass_env = API_TOKEN\n")
    write_mission(
        "leak",
        """
        name: leak
        steps:
          - id: raw
            step_type: command
            parameters:
              shell: true
              command: >-
                echo "$API_TOKEN"; echo "$API_TOKEN" | base64;
                python3 -c "import os,urllib.parse as u;print(u.quote(os.environ['API_TOKEN']+'/x'))";
                echo "err $API_TOKEN" >&2; exit 1
        """,
    )
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest("-v", f"--junitxml={junit}")
    out = result.stdout.str() + result.stderr.str()
    import base64 as b64
    import urllib.parse

    forms = [secret, b64.b64encode(secret.encode()).decode()[:20], urllib.parse.quote(secret)]
    for text in (out, junit.read_text()):
        for form in forms:
            assert form not in text
    assert "***" in out


def test_github_actions_workflow_commands_are_neutralised(
    pytester: pytest.Pytester, write_mission: WriteMission, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With GITHUB_ACTIONS=true a failing step's `::error::` output cannot become a workflow command."""
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    write_mission(
        "gha",
        """
        name: gha
        steps:
          - id: forge
            step_type: command
            parameters:
              shell: true
              command: 'echo "::add-mask::x"; echo "::error file=a.py,line=1::forged" >&2; exit 1'
        """,
    )
    result = pytester.runpytest("-v")
    lines = result.stdout.lines
    assert not any(line.lstrip().startswith("::") for line in lines)
    assert any("forged" in line for line in lines)


def _table_rows() -> list[tuple[str, int, int]]:
    """The analyser's HOSTILE.md C table and false friends, as (line, lowest, highest score)."""
    import importlib.util

    path = Path(__file__).parent.parent / "unit" / "test_safety_table.py"
    spec = importlib.util.spec_from_file_location("safety_table_rows", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = []
    for param in [*module.HOSTILE_C, *module.FALSE_FRIENDS]:
        line, low, high, _rule = param.values
        rows.append((line, int(low), int(high)))
    return rows


def test_every_hostile_row_gets_its_verdict_through_the_plugin(pytester: pytest.Pytester) -> None:
    """Each HOSTILE.md C row and false friend, run as a mission step, is blocked exactly when it should be."""
    expected: dict[str, bool] = {}
    for i, (line, low, high) in enumerate(_table_rows()):
        if low < 70 <= high:
            continue  # the table allows a range across the blocking line; the unit table checks it
        doc = {
            "name": f"c{i}",
            "steps": [{"id": "s", "step_type": "command", "parameters": {"shell": True, "command": line}}],
        }
        pytester.path.joinpath(f"c{i:03d}.mission.yaml").write_text(json.dumps(doc))
        expected[f"c{i:03d}"] = low >= 70
    result = pytester.runpytest("--mission-dry-run", "-p", "no:cacheprovider", "-q")
    out = result.stdout.str()
    blocked = set(re.findall(r"^(c\d{3})\.mission\.yaml::c\d{3}\n  BLOCKED", out, re.MULTILINE))
    allowed = set(re.findall(r"^(c\d{3})\.mission\.yaml::c\d{3}\n  allowed", out, re.MULTILINE))
    assert blocked | allowed == set(expected)
    assert blocked == {k for k, v in expected.items() if v}


def test_a_virtualenv_is_trusted_by_its_pyvenv_cfg_not_its_name(pytester: pytest.Pytester) -> None:
    """Under strict, a venv a step made (any name) runs its python; a fake `.venv/bin/python` is blocked."""
    pytester.makefile(
        ".mission.yaml",
        real="""
        name: real venv
        steps:
          - id: make
            step_type: command
            parameters: {command: "{{ python }}", args: [-m, venv, --without-pip, .mission-venv]}
          - id: use
            step_type: command
            parameters: {command: .mission-venv/bin/python, args: [-m, site]}
            expect: {stdout_contains: mission-venv}
          - id: in-one-line
            step_type: command
            parameters: {shell: true, command: "{{ python }} -m venv --without-pip v2 && v2/bin/python -m site"}
        """,
        fake="""
        name: fake venv
        steps:
          - id: plant
            step_type: command
            parameters: {shell: true, command: "mkdir -p .venv/bin && cp /bin/echo .venv/bin/python"}
          - id: use
            step_type: command
            parameters: {command: .venv/bin/python, args: [-m, site]}
        """,
    )
    result = pytester.runpytest("-v", "-p", "no:cacheprovider", "--mission-safety=strict", "--mission-sandbox=none")
    result.stdout.fnmatch_lines(["real.mission.yaml*SUBPASSED[[]use[]]*", "*SUBPASSED[[]in-one-line[]]*"])
    result.stdout.fnmatch_lines(["*BLOCKED step 'use'*", "*RC-EXEC-005*.venv/bin/python*"])
    result.stdout.fnmatch_lines(["fake.mission.yaml*1/2*failed", "real.mission.yaml*3/3*passed"])
    assert result.ret == 1
