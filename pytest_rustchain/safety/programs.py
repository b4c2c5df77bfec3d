"""What the safety analyser knows about programs: shells, interpreters, wrappers, fetchers, decoders."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "BUILTINS",
    "DECODER_ALWAYS",
    "FETCHERS",
    "INTERPRETERS",
    "LOADER_VARIABLES",
    "SHELLS",
    "Interpreter",
    "interpreter_for",
    "is_loader_variable",
]

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "posh", "rbash", "ksh93", "pdksh"})
"""Shells whose ``-c`` string or script the analyser reads as shell."""

BUILTINS = frozenset(
    {
        ":",
        ".",
        "[",
        "alias",
        "bg",
        "break",
        "builtin",
        "cd",
        "command",
        "continue",
        "declare",
        "echo",
        "eval",
        "exec",
        "exit",
        "export",
        "false",
        "fg",
        "getopts",
        "hash",
        "jobs",
        "let",
        "local",
        "popd",
        "printf",
        "pushd",
        "pwd",
        "read",
        "readonly",
        "return",
        "set",
        "shift",
        "source",
        "test",
        "times",
        "trap",
        "true",
        "type",
        "typeset",
        "ulimit",
        "umask",
        "unalias",
        "unset",
        "wait",
    }
)
"""Names the shell never looks up on PATH, so a PATH entry in the workspace cannot replace them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Interpreter:
    """How one interpreter takes code: inline (``-c``/``-e``), from a script argument, or from stdin."""

    family: str
    code_flags: frozenset[str]
    """Short flags (one letter) or long flags whose argument is program text."""
    arg_flags: frozenset[str] = frozenset()
    """Flags that take an argument which is not code (skipped when looking for the script)."""
    attached_flags: frozenset[str] = frozenset()
    """Short flags whose value is the rest of the same word only (``perl -Mstrict``, ``-i.bak``)."""
    module_flags: frozenset[str] = frozenset()
    """Flags that run an installed module instead of a script (``python -m pytest``)."""
    script_flags: frozenset[str] = frozenset()
    """Flags whose argument is the script file (``php -f x.php``)."""
    reads_stdin: bool = True
    """Without code or script, the interpreter runs what arrives on stdin."""


_PY = Interpreter(
    family="python",
    code_flags=frozenset({"c"}),
    arg_flags=frozenset({"W", "X", "--check-hash-based-pycs"}),
    module_flags=frozenset({"m"}),
)
_PERL = Interpreter(
    family="perl",
    code_flags=frozenset({"e", "E"}),
    attached_flags=frozenset({"I", "M", "m", "x", "i", "l", "0", "C", "d", "D", "F"}),
)
_RUBY = Interpreter(
    family="ruby",
    code_flags=frozenset({"e"}),
    arg_flags=frozenset({"I", "r", "C"}),
    attached_flags=frozenset({"E", "x", "K", "T", "W", "0", "i", "F"}),
)
_NODE = Interpreter(
    family="node",
    code_flags=frozenset({"e", "p", "--eval", "--print"}),
    arg_flags=frozenset({"r", "C", "--require", "--import", "--loader", "--experimental-loader", "--conditions"}),
)
_PHP = Interpreter(
    family="php",
    code_flags=frozenset({"r", "B", "R", "E"}),
    arg_flags=frozenset({"c", "d", "z", "t"}),
    script_flags=frozenset({"f"}),
)
_LUA = Interpreter(family="lua", code_flags=frozenset({"e"}), arg_flags=frozenset({"l"}))
_R = Interpreter(family="r", code_flags=frozenset({"e"}), reads_stdin=False)
_OSA = Interpreter(family="osascript", code_flags=frozenset({"e"}), arg_flags=frozenset({"l"}))
_TCL = Interpreter(family="tcl", code_flags=frozenset())
_SHELL = Interpreter(
    family="shell",
    code_flags=frozenset({"c"}),
    arg_flags=frozenset({"o", "O", "+o", "+O", "--rcfile", "--init-file"}),
)

INTERPRETERS: dict[str, Interpreter] = {
    **dict.fromkeys(SHELLS, _SHELL),
    "perl": _PERL,
    "ruby": _RUBY,
    "node": _NODE,
    "nodejs": _NODE,
    "bun": _NODE,
    "php": _PHP,
    "lua": _LUA,
    "luajit": _LUA,
    "Rscript": _R,
    "R": _R,
    "osascript": _OSA,
    "tclsh": _TCL,
    "wish": _TCL,
    "jshell": _TCL,
    "irb": _TCL,
}

_PYTHON_NAME = re.compile(r"^(?:python|pypy)(?:[23](?:\.\d+)?)?[tdmu]*$")
_VERSIONED = re.compile(r"^(perl|ruby|php|lua|node)[\d.]+$")


def interpreter_for(program: str) -> Interpreter | None:
    """The interpreter named ``program`` (``python3.11``, ``perl5.36``, ``bash``), if it is one."""
    found = INTERPRETERS.get(program)
    if found is not None:
        return found
    if _PYTHON_NAME.match(program):
        return _PY
    versioned = _VERSIONED.match(program)
    if versioned:
        return INTERPRETERS.get(versioned.group(1))
    return None


FETCHERS = frozenset(
    {
        "curl",
        "wget",
        "fetch",
        "aria2c",
        "http",
        "https",
        "xh",
        "nc",
        "ncat",
        "netcat",
        "socat",
        "telnet",
        "ssh",
        "lwp-request",
        "lwp-download",
        "GET",
        "POST",
        "ftp",
        "lftp",
        "tftp",
        "s_client",
    }
)
"""Programs whose output comes from the network: piping it into an interpreter runs remote code."""

DECODER_ALWAYS = frozenset(
    {
        "gunzip",
        "zcat",
        "bzcat",
        "xzcat",
        "zstdcat",
        "lzcat",
        "lz4cat",
        "unxz",
        "unzstd",
        "bunzip2",
        "uncompress",
        "uudecode",
        "rev",
    }
)
"""Programs that always turn their input into different bytes (decompressors, ``rev``)."""

_DECODE_FLAG = {
    "base64": ("-d", "--decode", "-D"),
    "base32": ("-d", "--decode"),
    "basenc": ("-d", "--decode"),
    "xxd": ("-r", "-revert"),
    "gzip": ("-d", "--decompress", "--uncompress"),
    "bzip2": ("-d", "--decompress"),
    "xz": ("-d", "--decompress"),
    "zstd": ("-d", "--decompress"),
    "lz4": ("-d", "--decompress"),
    "openssl": ("-d", "-base64", "base64", "-a"),
}

_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]|[0-7]|u[0-9a-fA-F]|U[0-9a-fA-F])")


def is_decoder(program: str, args: Sequence[str | None]) -> bool:
    """True when ``program args`` turns encoded input into something else (``base64 -d``, ``xxd -r``)."""
    if program in DECODER_ALWAYS:
        return True
    flags = _DECODE_FLAG.get(program)
    if flags is not None:
        for arg in args:
            if arg is None:
                continue
            if arg in flags:
                return True
            # Short flags are often bundled: ``base64 -di``.
            if arg.startswith("-") and not arg.startswith("--") and any(f[1:] in arg[1:] for f in flags if len(f) == 2):
                return True
        return False
    if program == "tr":
        positional = [a for a in args if a is None or not a.startswith("-")]
        # ``tr -d '\r'`` only deletes; translating one set into another can hide a script (rot13).
        return len(positional) >= 2
    if program in ("printf", "echo"):
        return any(a is not None and _ESCAPE.search(a) for a in args)
    return False


LOADER_VARIABLES = frozenset(
    {
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "LD_ORIGIN_PATH",
        "LD_PROFILE",
        "DYLD_INSERT_LIBRARIES",
        "DYLD_LIBRARY_PATH",
        "DYLD_FRAMEWORK_PATH",
        "BASH_ENV",
        "ENV",
        "PROMPT_COMMAND",
        "PS4",
        "SHELLOPTS",
        "BASHOPTS",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "PYTHONINSPECT",
        "NODE_OPTIONS",
        "PERL5OPT",
        "PERL5DB",
        "RUBYOPT",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "GCONV_PATH",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_SYSTEM",
        "GIT_EXEC_PATH",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_ASKPASS",
        "SSH_ASKPASS",
        "GIT_EXTERNAL_DIFF",
        "GIT_PAGER",
        "GIT_EDITOR",
        "GIT_TEMPLATE_DIR",
    }
)
"""Variables that make a trusted program load or run other code before it does its job.

``PYTHONPATH``, ``NODE_PATH``, ``PERL5LIB``, ``RUBYLIB`` and ``CLASSPATH`` are deliberately absent:
they only add module directories, ``PYTHONPATH=src pytest`` is routine, and whatever they reach is
workspace code the mission could run directly anyway.
"""

_LOADER_PREFIXES = ("BASH_FUNC_", "GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_")


def is_loader_variable(name: str) -> bool:
    """True for variables that tamper with how other programs load (``LD_PRELOAD``, ``BASH_ENV``)."""
    return name in LOADER_VARIABLES or name.startswith(_LOADER_PREFIXES)
