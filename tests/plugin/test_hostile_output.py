"""Hostile missions against what pytest prints and reports: secrets, workflow commands, hangs, templates."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

WriteMission = Callable[[str, str], None]

SECRET = "ghp_S3cr3tT0kenValue/42+xyz"


@pytest.fixture
def secret_env(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MY_API_TOKEN", SECRET)
    pytester.makeini("[pytest]\nmission_pass_env = MY_API_TOKEN\n")
    return SECRET


def test_secret_as_output_name_and_under_showlocals(
    pytester: pytest.Pytester, write_mission: WriteMission, secret_env: str
) -> None:
    """A secret written as an output name is masked in the JSON report, and a crashing template under
    ``-l`` prints no locals holding it (terminal and JUnit)."""
    write_mission(
        "leak",
        """
        name: leak
        config: {fail_fast: false}
        steps:
          - id: outname
            step_type: command
            parameters: {shell: true, command: 'echo "${MY_API_TOKEN}=1" >> "$MISSION_OUTPUT"'}
          - id: crash
            step_type: noop
            parameters:
              message: "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(env.MY_API_TOKEN) }}"
        """,
    )
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest("-v", "-l", f"--junitxml={junit}", "--mission-report=report.json")
    out = result.stdout.str() + result.stderr.str()
    report = (pytester.path / "report.json").read_text(encoding="utf-8")
    for text in (out, junit.read_text(encoding="utf-8"), report):
        assert secret_env not in text
        assert secret_env[::-1] not in text
    assert "recursion" in out
    assert '"***": "1"' in report or '"***":"1"' in report


def test_workflow_commands_from_names_keys_and_legacy_output(
    pytester: pytest.Pytester, write_mission: WriteMission, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under GITHUB_ACTIONS no line pytest prints starts a workflow command, and ``##[`` is neutralised
    anywhere in step output, in a mission name and in a YAML key."""
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    write_mission(
        "out",
        """
        name: out
        steps:
          - id: out
            step_type: command
            parameters:
              shell: true
              command: |
                echo '##[error]legacy anywhere'
                echo 'build ok ##[add-mask]ghp_anything'
                echo '##[stop-commands]tok123'
                exit 1
        """,
    )
    write_mission(
        "name",
        'name: "looks harmless\\n::error title=From the name::injected ##[add-mask]x"\n'
        "steps:\n  - {id: fail, step_type: command, parameters: {command: 'false'}}\n",
    )
    write_mission(
        "key",
        'name: key\nsteps:\n  - id: s\n    step_type: noop\n    "x\\n::warning title=From a key::injected": 1\n',
    )
    result = pytester.runpytest("-v")
    out = result.stdout.str() + result.stderr.str()
    assert "legacy anywhere" in out
    assert "##[" not in out
    for line in out.splitlines():
        assert not re.match(r"\s*::(error|warning)", line), line


def test_user_patterns_and_fifos_never_hang(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """Catastrophic regexes (edit_file, expect, schema pattern) and a FIFO in file_contains fail their
    steps with the reason, and the session ends."""
    write_mission(
        "dos",
        """
        name: dos
        config: {fail_fast: false}
        steps:
          - id: seed
            step_type: create_file
            parameters: {path: f.txt, content: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"}
          - id: edit
            step_type: edit_file
            depends_on: [seed]
            parameters:
              path: f.txt
              regex: {pattern: "^(a|aa)+$", replacement: "b"}
          - id: out
            step_type: command
            parameters: {command: python3, args: ["-c", "print('a' * 200 + '!')"]}
            expect: {stdout_matches: "^(a|aa)+$"}
          - id: schema
            step_type: validate_schema
            parameters:
              data: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"
              schema: {type: string, pattern: "^(a|aa)+$"}
          - id: pipe
            step_type: command
            parameters: {command: mkfifo, args: [report.txt]}
            expect:
              file_contains: {path: report.txt, text: ok}
          - id: loops
            step_type: noop
            parameters:
              message: "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}done"
        """,
    )
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    out = result.stdout.str()
    for step in ("edit", "out", "schema", "pipe", "loops"):
        assert f"SUBFAILED[{step}]" in out, step
    assert out.count("took longer than") >= 3
    assert "'^(a|aa)+$'" in out
    assert "not a regular file" in out
    assert "loop iterations" in out


def test_templates_come_from_the_mission_tree(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A create_file template is read only below the mission's directory, never from .git, and the
    dry run reports the read."""
    pytester.path.joinpath(".git").mkdir()
    pytester.path.joinpath(".git", "config").write_text("[http]\n\textraheader = AUTHORIZATION: basic x\n")
    pytester.path.joinpath("sub").mkdir()
    pytester.path.joinpath("outside.txt").write_text("outside\n")
    pytester.path.joinpath("sub", "ok.txt.j2").write_text("hello {{ 1 + 1 }}\n")
    step = "steps: [{id: copy, step_type: create_file, parameters: {path: x.txt, template: %s}}]\n"
    pytester.path.joinpath("sub", "git.mission.yaml").write_text("name: git\n" + step % "../.git/config")
    pytester.path.joinpath("sub", "up.mission.yaml").write_text("name: up\n" + step % "../outside.txt")
    pytester.path.joinpath("sub", "ok.mission.yaml").write_text("name: ok\n" + step % "ok.txt.j2")
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert "extraheader" not in out
    assert "is outside the mission's directory" in out
    assert re.search(r"sub/ok\.mission\.yaml::ok PASSED", out)
    dry = pytester.runpytest("--mission-dry-run", "-p", "no:cacheprovider", "sub/ok.mission.yaml")
    assert "RC-FS-012" in dry.stdout.str()


def test_dry_run_reports_an_analysis_too_complex(pytester: pytest.Pytester, write_mission: WriteMission) -> None:
    """A shell function fan-out is reported as too complex to analyse in the dry run, quickly."""
    calls = "; ".join(["f{n}"] * 10)
    body = "\n".join(f"        f{i}() {{ {calls.format(n=i + 1)}; }}" for i in range(7))
    write_mission(
        "fan",
        "name: fan\nsteps:\n  - id: run\n    step_type: command\n    parameters:\n      shell: true\n"
        f"      command: |\n{body}\n        f7() {{ true; }}\n        f0\n",
    )
    result = pytester.runpytest("--mission-dry-run", "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert re.search(r"risk +40 +run +command +RC-PARSE-003", out), out
