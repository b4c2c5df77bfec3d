"""Programs that run a command given to them in an option (GTFOBins-style), as a data table.

Each row says where the command hides: an option whose value is a shell string (``zip -TT CMD``), an
option whose value runs a shell command after ``!`` (``vim -c '!CMD'``), a value with a prefix
(``tar --checkpoint-action=exec=CMD``), or the words after a subcommand (``git bisect run CMD``,
``tmux new -d CMD``). The shell reader hands what it finds to the same analysis as a command line,
so the inner command is judged as if it ran directly. Programs that simply run the rest of their
arguments (``unshare``, ``systemd-run``) are listed in ``WRAPPERS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pytest_rustchain.safety.facts import UNKNOWN, Word

__all__ = ["RUNNERS", "WRAPPERS", "Found", "OptionRunner", "commands_of"]

Form = Literal["shell", "bang", "prefix", "rest"]


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionRunner:
    """One way a program runs a command it is given."""

    programs: frozenset[str]
    options: tuple[str, ...] = ()
    """Spellings of the option (``-TT``, ``--unzip-command``); ``+`` matches a ``+VALUE`` word."""
    form: Form
    """``shell``: the value is a shell string. ``bang``: a value starting with ``!`` (or ``shell``)
    runs the rest as a shell string, and any other value that calls ``system(`` cannot be judged.
    ``prefix``: a value starting with ``prefix`` runs the rest. ``rest``: the words after ``sub``
    and its options are the command (one word: a shell string)."""
    sub: frozenset[str] = frozenset()
    """A subcommand that must come first among the positional words (``bisect run``: both)."""
    prefix: str = ""
    arg_options: frozenset[str] = frozenset()
    """Options (of the program or its subcommand) whose value is the next word."""
    example: str
    """A command line that runs ``rm -rf /`` through this row (the tests check it is judged so)."""


_GIT_GLOBAL = frozenset({"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env", "--exec-path"})
_TMUX_ARGS = frozenset({"-S", "-L", "-f", "-c", "-s", "-n", "-t", "-e", "-x", "-y", "-F", "-l", "-T", "-X"})
_VIMS = frozenset({"vim", "vi", "nvim", "view", "ex", "rvim", "gvim", "vimdiff"})

RUNNERS: tuple[OptionRunner, ...] = (
    OptionRunner(
        programs=frozenset({"zip"}),
        options=("-TT", "--unzip-command"),
        form="shell",
        example="zip x.zip x -T -TT 'rm -rf /'",
    ),
    OptionRunner(
        programs=frozenset({"git"}),
        sub=frozenset({"difftool", "mergetool"}),
        options=("-x", "--extcmd", "--tool-cmd"),
        form="shell",
        arg_options=_GIT_GLOBAL,
        example="git difftool -y -x 'rm -rf /'",
    ),
    OptionRunner(
        programs=frozenset({"git"}),
        sub=frozenset({"bisect"}),
        options=("run",),
        form="rest",
        arg_options=_GIT_GLOBAL,
        example="git bisect run rm -rf /",
    ),
    OptionRunner(
        programs=frozenset({"git"}),
        sub=frozenset({"grep"}),
        options=("-O", "--open-files-in-pager"),
        form="shell",
        arg_options=_GIT_GLOBAL,
        example="git grep --open-files-in-pager='rm -rf /' x",
    ),
    OptionRunner(
        programs=frozenset({"git"}),
        sub=frozenset({"rebase"}),
        options=("-x", "--exec"),
        form="shell",
        arg_options=_GIT_GLOBAL,
        example="git rebase --exec 'rm -rf /' HEAD~1",
    ),
    OptionRunner(
        programs=_VIMS,
        options=("-c", "--cmd", "+"),
        form="bang",
        example="vim -es -c '!rm -rf /' -c 'qa!'",
    ),
    OptionRunner(
        programs=frozenset({"less", "more"}),
        options=("+",),
        form="bang",
        example="less +'!rm -rf /' README",
    ),
    OptionRunner(
        programs=frozenset({"man"}),
        options=("-P", "--pager", "-H", "--html"),
        form="shell",
        example="man -P 'rm -rf /' ls",
    ),
    OptionRunner(
        programs=frozenset({"gdb"}),
        options=("-ex", "--ex", "-eval-command", "--eval-command"),
        form="bang",
        example="gdb -batch -ex '!rm -rf /'",
    ),
    OptionRunner(
        programs=frozenset({"tmux"}),
        sub=frozenset({"new", "new-session", "new-window", "neww", "split-window", "splitw", "run-shell", "run"}),
        form="rest",
        arg_options=_TMUX_ARGS,
        example="tmux new -d 'rm -rf /'",
    ),
    OptionRunner(
        programs=frozenset({"screen"}),
        form="rest",
        arg_options=frozenset({"-S", "-c", "-e", "-h", "-p", "-s", "-t", "-T", "-X", "-Logfile"}),
        example="screen -dmS x rm -rf /",
    ),
    OptionRunner(
        programs=frozenset({"tar", "bsdtar"}),
        options=("--checkpoint-action",),
        form="prefix",
        prefix="exec=",
        example="tar -cf x.tar --checkpoint=1 --checkpoint-action=exec='rm -rf /' x",
    ),
    OptionRunner(
        programs=frozenset({"tar", "bsdtar"}),
        options=(
            "--to-command",
            "-I",
            "--use-compress-program",
            "--info-script",
            "-F",
            "--new-volume-script",
            "--rsh-command",
        ),
        form="shell",
        example="tar -xf x.tar --to-command='rm -rf /'",
    ),
    OptionRunner(
        programs=frozenset({"rsync"}),
        options=("-e", "--rsh"),
        form="shell",
        example="rsync -e 'rm -rf /' x h:y",
    ),
    OptionRunner(
        programs=frozenset({"ssh", "scp", "sftp"}),
        options=("-o",),
        form="prefix",
        prefix="ProxyCommand=",
        example="ssh -o ProxyCommand='rm -rf /' h",
    ),
    OptionRunner(
        programs=frozenset({"sqlite3"}),
        options=("-cmd",),
        form="prefix",
        prefix=".shell ",
        example="sqlite3 -cmd '.shell rm -rf /' x.db",
    ),
)
"""Options that make a program run a command."""

WRAPPERS: dict[str, frozenset[str]] = {
    "unshare": frozenset({"-S", "--setuid", "-G", "--setgid", "-R", "--root", "-w", "--wd", "--propagation"}),
    "systemd-run": frozenset(
        {
            "-p",
            "--property",
            "-u",
            "--unit",
            "--description",
            "--slice",
            "-E",
            "--setenv",
            "--uid",
            "--gid",
            "--nice",
            "-D",
            "--working-directory",
            "--on-calendar",
            "--on-active",
            "--on-boot",
            "--on-startup",
            "--on-unit-active",
            "--on-unit-inactive",
            "--timer-property",
            "-H",
            "--host",
            "-M",
            "--machine",
        }
    ),
    "nsenter": frozenset({"-t", "--target", "-S", "--setuid", "-G", "--setgid", "-r", "-w"}),
    "setpriv": frozenset({"--reuid", "--regid", "--groups", "--inh-caps", "--ambient-caps", "--bounding-set"}),
    "rlwrap": frozenset({"-f", "-H", "-l", "-p", "-P", "-s", "-S", "-t"}),
    "dbus-run-session": frozenset({"--config-file", "--dbus-daemon"}),
    "ssh-agent": frozenset({"-a", "-E", "-t", "-P", "-O"}),
    "firejail": frozenset(),
    "cgexec": frozenset({"-g"}),
    "prlimit": frozenset({"-p", "--pid"}),
}
"""Programs that run the rest of their arguments as a command, with the options that take a value."""

WRAPPER_EXAMPLES = {
    "unshare": "unshare -r rm -rf /",
    "systemd-run": "systemd-run --user --on-calendar=minutely rm -rf /",
    "nsenter": "nsenter -t 1 -m rm -rf /",
    "setpriv": "setpriv --reuid 0 rm -rf /",
    "rlwrap": "rlwrap rm -rf /",
    "dbus-run-session": "dbus-run-session rm -rf /",
    "ssh-agent": "ssh-agent rm -rf /",
    "firejail": "firejail --noprofile rm -rf /",
    "cgexec": "cgexec -g cpu:x rm -rf /",
    "prlimit": "prlimit --nofile=10 rm -rf /",
}
"""For each wrapper, a command line that runs ``rm -rf /`` through it (checked by the tests)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Found:
    """A command a program was told to run: a shell string, or argv words."""

    script: Word | None = None
    argv: tuple[Word, ...] = ()


def _tail(word: Word, n: int) -> Word:
    if word.value is not None:
        rest = word.value[n:]
        return Word(text=rest, value=rest, shape=rest, home=rest.startswith("~"))
    rest = word.shape[n:]
    return Word(text=word.text[n:], value=None if UNKNOWN in rest else rest, shape=rest)


def _after_prefix(word: Word, prefix: str) -> Word | None:
    known = word.value if word.value is not None else word.shape
    if known.startswith(prefix):
        return _tail(word, len(prefix))
    return None


def _bang(word: Word) -> Found | None:
    text = word.value if word.value is not None else word.shape
    stripped = text.lstrip(": \t")
    cut = len(text) - len(stripped)
    if stripped.startswith("!"):
        return Found(script=_tail(word, cut + 1))
    for lead in ("shell ", "sh ", "silent !", "silent! !"):
        if stripped.startswith(lead):
            return Found(script=_tail(word, cut + len(lead)))
    if "system(" in stripped or "!" in stripped or UNKNOWN in stripped:
        # Ex commands can reach a shell in many ways (``call system()``, ``r !cmd``): say so.
        return Found(script=Word(text=word.text, value=None, shape=UNKNOWN))
    return None


def _value(form: Form, prefix: str, word: Word) -> Found | None:
    if form == "shell":
        return Found(script=word)
    if form == "bang":
        return _bang(word)
    if form == "prefix":
        inner = _after_prefix(word, prefix)
        return None if inner is None else Found(script=inner)
    return None


def _option_values(row: OptionRunner, args: Sequence[Word]) -> list[Found]:
    out: list[Found] = []
    n = len(args)
    i = 0
    while i < n:
        word = args[i]
        value = word.value if word.value is not None else word.shape
        matched = False
        for opt in row.options:
            if opt == "+":
                if value.startswith("+") and len(value) > 1:
                    found = _value(row.form, row.prefix, _tail(word, 1))
                    if found is not None:
                        out.append(found)
                    matched = True
                continue
            if value == opt and i + 1 < n:
                found = _value(row.form, row.prefix, args[i + 1])
                if found is not None:
                    out.append(found)
                i += 1
                matched = True
            elif value.startswith(opt + "="):
                found = _value(row.form, row.prefix, _tail(word, len(opt) + 1))
                if found is not None:
                    out.append(found)
                matched = True
            elif not opt.startswith("--") and len(opt) == 2 and value.startswith(opt) and len(value) > 2:
                # ``-Ocmd``: a short option with its value attached.
                found = _value(row.form, row.prefix, _tail(word, 2))
                if found is not None:
                    out.append(found)
                matched = True
            if matched:
                break
        i += 1
    return out


def _skip_options(args: Sequence[Word], start: int, arg_options: frozenset[str]) -> int:
    i = start
    n = len(args)
    while i < n:
        value = args[i].value
        if value is None:
            return i
        if value == "--":
            return i + 1
        if not value.startswith("-") or value == "-":
            return i
        bundled = not value.startswith("--") and len(value) > 2 and f"-{value[-1]}" in arg_options
        i += 2 if value in arg_options or bundled else 1
    return i


def _rest(words: Sequence[Word]) -> Found | None:
    if not words:
        return None
    if len(words) == 1:
        return Found(script=words[0])
    return Found(argv=tuple(words))


def commands_of(program: str, args: Sequence[Word]) -> list[Found]:
    """Every command ``program`` is told to run by ``args`` (its arguments, program name excluded)."""
    out: list[Found] = []
    for row in RUNNERS:
        if program not in row.programs:
            continue
        if not row.sub:
            if row.form == "rest":
                found = _rest(list(args[_skip_options(args, 0, row.arg_options) :]))
                if found is not None:
                    out.append(found)
            else:
                out.extend(_option_values(row, args))
            continue
        i = _skip_options(args, 0, row.arg_options)
        if i >= len(args) or args[i].value not in row.sub:
            continue
        rest = args[i + 1 :]
        if row.form == "rest" and not row.options:
            j = _skip_options(rest, 0, row.arg_options)
            found = _rest(list(rest[j:]))
            if found is not None:
                out.append(found)
        elif row.form == "rest":
            j = _skip_options(rest, 0, row.arg_options)
            if j < len(rest) and rest[j].value in row.options:
                found = _rest(list(rest[j + 1 :]))
                if found is not None:
                    out.append(found)
        else:
            out.extend(_option_values(row, rest))
    return out
