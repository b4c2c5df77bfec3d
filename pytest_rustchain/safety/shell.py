"""Shell command lines read as facts: tree-sitter-bash parsing, normalisation, wrappers and cwd tracking."""

from __future__ import annotations

import functools
import posixpath
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from pytest_rustchain.safety import programs, runners
from pytest_rustchain.safety.facts import UNKNOWN, Command, Issue, Redirect, Script, Word, literal
from pytest_rustchain.safety.paths import HOME_ROOT, Where, locate, where_of
from pytest_rustchain.safety.patterns import LazyPattern

if TYPE_CHECKING:
    from tree_sitter import Node, Parser

__all__ = ["MAX_DEPTH", "find_start_points", "parses", "read_argv", "read_line"]


@functools.cache
def _parser() -> Parser:
    """tree-sitter and its bash grammar, loaded by the first command line that needs parsing: an argv
    command (``command: true``) is read without them."""
    import tree_sitter_bash
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_bash.language()))


MAX_DEPTH = 16
"""How many scripts deep (``sh -c`` in ``eval`` in a written script ...) the reader follows."""
_MAX_NODE_DEPTH = 100
"""Syntax nesting walked recursively, nested scripts included; below it the reader switches to a flat
scan that judges every remaining command on its own, so deep nesting cannot hide one."""
_SCRIPT_COST = 4
"""Nesting budget one nested script uses up (it costs several Python frames)."""
_MAX_CWDS = 8
_MAX_FANOUT = 4
WORK_BUDGET = 20_000
"""Work units (statements and words visited) one analysis may spend. Function calls, nested scripts
and loops multiply the work; past the budget the reader stops and reports the line as too complex."""


class _Exhausted(Exception):
    """The work budget ran out."""


_STATEMENTS = frozenset(
    {
        "command",
        "pipeline",
        "list",
        "redirected_statement",
        "subshell",
        "compound_statement",
        "do_group",
        "program",
        "if_statement",
        "while_statement",
        "for_statement",
        "c_style_for_statement",
        "case_statement",
        "function_definition",
        "declaration_command",
        "unset_command",
        "variable_assignment",
        "variable_assignments",
        "negated_command",
        "test_command",
        "file_redirect",
        "heredoc_redirect",
        "herestring_redirect",
    }
)
_WORDS = frozenset(
    {
        "word",
        "string",
        "raw_string",
        "ansi_c_string",
        "translated_string",
        "concatenation",
        "simple_expansion",
        "expansion",
        "command_substitution",
        "process_substitution",
        "arithmetic_expansion",
        "number",
        "brace_expression",
        "extglob_pattern",
        "regex",
    }
)
_REDIRECTS = frozenset({"file_redirect", "heredoc_redirect", "herestring_redirect"})
_TOOL_DIR = LazyPattern(r"(?:^|/)(?:\.local|\.cargo|go|\.npm-global|\.bun)/bin/?$|(?:^|/)node_modules/\.bin/?$")
"""Install directories of package managers other than virtualenvs, whose programs are judged by name.
A virtualenv is recognised by what it is (its ``pyvenv.cfg``), never by its folder name."""
_ACTIVATE = LazyPattern(r"^(?:(.*)/)?bin/activate(?:\.\w+)?$")
_VENV_MODULES = frozenset({"venv", "virtualenv"})
_VENV_VALUE_FLAGS = frozenset(
    {"--prompt", "-p", "--python", "--index-url", "--extra-index-url", "--creator", "--seeder", "--activators"}
)
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_STDIN_SCRIPTS = frozenset({"-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"})
_READ_ONLY = frozenset(
    {
        "cat",
        "ls",
        "grep",
        "head",
        "tail",
        "wc",
        "file",
        "stat",
        "test",
        "[",
        "echo",
        "printf",
        "diff",
        "cmp",
        "sha256sum",
        "md5sum",
        "sha1sum",
        "less",
        "more",
        "chmod",
        "source",
        ".",
        "cd",
        "pushd",
    }
)
"""Programs that never change file contents, so files an earlier command wrote stay as they were."""


class _Ctx(NamedTuple):
    upstream: tuple[Command, ...] = ()
    pipe: bool = False
    bg: bool = False
    level: int = 0


@dataclass(slots=True)
class _State:
    """What the shell knows at one point: cwd candidates, variables, PATH, files this line wrote."""

    cwd: tuple[str, ...] | None
    vars: dict[str, Word] = field(default_factory=dict)
    path_ws: bool = False
    files: dict[str, str | None] = field(default_factory=dict)
    fetched: set[str] = field(default_factory=set)
    positional: tuple[Word, ...] | None = None
    """``$1 ...`` as separate words, when every one of them is known to exist (``"$@"``)."""
    venvs: frozenset[str] = frozenset()
    """Workspace-relative virtualenvs this line made (``python -m venv .v && .v/bin/pip ...``)."""

    def copy(self) -> _State:
        return _State(
            self.cwd, dict(self.vars), self.path_ws, dict(self.files), set(self.fetched), self.positional, self.venvs
        )

    def merge(self, other: _State) -> None:
        """Join two possible states after a branch: what differs becomes a set or unknown."""
        if self.cwd is None or other.cwd is None:
            self.cwd = None
        elif self.cwd != other.cwd:
            joined = tuple(dict.fromkeys(self.cwd + other.cwd))
            self.cwd = joined if len(joined) <= _MAX_CWDS else None
        for name in set(self.vars) | set(other.vars):
            mine, theirs = self.vars.get(name), other.vars.get(name)
            if mine != theirs:
                self.vars[name] = _unknown_word(f"${name}", mine, theirs)
        self.path_ws = self.path_ws or other.path_ws
        for rel in set(self.files) | set(other.files):
            if self.files.get(rel, "") != other.files.get(rel, ""):
                self.files[rel] = None
        self.fetched |= other.fetched
        if self.positional != other.positional:
            self.positional = None
        # A virtualenv counts as made only when every branch made it.
        self.venvs &= other.venvs


def _unknown_word(text: str, *sources: Word | None) -> Word:
    return Word(
        text=text,
        value=None,
        shape=UNKNOWN,
        fetches=any(s is not None and s.fetches for s in sources),
        decodes=any(s is not None and s.decodes for s in sources),
    )


class _Acc:
    """Accumulates the parts of one word while it is evaluated."""

    __slots__ = ("brace", "decodes", "fetches", "glob", "home", "procsub", "shape", "split", "text")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.shape: list[str] = []
        self.glob = False
        self.brace = False
        self.home = False
        self.fetches = False
        self.decodes = False
        self.procsub = False
        self.split = False

    def lit(self, value: str, display: str | None = None) -> None:
        self.text.append(value if display is None else display)
        self.shape.append(value)

    def unknown(self, display: str) -> None:
        self.text.append(display)
        self.shape.append(UNKNOWN)

    def build(self) -> Word:
        shape = "".join(self.shape)
        return Word(
            text="".join(self.text),
            value=None if UNKNOWN in shape else shape,
            shape=shape,
            glob=self.glob,
            brace=self.brace,
            home=self.home,
            fetches=self.fetches,
            decodes=self.decodes,
            procsub=self.procsub,
        )


_ASCII_ONLY = bytes.maketrans(bytes(range(128, 256)), b"a" * 128)


def _parse(text: str) -> tuple[Node, bytes]:
    """``_parse_text``, remembered for the last command lines (a mission runs the same line again, in
    its repeats and in the steps of a loop); long scripts are parsed each time rather than kept.
    Trees are only read, never edited, so the same tree serves every analysis of its text."""
    return _parse_cached(text) if len(text) <= _CACHED_TEXT else _parse_text(text)


@functools.lru_cache(maxsize=256)
def _parse_cached(text: str) -> tuple[Node, bytes]:
    return _parse_text(text)


def _parse_text(text: str) -> tuple[Node, bytes]:
    """Parse ``text``; returns the root node and the source bytes that node offsets refer to.

    tree-sitter-bash's scanner passes code points to ``isalpha()`` and friends, which is undefined
    above 255 and crashes on some characters. Outside ASCII no character is shell syntax, so the
    parser gets a copy with every non-ASCII byte replaced by a letter; offsets stay the same and all
    text is read from the original bytes.
    """
    raw = _join_continuations(text).encode("utf-8", "surrogatepass")
    safe = raw if raw.isascii() else raw.translate(_ASCII_ONLY)
    return _parser().parse(safe).root_node, raw


def _unescape_word(raw: str) -> tuple[str, bool, bool]:
    """Backslash removal for an unquoted word; also whether it holds unquoted glob or brace syntax."""
    if "\\" not in raw:
        glob = "*" in raw or "?" in raw or "[" in raw
        brace = "{" in raw and "," in raw
        return raw, glob, brace
    out: list[str] = []
    glob = brace = False
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            out.append(raw[i + 1])
            i += 2
            continue
        if ch in "*?[":
            glob = True
        elif ch == "{":
            brace = True
        out.append(ch)
        i += 1
    return "".join(out), glob, brace and "," in raw


_SHELL_META = re.compile(r"[\"'\\$`;&|<>(){}\[\]*?\n]")
_PLAIN_SPECIAL = re.compile(r"[\\~*?\[{]")
_DQ_ESCAPE = re.compile(r"\\([$`\"\\\n])")


def _dq_unescape(raw: str) -> str:
    if "\\" not in raw:
        return raw
    return _DQ_ESCAPE.sub(lambda m: "" if m.group(1) == "\n" else m.group(1), raw)


_ANSI_SIMPLE = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "e": "\x1b",
    "E": "\x1b",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
}
_ANSI = LazyPattern(r"\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|c.|.)", re.DOTALL)


def decode_escapes(raw: str) -> str:
    """Decode backslash escapes as ``$'...'``, ``echo -e`` and ``printf`` do."""

    def repl(m: re.Match[str]) -> str:
        esc = m.group(1)
        head = esc[0]
        try:
            if head in "xuU" and len(esc) > 1:
                return chr(int(esc[1:], 16))
            if head in "01234567":
                return chr(int(esc, 8) & 0xFF)
        except (ValueError, OverflowError):
            return m.group(0)
        if head == "c" and len(esc) == 2:
            return chr(ord(esc[1]) & 0x1F)
        return _ANSI_SIMPLE.get(esc, m.group(0))

    return _ANSI.sub(repl, raw)


def _join_continuations(text: str) -> str:
    """Remove backslash-newline pairs, as bash does before it splits words (``r\\<newline>m``)."""
    if "\\\n" not in text:
        return text
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            if text[i + 1] == "\n":
                i += 2
                continue
            out.append(text[i : i + 2])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _shebang_is_shell(content: str) -> bool:
    if not content.startswith("#!"):
        return True
    parts = content[2:].split("\n", 1)[0].split()
    if not parts:
        return True
    prog = posixpath.basename(parts[0])
    if prog == "env":
        rest = [p for p in parts[1:] if not p.startswith("-")]
        prog = posixpath.basename(rest[0]) if rest else ""
    return prog in programs.SHELLS


def _known(words: Sequence[Word]) -> list[str | None]:
    return [w.value for w in words]


class _Reader:
    """Walks tree-sitter trees of one command line (and the scripts it runs) into a ``Script``."""

    def __init__(
        self,
        *,
        workspace: str,
        written: Mapping[str, str],
        venvs: Callable[[str], bool] | None = None,
    ) -> None:
        self.ws = workspace
        self.written = written
        self.venvs = venvs
        """Answers whether a workspace-relative directory is a virtualenv (the caller looks at disk)."""
        self.script = Script()
        self.depth = 0
        self.functions: dict[str, tuple[Node, _State, bytes]] = {}
        self.called: set[str] = set()
        self.active: set[str] = set()
        self.flattening = False
        self.src = b""
        """Source bytes of the tree being walked; node offsets index into it."""
        self.units = 0
        self.aliases: dict[str, str] = {}

    def tick(self) -> None:
        self.units += 1
        if self.units > WORK_BUDGET:
            raise _Exhausted

    def text(self, node: Node) -> str:
        return self.src[node.start_byte : node.end_byte].decode("utf-8", "replace")

    # ----------------------------------------------------------------- sources

    def source(self, text: str, st: _State, ctx: _Ctx) -> None:
        root, raw = _parse(text)
        outer = self.src
        self.src = raw
        try:
            if root.has_error:
                self.script.issues.append(Issue(kind="parse", evidence=_join_continuations(text).strip()))
            defined_before = set(self.functions)
            self.seq(root, st, ctx)
            for name in [n for n in self.functions if n not in defined_before]:
                if name not in self.called and not self.flattening:
                    # A function that is never called in this text still says what the author meant.
                    body, saved, _ = self.functions[name]
                    self.called.add(name)
                    self.stmt(body, saved.copy(), _Ctx(level=ctx.level))
        finally:
            self.src = outer

    def nested(
        self,
        text: str,
        st: _State,
        ctx: _Ctx,
        *,
        evidence: str,
        positional: Sequence[Word] | None = None,
    ) -> bool:
        """Analyse ``text`` as a script run from here; False when it is too deep to follow."""
        if self.flattening:
            return False
        if positional is not None:
            _bind_positional(st, positional)
        level = ctx.level + _SCRIPT_COST
        if self.depth >= MAX_DEPTH or level > _MAX_NODE_DEPTH:
            self.script.issues.append(Issue(kind="depth", evidence=evidence))
            # Still judge each command of the script on its own; only deeper scripts are lost.
            root, raw = _parse(text)
            outer = self.src
            self.src = raw
            try:
                self.flat(root, st)
            finally:
                self.src = outer
            return False
        self.depth += 1
        try:
            self.source(text, st, _Ctx(upstream=ctx.upstream, pipe=ctx.pipe, level=level))
        finally:
            self.depth -= 1
        return True

    def flat(self, root: Node, st: _State) -> None:
        """Judge every command and redirect below ``root`` on its own, iteratively.

        Used when the syntax is nested too deeply to walk with context: pipelines, cd and nested
        scripts are not followed, but no command is skipped.
        """
        if self.flattening:
            return
        self.flattening = True
        try:
            stack = [root]
            while stack:
                self.tick()
                node = stack.pop()
                kind = node.type
                if kind == "command":
                    self.flat_command(node, st.copy())
                elif kind == "file_redirect":
                    self.flat_redirect(node, st)
                elif kind == "function_definition":
                    name_node = node.child_by_field_name("name")
                    body = node.child_by_field_name("body")
                    if name_node is not None and body is not None:
                        self.functions.setdefault(self.text(name_node), (body, st.copy(), self.src))
                stack.extend(reversed(node.named_children))
        finally:
            self.flattening = False

    def flat_command(self, node: Node, st: _State) -> None:
        words: list[Word] = []
        assigns: list[tuple[str, Word]] = []
        ctx = _Ctx(level=_MAX_NODE_DEPTH)
        for child in node.named_children:
            kind = child.type
            if kind == "command_name":
                words.extend(self.shallow(part, st, ctx) for part in child.named_children)
            elif kind == "variable_assignment":
                name_node = child.child_by_field_name("name")
                value_node = child.child_by_field_name("value")
                if name_node is not None:
                    value = self.shallow(value_node, st, ctx) if value_node is not None else literal("")
                    assigns.append((self.text(name_node), value))
            elif kind in _WORDS:
                words.append(self.shallow(child, st, ctx))
        for name, value in assigns:
            self.script.assignments.append((name, value))
        if words:
            self.simple(words, assigns, (), None, st, ctx)

    def flat_redirect(self, node: Node, st: _State) -> None:
        op = next((c.type for c in node.children if not c.is_named), "")
        target = next((c for c in node.named_children if c.type in _WORDS), None)
        if target is None:
            return
        word = self.shallow(target, st, _Ctx(level=_MAX_NODE_DEPTH))
        write = op in (">", ">>", ">|", "&>", "&>>", ">&", "<>")
        read = op in ("<", "<>", "<&")
        if op in (">&", "<&") and word.value is not None and (word.value == "-" or word.value.isdigit()):
            return
        self.script.redirects.append(Redirect(op=op, target=word, cwd=st.cwd, write=write, read=read))

    def shallow(self, node: Node, st: _State, ctx: _Ctx) -> Word:
        """A word's value when it has no nested structure; otherwise an unknown word."""
        if _is_shallow(node):
            return self.word(node, st, ctx)
        return Word(text=self.text(node)[:40], value=None, shape=UNKNOWN)

    def skeleton(
        self,
        word: Word,
        st: _State,
        ctx: _Ctx,
        *,
        evidence: str,
        positional: Sequence[Word] | None = None,
    ) -> None:
        """Analyse the known parts of a script whose text is partly unknown (``sh -c "rm -rf $X"``).

        The unknown parts become an unset variable; the caller still reports the script as opaque,
        since an unknown part may hold any shell syntax.
        """
        text = word.shape.replace(UNKNOWN, "${__rc_unknown}")
        if text.replace("${__rc_unknown}", "").strip():
            self.nested(text, st, ctx, evidence=evidence, positional=positional)

    # -------------------------------------------------------------- statements

    def seq(self, node: Node, st: _State, ctx: _Ctx) -> None:
        children = node.children
        last = len(children) - 1
        for i, child in enumerate(children):
            if not child.is_named:
                continue
            bg = i < last and children[i + 1].type == "&"
            self.stmt(child, st, ctx._replace(bg=bg) if bg != ctx.bg else ctx)

    def stmt(self, node: Node, st: _State, ctx: _Ctx) -> None:
        self.tick()
        if ctx.level > _MAX_NODE_DEPTH:
            self.too_deep(node, st)
            return
        ctx = _Ctx(ctx.upstream, ctx.pipe, ctx.bg, ctx.level + 1)
        kind = node.type
        if kind == "command":
            self.command(node, st, ctx)
        elif kind == "pipeline":
            self.pipeline(node.named_children, st, ctx)
        elif kind == "list":
            self.and_or(node, st, ctx)
        elif kind == "redirected_statement":
            self.redirected(node, st, ctx)
        elif kind == "subshell":
            self.seq(node, st.copy(), ctx)
        elif kind in ("compound_statement", "do_group", "program", "negated_command"):
            self.seq(node, st, ctx)
        elif kind == "if_statement":
            self.if_statement(node, st, ctx)
        elif kind in ("while_statement", "for_statement", "c_style_for_statement"):
            self.loop(node, st, ctx)
        elif kind == "case_statement":
            self.case(node, st, ctx)
        elif kind == "function_definition":
            self.function(node, st, ctx)
        elif kind == "declaration_command":
            self.declaration(node, st, ctx)
        elif kind == "variable_assignment":
            name, word = self.assignment(node, st, ctx)
            self.assign(name, word, st)
        elif kind == "variable_assignments":
            for child in node.named_children:
                self.stmt(child, st, ctx)
        elif kind in _REDIRECTS:
            redirects: list[Redirect] = []
            self.redirect(node, st, ctx, redirects, [], [])
            self.script.redirects.extend(redirects)
        elif kind in ("comment", "heredoc_body", "heredoc_start", "heredoc_end"):
            return
        elif kind in _WORDS:
            self.word(node, st, ctx)
        else:
            # ERROR nodes, test expressions, arithmetic: whatever they hold is still looked at.
            self.generic(node, st, ctx)

    def too_deep(self, node: Node, st: _State) -> None:
        if not self.flattening:
            self.script.issues.append(Issue(kind="depth", evidence=self.text(node)[:80]))
            self.flat(node, st)

    def generic(self, node: Node, st: _State, ctx: _Ctx) -> None:
        if ctx.level > _MAX_NODE_DEPTH:
            self.too_deep(node, st)
            return
        ctx = _Ctx(ctx.upstream, ctx.pipe, ctx.bg, ctx.level + 1)
        for child in node.named_children:
            kind = child.type
            if kind in _STATEMENTS:
                self.stmt(child, st, ctx)
            elif kind in _WORDS:
                self.word(child, st, ctx)
            elif child.named_child_count:
                self.generic(child, st, ctx)

    def pipeline(self, elements: Sequence[Node], st: _State, ctx: _Ctx) -> None:
        upstream = ctx.upstream
        for element in elements:
            start = len(self.script.commands)
            # Each element runs in a subshell: its cd and variables do not leak.
            self.stmt(element, st.copy(), ctx._replace(upstream=upstream, pipe=True))
            upstream = upstream + tuple(self.script.commands[start:])

    def and_or(self, node: Node, st: _State, ctx: _Ctx) -> None:
        seen_op = False
        op = ""
        venvs_before = st.venvs
        for child in node.children:
            if not child.is_named:
                if child.type in ("&&", "||"):
                    seen_op = True
                    op = child.type
                continue
            if not seen_op:
                self.stmt(child, st, ctx)
            else:
                branch = st.copy()
                if op == "||":
                    # What runs after ``||`` runs because the left side failed: a virtualenv it was
                    # making may not exist.
                    branch.venvs = venvs_before
                self.stmt(child, branch, ctx)
                st.merge(branch)

    def redirected(self, node: Node, st: _State, ctx: _Ctx) -> None:
        body = node.child_by_field_name("body")
        redirects: list[Redirect] = []
        extra: list[Word] = []
        pending: list[Node] = []
        stdin: tuple[Word, bool] | None = None
        for child in node.children:
            if child.type in _REDIRECTS:
                found = self.redirect(child, st, ctx, redirects, extra, pending)
                if found is not None:
                    stdin = found
        start = len(self.script.commands)
        if body is not None and body.type == "command":
            self.command(node=body, st=st, ctx=ctx, outer=redirects, extra=extra, stdin=stdin)
        else:
            self.script.redirects.extend(redirects)
            if body is not None:
                self.stmt(body, st, ctx)
        produced = tuple(self.script.commands[start:])
        for item in pending:
            self.continuation(item, produced, st, ctx)

    def continuation(self, node: Node, produced: tuple[Command, ...], st: _State, ctx: _Ctx) -> None:
        """Statements tree-sitter hangs under a heredoc: ``cat <<EOF | sh`` or ``cat <<EOF && x``."""
        if node.type == "pipeline":
            self.pipeline(node.named_children, st, ctx._replace(upstream=ctx.upstream + produced))
        else:
            branch = st.copy()
            self.stmt(node, branch, ctx)
            st.merge(branch)

    def if_statement(self, node: Node, st: _State, ctx: _Ctx) -> None:
        after_then = False
        branches: list[_State] = []
        current: _State | None = None
        for child in node.children:
            kind = child.type
            if kind == "then":
                after_then = True
                current = st.copy()
                branches.append(current)
                continue
            if not child.is_named:
                continue
            if kind in ("elif_clause", "else_clause"):
                branch = st.copy()
                self.seq(child, branch, ctx)
                branches.append(branch)
            elif after_then and current is not None:
                self.stmt(child, current, ctx)
            else:
                self.stmt(child, st, ctx)
        has_else = any(c.type == "else_clause" for c in node.children)
        if has_else and branches:
            merged = branches[0]
            for other in branches[1:]:
                merged.merge(other)
            _assign_state(st, merged)
        else:
            for branch in branches:
                st.merge(branch)

    def loop(self, node: Node, st: _State, ctx: _Ctx) -> None:
        body = node.child_by_field_name("body")
        for child in node.named_children:
            if child is body or child == body:
                continue
            if node.type == "for_statement" and child.type == "variable_name":
                st.vars[self.text(child)] = _unknown_word(f"${self.text(child)}")
                continue
            self.stmt(child, st, ctx)
        if body is not None:
            branch = st.copy()
            self.stmt(body, branch, ctx)
            st.merge(branch)

    def case(self, node: Node, st: _State, ctx: _Ctx) -> None:
        branches: list[_State] = []
        for child in node.named_children:
            if child.type == "case_item":
                branch = st.copy()
                for part in child.named_children:
                    if part.type in _STATEMENTS:
                        self.stmt(part, branch, ctx)
                branches.append(branch)
            else:
                self.stmt(child, st, ctx)
        for branch in branches:
            st.merge(branch)

    def function(self, node: Node, st: _State, ctx: _Ctx) -> None:
        name_node = node.child_by_field_name("name")
        body = node.child_by_field_name("body")
        if name_node is None or body is None:
            return
        name = self.text(name_node)
        if _spawns_itself(body, name, self.text, in_pipe=False):
            self.script.issues.append(Issue(kind="fork-bomb", evidence=self.text(node)))
        self.functions[name] = (body, st.copy(), self.src)

    def call(self, name: str, words: Sequence[Word], st: _State, ctx: _Ctx) -> None:
        body, _, src = self.functions[name]
        if name in self.active or self.flattening:
            return
        if self.depth >= MAX_DEPTH or ctx.level + _SCRIPT_COST > _MAX_NODE_DEPTH:
            # Left uncalled, the body is still walked on its own at the end of its text.
            self.script.issues.append(Issue(kind="depth", evidence=name))
            return
        self.called.add(name)
        saved = {k: st.vars.get(k) for k in _POSITIONAL_KEYS}
        _bind_positional(st, words)
        self.active.add(name)
        self.depth += 1
        outer = self.src
        self.src = src
        try:
            self.stmt(body, st, _Ctx(upstream=ctx.upstream, pipe=ctx.pipe, level=ctx.level + _SCRIPT_COST))
        finally:
            self.src = outer
            self.depth -= 1
            self.active.discard(name)
            for key, old in saved.items():
                if old is None:
                    st.vars.pop(key, None)
                else:
                    st.vars[key] = old

    def declaration(self, node: Node, st: _State, ctx: _Ctx) -> None:
        keyword = ""
        args: list[Word] = []
        for child in node.children:
            if not child.is_named:
                keyword = keyword or child.type
                continue
            if child.type == "variable_assignment":
                name, word = self.assignment(child, st, ctx)
                self.assign(name, word, st)
                args.append(literal(f"{name}={word.text}"))
            elif child.type == "variable_name":
                args.append(literal(self.text(child)))
            else:
                args.extend(self.words(child, st, ctx))
        self.emit(
            Command(
                program=keyword,
                program_word=literal(keyword),
                args=tuple(args),
                display=" ".join([keyword, *(a.text for a in args)]),
                cwd=st.cwd,
            )
        )

    def assignment(self, node: Node, st: _State, ctx: _Ctx) -> tuple[str, Word]:
        name_node = node.child_by_field_name("name")
        value_node = node.child_by_field_name("value")
        name = self.text(name_node) if name_node is not None else ""
        if "[" in name:
            name = name.split("[", 1)[0]
        if value_node is None:
            return name, literal("")
        if value_node.type == "array":
            inner = [self.word(c, st, ctx) for c in value_node.named_children]
            return name, _unknown_word(self.text(value_node), *inner)
        word = self.word(value_node, st, ctx)
        if any(c.type == "+=" for c in node.children):
            return name, _unknown_word(f"${name}", word, st.vars.get(name))
        return name, word

    def assign(self, name: str, word: Word, st: _State) -> None:
        st.vars[name] = word
        self.script.assignments.append((name, word))
        if name == "PATH":
            st.path_ws = self.path_in_workspace(word, st)

    def is_venv(self, rel: str, st: _State) -> bool:
        """True when the workspace directory ``rel`` is a virtualenv: made earlier on this line, or
        known to the caller (a ``pyvenv.cfg`` on disk). Its folder name says nothing."""
        rel = posixpath.normpath(rel or ".")
        if rel in st.venvs:
            return True
        return self.venvs is not None and self.venvs(rel)

    def tool_dir(self, rel_dir: str, st: _State) -> bool:
        """A workspace directory whose programs a package manager installed: they are judged by name."""
        rel_dir = posixpath.normpath(rel_dir or ".")
        if _TOOL_DIR.search(rel_dir):
            return True
        head, tail = posixpath.split(rel_dir)
        return tail == "bin" and self.is_venv(head, st)

    def path_in_workspace(self, word: Word, st: _State) -> bool:
        """True when a PATH value puts a workspace directory (other than a tool install dir) first."""
        for entry in word.text.split(":"):
            if entry in ("$PATH", "${PATH}"):
                continue
            home = entry.startswith(("~", "$HOME", "${HOME}"))
            if home:
                rest = entry.split("/", 1)[1] if "/" in entry else ""
                if _TOOL_DIR.search(rest):
                    continue
                return True
            if "$" in entry or "`" in entry:
                if entry.startswith(("$PWD", "${PWD}")):
                    rest = entry.split("/", 1)[1] if "/" in entry else ""
                    if self.tool_entry(rest, st):
                        continue
                return True
            if entry.startswith("/"):
                where, rel = where_of(posixpath.normpath(entry), self.ws)
                if where is Where.INSIDE and not self.tool_dir(rel, st):
                    return True
                continue
            relative_in_ws = st.cwd is None or any(where_of(c, self.ws)[0] is Where.INSIDE for c in st.cwd)
            if relative_in_ws and not self.tool_entry(entry, st):
                return True
        return False

    def tool_entry(self, entry: str, st: _State) -> bool:
        """A PATH entry relative to the current directory that is a tool install dir from every place
        the shell may be in."""
        if _TOOL_DIR.search(posixpath.normpath(entry or ".")):
            return True
        if st.cwd is None:
            return False
        for base in st.cwd:
            where, rel = where_of(posixpath.normpath(posixpath.join(base, entry)), self.ws)
            if where is not Where.INSIDE or not self.tool_dir(rel, st):
                return False
        return True

    # ---------------------------------------------------------------- redirects

    def redirect(
        self,
        node: Node,
        st: _State,
        ctx: _Ctx,
        into: list[Redirect],
        extra: list[Word],
        pending: list[Node],
    ) -> tuple[Word, bool] | None:
        """Record one redirect; returns the stdin it provides (word, is_text) if any."""
        kind = node.type
        fd: int | None = None
        op = ""
        stdin: tuple[Word, bool] | None = None
        if kind == "file_redirect":
            targets: list[Word] = []
            for child in node.children:
                if child.type == "file_descriptor":
                    try:
                        fd = int(self.text(child))
                    except ValueError:
                        fd = None
                elif not child.is_named:
                    op = op or child.type
                elif child.type in _WORDS:
                    targets.extend(self.words(child, st, ctx))
                elif child.type != "ERROR":
                    self.generic(child, st, ctx)
            if not targets:
                return None
            target, rest = targets[0], targets[1:]
            following = node.next_sibling
            if (
                rest
                and rest[-1].value is not None
                and rest[-1].value.isdigit()
                and following is not None
                and following.type == "file_redirect"
                and following.start_byte == node.end_byte
            ):
                # ``> x 0>&1``: tree-sitter reads the ``0`` as a second target; it is the next fd.
                rest = rest[:-1]
            # tree-sitter files words after the target under the redirect; bash passes them as args.
            extra.extend(rest)
            value = target.value
            if op in (">&", "<&") and value is not None and (value == "-" or value.rstrip("-").isdigit()):
                # Duplicating or closing a descriptor names no file.
                return None
            write = op in (">", ">>", ">|", "&>", "&>>", ">&", "<>")
            read = op in ("<", "<>", "<&")
            into.append(Redirect(op=op, target=target, cwd=st.cwd, write=write, read=read, fd=fd))
            if read and fd in (None, 0):
                stdin = (target, False)
            return stdin
        if kind == "herestring_redirect":
            for child in node.named_children:
                if child.type in _WORDS:
                    word = self.word(child, st, ctx)
                    return (word, True)
            return None
        # heredoc_redirect
        quoted = False
        body: Word | None = None
        strip_tabs = False
        for child in node.children:
            ctype = child.type
            if ctype == "<<-":
                strip_tabs = True
            elif ctype == "heredoc_start":
                quoted = any(q in self.text(child) for q in "'\"\\")
            elif ctype == "heredoc_body":
                body = self.heredoc_body(child, quoted, strip_tabs, st, ctx)
            elif ctype in _REDIRECTS:
                found = self.redirect(child, st, ctx, into, extra, pending)
                if found is not None:
                    stdin = found
            elif child.is_named and ctype not in ("heredoc_end",):
                pending.append(child)
        if body is not None:
            return (body, True)
        return stdin

    def heredoc_body(self, node: Node, quoted: bool, strip_tabs: bool, st: _State, ctx: _Ctx) -> Word:
        raw = self.text(node)
        if quoted or node.named_child_count == 0:
            if strip_tabs:
                raw = "\n".join(line.lstrip("\t") for line in raw.split("\n"))
            return literal(raw)
        acc = _Acc()
        data = self.src[node.start_byte : node.end_byte]
        base = node.start_byte
        pos = 0
        for child in node.named_children:
            start = child.start_byte - base
            if start > pos:
                acc.lit(_dq_unescape(data[pos:start].decode("utf-8", "replace")))
            if child.type == "heredoc_content":
                acc.lit(_dq_unescape(self.text(child)))
            else:
                self.part(child, st, ctx, acc, quoted=True)
            pos = child.end_byte - base
        if pos < len(data):
            acc.lit(_dq_unescape(data[pos:].decode("utf-8", "replace")))
        return acc.build()

    # -------------------------------------------------------------------- words

    def words(self, node: Node, st: _State, ctx: _Ctx) -> list[Word]:
        """The words one syntax node becomes, after field splitting of known unquoted values."""
        kind = node.type
        if kind == "word" or kind == "number":
            raw = self.text(node)
            if not _PLAIN_SPECIAL.search(raw):
                # Most words are plain text: skip the general evaluator.
                return [Word(text=raw, value=raw, shape=raw)]
        if st.positional is not None and _is_all_args(node, self.text):
            # ``"$@"`` and ``$@`` are the positional parameters, each its own word.
            return list(st.positional)
        acc = _Acc()
        self.part(node, st, ctx, acc, quoted=False)
        word = acc.build()
        if acc.split and word.value is not None:
            ifs = st.vars.get("IFS")
            if ifs is not None and ifs.value is not None:
                pieces = [p for p in re.split("[" + re.escape(ifs.value or " ") + "]", word.value) if p]
            else:
                pieces = word.value.split()
            return [Word(text=piece, value=piece, shape=piece, glob=any(c in piece for c in "*?[")) for piece in pieces]
        return [word]

    def word(self, node: Node, st: _State, ctx: _Ctx) -> Word:
        acc = _Acc()
        self.part(node, st, ctx, acc, quoted=False)
        return acc.build()

    def part(self, node: Node, st: _State, ctx: _Ctx, acc: _Acc, *, quoted: bool) -> None:
        if ctx.level > _MAX_NODE_DEPTH:
            self.too_deep(node, st)
            acc.unknown(self.text(node)[:40])
            return
        ctx = _Ctx(ctx.upstream, ctx.pipe, ctx.bg, ctx.level + 1)
        kind = node.type
        if kind == "word":
            raw = self.text(node)
            if quoted:
                acc.lit(raw)
                return
            if not acc.shape and raw.startswith("~"):
                acc.home = True
            value, glob, brace = _unescape_word(raw)
            acc.glob = acc.glob or glob
            acc.brace = acc.brace or brace
            acc.lit(value)
        elif kind == "raw_string":
            acc.lit(self.text(node)[1:-1])
        elif kind == "ansi_c_string":
            acc.lit(decode_escapes(self.text(node)[2:-1]))
        elif kind in ("string", "translated_string"):
            self.string(node, st, ctx, acc)
        elif kind == "concatenation":
            plain: list[str] = []
            for child in node.children:
                if child.is_named:
                    if child.type == "word":
                        plain.append(self.text(child))
                    self.part(child, st, ctx, acc, quoted=quoted)
                else:
                    acc.lit(self.text(child))
            if not quoted and plain and plain[0].startswith("{"):
                # tree-sitter splits ``{/a,b}`` into the words ``{``, ``/a,b`` and ``}``.
                joined = "".join(plain)
                acc.brace = acc.brace or ("," in joined and "}" in joined)
        elif kind in ("simple_expansion", "expansion"):
            self.expansion(node, st, ctx, acc, quoted=quoted)
        elif kind == "command_substitution":
            raw = self.text(node)
            lead = raw[: len(raw) - len(raw.lstrip())]
            if lead:
                acc.lit(lead)
            output, fetches, decodes = self.substitution(node, st, ctx)
            acc.fetches = acc.fetches or fetches
            acc.decodes = acc.decodes or decodes
            if output is None:
                acc.unknown(raw.strip())
            else:
                acc.lit(output, raw.strip())
                if not quoted and any(c.isspace() for c in output):
                    acc.split = True
        elif kind == "process_substitution":
            start = len(self.script.commands)
            self.seq(node, st.copy(), ctx._replace(upstream=(), pipe=False))
            inner = self.script.commands[start:]
            acc.procsub = True
            acc.fetches = acc.fetches or any(c.fetches for c in inner)
            acc.decodes = acc.decodes or any(c.decodes for c in inner)
            acc.unknown(self.text(node))
        elif kind in ("number", "regex", "variable_name", "special_variable_name", "test_operator"):
            acc.lit(self.text(node))
        elif kind == "extglob_pattern":
            acc.glob = True
            acc.lit(self.text(node))
        elif kind == "brace_expression":
            acc.brace = True
            acc.lit(self.text(node))
        else:
            self.generic(node, st, ctx)
            acc.unknown(self.text(node))

    def string(self, node: Node, st: _State, ctx: _Ctx, acc: _Acc) -> None:
        data = self.src[node.start_byte : node.end_byte]
        base = node.start_byte
        pos = 2 if node.type == "translated_string" else 1
        end = len(data) - 1
        for child in node.children:
            if not child.is_named:
                continue
            start = child.start_byte - base
            if start > pos:
                acc.lit(_dq_unescape(data[pos:start].decode("utf-8", "replace")))
            if child.type == "string_content":
                acc.lit(_dq_unescape(self.text(child)))
            else:
                self.part(child, st, ctx, acc, quoted=True)
            pos = child.end_byte - base
        if pos < end:
            acc.lit(_dq_unescape(data[pos:end].decode("utf-8", "replace")))

    def expansion(self, node: Node, st: _State, ctx: _Ctx, acc: _Acc, *, quoted: bool) -> None:
        raw = self.text(node)
        stripped = raw.lstrip()
        if len(stripped) != len(raw):
            acc.lit(raw[: len(raw) - len(stripped)])
        named = node.named_children
        name: str | None = None
        if len(named) == 1 and named[0].type in ("variable_name", "special_variable_name"):
            simple = node.type == "simple_expansion" or all(
                c.type in ("${", "}", "variable_name", "special_variable_name") for c in node.children
            )
            if simple:
                name = self.text(named[0])
        if name is None:
            for child in named:
                if child.type in _WORDS:
                    inner = self.word(child, st, ctx)
                    acc.fetches = acc.fetches or inner.fetches
                    acc.decodes = acc.decodes or inner.decodes
                elif child.named_child_count:
                    self.generic(child, st, ctx)
            acc.unknown(stripped)
            return
        if name == "HOME" and "HOME" not in st.vars:
            if not acc.shape:
                acc.home = True
                acc.lit("~", stripped)
            else:
                acc.unknown(stripped)
            return
        if name == "PWD" and "PWD" not in st.vars and st.cwd is not None and len(st.cwd) == 1:
            acc.lit(st.cwd[0], stripped)
            return
        known = st.vars.get(name)
        if known is None:
            acc.unknown(stripped)
            return
        acc.fetches = acc.fetches or known.fetches
        acc.decodes = acc.decodes or known.decodes
        if known.value is None:
            acc.unknown(stripped)
            return
        if known.home and not acc.shape:
            acc.home = True
        acc.lit(known.value, stripped)
        if not quoted:
            ifs = st.vars.get("IFS")
            seps = ifs.value if ifs is not None and ifs.value is not None else " \t\n"
            if ifs is not None and ifs.value is None:
                # IFS holds something unknown: the value may split anywhere.
                acc.unknown(stripped)
                return
            if any(c in seps for c in known.value):
                acc.split = True
            if any(c in known.value for c in "*?["):
                acc.glob = True

    def substitution(self, node: Node, st: _State, ctx: _Ctx) -> tuple[str | None, bool, bool]:
        """Walk ``$(...)``; returns its output when known (``$(echo rm)``, ``$(pwd)``) and flags."""
        start = len(self.script.commands)
        self.seq(node, st.copy(), _Ctx(level=ctx.level + 1))
        inner = self.script.commands[start:]
        fetches = any(c.fetches for c in inner)
        decodes = any(c.decodes for c in inner)
        value: str | None = None
        if len(inner) == 1:
            only = inner[0]
            if only.literal_output is not None:
                value = only.literal_output.rstrip("\n")
            elif only.program == "pwd" and st.cwd is not None and len(st.cwd) == 1:
                value = st.cwd[0]
            elif only.program == "mktemp":
                value = _mktemp_path(only.args, st)
        return value, fetches, decodes

    # ----------------------------------------------------------------- commands

    def command(
        self,
        node: Node,
        st: _State,
        ctx: _Ctx,
        *,
        outer: Sequence[Redirect] = (),
        extra: Sequence[Word] = (),
        stdin: tuple[Word, bool] | None = None,
    ) -> None:
        assigns: list[tuple[str, Word]] = []
        words: list[Word] = []
        redirects: list[Redirect] = []
        pending: list[Node] = []
        extra_words: list[Word] = []
        for child in node.children:
            kind = child.type
            if kind == "variable_assignment":
                assigns.append(self.assignment(child, st, ctx))
            elif kind == "command_name":
                for part in child.named_children:
                    words.extend(self.words(part, st, ctx))
            elif kind in _REDIRECTS:
                found = self.redirect(child, st, ctx, redirects, extra_words, pending)
                if found is not None:
                    stdin = found
            elif kind in _WORDS:
                words.extend(self.words(child, st, ctx))
            elif child.is_named:
                self.generic(child, st, ctx)
        words.extend(extra_words)
        words.extend(extra)
        redirects.extend(outer)
        self.script.redirects.extend(redirects)
        start = len(self.script.commands)
        if words:
            self.simple(words, assigns, tuple(redirects), stdin, st, ctx)
        else:
            for name, word in assigns:
                self.assign(name, word, st)
        produced = tuple(self.script.commands[start:])
        for item in pending:
            self.continuation(item, produced, st, ctx)

    def simple(
        self,
        words: list[Word],
        assigns: list[tuple[str, Word]],
        redirects: tuple[Redirect, ...],
        stdin: tuple[Word, bool] | None,
        st: _State,
        ctx: _Ctx,
        wrappers: tuple[str, ...] = (),
    ) -> None:
        """Normalise one simple command: peel wrappers, follow nested scripts, emit a Command."""
        env = list(assigns)
        path_ws = st.path_ws
        for var_name, var_word in assigns:
            if var_name == "PATH":
                path_ws = self.path_in_workspace(var_word, st)
        cwd = st.cwd
        via_path = False
        expanded: set[str] = set()
        while True:
            if not words:
                return
            first = words[0]
            name = first.value
            if name is not None and name in self.aliases and name not in expanded and not wrappers:
                # dash and bash -c expand aliases defined on an earlier line of the same script.
                expanded.add(name)
                try:
                    head = [literal(p) for p in shlex.split(self.aliases[name])]
                except ValueError:
                    head = [_unknown_word(self.aliases[name])]
                words = head + words[1:]
                continue
            if name is None:
                self.emit_command(
                    None,
                    words,
                    env,
                    redirects,
                    stdin,
                    st,
                    ctx,
                    wrappers,
                    cwd=cwd,
                    via_path=via_path,
                )
                return
            if "/" in name:
                base = name.rstrip("/").rsplit("/", 1)[-1]
            else:
                base = name
                if path_ws and base not in programs.BUILTINS and base not in self.functions:
                    via_path = True
            peel = _WRAPPERS.get(base) if "/" not in name or _is_system(first, cwd, self.ws) else None
            if peel is None:
                break
            result = peel(words)
            if result is None:
                break
            inner, more_env, new_cwd = result
            env.extend(more_env)
            for env_name, env_word in more_env:
                if env_name == "PATH":
                    path_ws = self.path_in_workspace(env_word, st)
            if new_cwd is not None:
                cwd = self.chdir(new_cwd, cwd)
            wrappers = (*wrappers, base)
            if not inner:
                # The wrapper is the program: ``env`` prints the environment, ``sudo -s`` opens a
                # root shell, ``exec`` alone only applies its redirects.
                self.emit_command(
                    base, words, env, redirects, stdin, st, ctx, wrappers[:-1], cwd=cwd, via_path=via_path
                )
                return
            words = inner
        self.program(base, words, env, redirects, stdin, st, ctx, wrappers, cwd, via_path)

    def chdir(self, target: Word, cwd: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if target.value is None and not target.home:
            return None
        locs = locate(target, cwd, self.ws)
        if not locs or any(loc.where is Where.UNKNOWN for loc in locs):
            return None
        paths = tuple(dict.fromkeys(loc.path for loc in locs))
        return paths if len(paths) <= _MAX_CWDS else None

    def program(
        self,
        base: str,
        words: list[Word],
        env: list[tuple[str, Word]],
        redirects: tuple[Redirect, ...],
        stdin: tuple[Word, bool] | None,
        st: _State,
        ctx: _Ctx,
        wrappers: tuple[str, ...],
        cwd: tuple[str, ...] | None,
        via_path: bool,
    ) -> None:
        first = words[0]
        name = first.value or ""
        emit: Callable[..., Command] = self.emit_command
        location, rel = ("name", None) if "/" not in name else self.place(first, cwd)
        # Programs in a virtualenv (a directory with pyvenv.cfg, whatever its name) or node_modules/.bin
        # came from a package manager: judged by name.
        tool = rel is not None and self.tool_dir(posixpath.dirname(rel), st)
        if "/" in name and not _is_system(first, cwd, self.ws) and not tool:
            analysed, fetched = self.run_file(rel, st, ctx, words, evidence=name, shell_only=True)
            emit(
                base,
                words,
                env,
                redirects,
                stdin,
                st,
                ctx,
                wrappers,
                cwd=cwd,
                location=location,
                analysed=analysed,
                fetched=fetched,
                via_path=via_path,
            )
            return
        if base in self.functions and "/" not in name:
            self.call(base, words, st, ctx)
            emit(base, words, env, redirects, stdin, st, ctx, wrappers, cwd=cwd, via_path=via_path)
            return
        handler = _SPECIAL.get(base)
        if handler is not None:
            handler(self, base, words, env, redirects, stdin, st, ctx, wrappers, cwd, via_path)
            return
        interp = programs.interpreter_for(base)
        if interp is not None:
            self.interpreter(base, interp, words, env, redirects, stdin, st, ctx, wrappers, cwd, via_path)
            return
        emit(base, words, env, redirects, stdin, st, ctx, wrappers, cwd=cwd, via_path=via_path)

    def place(self, word: Word, cwd: tuple[str, ...] | None) -> tuple[str, str | None]:
        """Where a program or script path lies: (location, workspace-relative path or None)."""
        if word.home:
            # At run time HOME is inside the workspace: a file there is the mission's own.
            return "workspace", None
        locs = locate(word, cwd, self.ws)
        if not locs or any(loc.where is Where.UNKNOWN for loc in locs):
            return "unknown", None
        inside = [loc for loc in locs if loc.where is Where.INSIDE]
        if inside:
            return "workspace", inside[0].rel
        if not (word.value or "").startswith("/"):
            # Reached with ``..`` from the workspace: nobody knows what that file is.
            return "unknown", None
        return "system", None

    def run_file(
        self,
        rel: str | None,
        st: _State,
        ctx: _Ctx,
        args: Sequence[Word],
        *,
        evidence: str,
        shell_only: bool,
        sourced: bool = False,
    ) -> tuple[bool, bool]:
        """Analyse a workspace script whose content is known; returns (analysed, downloaded)."""
        if rel is None:
            return False, False
        fetched = rel in st.fetched or any(d.endswith("/") and rel.startswith(d) for d in st.fetched)
        certain = rel in st.files and st.files[rel] is not None
        contents = [c for c in (st.files.get(rel), self.written.get(rel)) if c is not None]
        changed = rel in st.files and st.files[rel] is None
        analysed = False
        for content in contents[:1] if certain else contents:
            if shell_only and not _shebang_is_shell(content):
                continue
            target = st if sourced else st.copy()
            if self.nested(content, target, ctx, evidence=evidence, positional=args):
                analysed = not changed
        return analysed, fetched

    def interpreter(
        self,
        base: str,
        interp: programs.Interpreter,
        words: list[Word],
        env: list[tuple[str, Word]],
        redirects: tuple[Redirect, ...],
        stdin: tuple[Word, bool] | None,
        st: _State,
        ctx: _Ctx,
        wrappers: tuple[str, ...],
        cwd: tuple[str, ...] | None,
        via_path: bool,
    ) -> None:
        code, script, module, rest, stdin_flag = _interpreter_args(interp, words[1:])
        if module and rest and rest[0].value == "pip" and interp.family == "python":
            # ``python -m pip install x`` is pip.
            self.emit_command(base, words[:1], env, redirects, stdin, st, ctx, wrappers, cwd=cwd, via_path=via_path)
            self.simple([literal("pip"), *rest[1:]], [], redirects, stdin, st, ctx, (*wrappers, base))
            return
        is_shell = interp.family == "shell"
        analysed = False
        fetched = False
        evidence = " ".join(w.text for w in words)
        if code is not None and is_shell:
            if code.script is not None:
                analysed = self.nested(code.script, st.copy(), ctx, evidence=evidence, positional=rest)
            else:
                self.skeleton(code, st.copy(), ctx, evidence=evidence, positional=rest)
        elif script is not None and script.value not in _STDIN_SCRIPTS and not script.procsub:
            _, rel = self.place(script, cwd)
            if is_shell:
                analysed, fetched = self.run_file(rel, st, ctx, rest, evidence=evidence, shell_only=False)
            else:
                fetched = rel is not None and rel in st.fetched
        reads_stdin = (
            code is None
            and not module
            and (
                stdin_flag
                or (script is None and interp.reads_stdin)
                or (script is not None and script.value in _STDIN_SCRIPTS)
            )
        )
        if reads_stdin and is_shell and not analysed:
            text = self.known_stdin(stdin, ctx)
            if text is not None:
                analysed = self.nested(text, st.copy(), _Ctx(level=ctx.level), evidence=evidence)
            elif stdin is not None and not stdin[1] and stdin[0].value is not None:
                _, rel = self.place(stdin[0], cwd)
                analysed, fetched = self.run_file(rel, st, ctx, (), evidence=evidence, shell_only=False)
        self.emit_command(
            base,
            words,
            env,
            redirects,
            stdin,
            st,
            ctx,
            wrappers,
            cwd=cwd,
            analysed=analysed,
            fetched=fetched,
            code=code,
            script=script,
            reads_stdin=reads_stdin,
            via_path=via_path,
        )

    def known_stdin(self, stdin: tuple[Word, bool] | None, ctx: _Ctx) -> str | None:
        """Text that reaches stdin when it is certain: a literal heredoc, or ``echo '...' |``."""
        if stdin is not None:
            word, is_text = stdin
            return word.value if is_text else None
        if len(ctx.upstream) == 1 and ctx.upstream[0].literal_output is not None:
            return ctx.upstream[0].literal_output
        return None

    def emit_command(
        self,
        program: str | None,
        words: Sequence[Word],
        env: Sequence[tuple[str, Word]],
        redirects: tuple[Redirect, ...],
        stdin: tuple[Word, bool] | None,
        st: _State,
        ctx: _Ctx,
        wrappers: tuple[str, ...],
        *,
        cwd: tuple[str, ...] | None,
        location: str = "name",
        analysed: bool = False,
        fetched: bool = False,
        code: Word | None = None,
        script: Word | None = None,
        reads_stdin: bool = False,
        via_path: bool = False,
    ) -> Command:
        args = tuple(words[1:])
        values = _known(args)
        fetches = program in programs.FETCHERS or any(w.fetches for w in args)
        decodes = program is not None and programs.is_decoder(program, values)
        decodes = decodes or any(w.decodes for w in args)
        stdin_word = stdin[0] if stdin is not None else None
        if stdin_word is not None:
            fetches = fetches or stdin_word.fetches
            decodes = decodes or stdin_word.decodes
        display_parts = [*(f"{n}={w.text}" for n, w in env), *wrappers, *(w.text for w in words)]
        command = Command(
            program=program,
            program_word=words[0],
            args=args,
            display=" ".join(display_parts),
            cwd=cwd,
            wrappers=wrappers,
            env=tuple(env),
            redirects=redirects,
            upstream=ctx.upstream,
            stdin=stdin_word,
            stdin_is_text=stdin is not None and stdin[1],
            location=location,
            analysed=analysed,
            fetched_script=fetched,
            path_in_workspace=via_path,
            code=code,
            script=script,
            reads_stdin=reads_stdin,
            in_pipeline=ctx.pipe,
            background=ctx.bg,
            fetches=fetches,
            decodes=decodes,
            literal_output=_literal_output(program, args, stdin),
        )
        self.emit(command)
        self.track_files(command, st)
        self.track_venv(command, st)
        if program in ("cd", "pushd", "popd") and not wrappers:
            self.cd(program, args, st)
        return command

    def emit(self, command: Command) -> None:
        self.script.commands.append(command)

    def cd(self, program: str, args: Sequence[Word], st: _State) -> None:
        if program == "popd":
            st.cwd = None
            return
        targets = [a for a in args if a.value is None or not a.value.startswith("-")]
        if not targets:
            st.cwd = (HOME_ROOT,)
        elif targets[0].value == "-":
            st.cwd = None
        else:
            target = targets[0]
            cdpath = st.vars.get("CDPATH")
            value = target.value
            if cdpath is not None and cdpath.value != "" and (value is None or not value.startswith(("/", "."))):
                # CDPATH entries are tried before the current directory.
                if cdpath.value is None or value is None:
                    st.cwd = None
                    return
                dirs: list[str] = []
                for entry in cdpath.value.split(":"):
                    found = self.chdir(literal(f"{entry or '.'}/{value}"), st.cwd)
                    if found is None:
                        st.cwd = None
                        return
                    dirs.extend(found)
                here = self.chdir(target, st.cwd)
                if here is None:
                    st.cwd = None
                    return
                joined = tuple(dict.fromkeys([*dirs, *here]))
                st.cwd = joined if len(joined) <= _MAX_CWDS else None
                return
            st.cwd = self.chdir(target, st.cwd)
            if st.cwd is None and value is None:
                st.cwd = _unknown_below(target, self.ws)

    def track_files(self, command: Command, st: _State) -> None:
        """Remember what this command wrote, so a later ``bash x.sh`` on the same line is judged."""
        for redirect in command.redirects:
            if not redirect.write or redirect.fd not in (None, 1):
                continue
            rel = self.rel_of(redirect.target, redirect.cwd)
            if rel is None:
                continue
            if command.fetches:
                st.fetched.add(rel)
                st.files[rel] = None
            elif command.literal_output is not None and redirect.op != ">>":
                st.files[rel] = command.literal_output
            else:
                st.files[rel] = None
        program = command.program
        if program in ("curl", "wget"):
            for target in _download_targets(program, command.args):
                rel = self.rel_of(target, command.cwd)
                if rel is not None:
                    st.fetched.add(rel)
                    st.files[rel] = None
        elif program == "git":
            dest = _clone_dest(command.args)
            if dest is not None:
                rel = self.rel_of(dest, command.cwd)
                if rel is not None:
                    # Every file of a fresh clone came from the network.
                    st.fetched.add(rel.rstrip("/") + "/" if rel else "")
        elif program == "ln":
            self.link(command)
        elif program not in _READ_ONLY and (st.files or self.written):
            for arg in command.args:
                if arg.value is None or arg.value.startswith("-"):
                    continue
                rel = self.rel_of(arg, command.cwd)
                if rel is not None and (rel in st.files or rel in self.written):
                    st.files[rel] = None

    def track_venv(self, command: Command, st: _State) -> None:
        """Remember a virtualenv this command makes, so ``.v/bin/pip`` later on the same line is pip."""
        target = _venv_target(command.program, command.args)
        if target is None:
            return
        rel = self.rel_of(target, command.cwd)
        if rel is not None:
            st.venvs = st.venvs | {posixpath.normpath(rel or ".")}

    def link(self, command: Command) -> None:
        """Record ``ln -s TARGET LINK``: later paths through LINK are judged by TARGET."""
        values = [a.value for a in command.args]
        options = [v for v in values if v is not None and v.startswith("-") and v != "-"]
        if not any(v == "--symbolic" or (not v.startswith("--") and "s" in v) for v in options):
            return
        positional = [a for a in command.args if a.value is None or not a.value.startswith("-") or a.value == "-"]
        directory = next(
            (
                command.args[i + 1]
                for i, v in enumerate(values)
                if v in ("-t", "--target-directory") and i + 1 < len(values)
            ),
            None,
        )
        if directory is not None:
            positional = [a for a in positional if a is not directory]
        if not positional:
            return
        target = positional[0]
        if directory is not None:
            link = literal(f"{directory.value}/{posixpath.basename((target.value or '').rstrip('/'))}")
        elif len(positional) >= 2:
            link = positional[-1]
        elif target.value is not None:
            link = literal(posixpath.basename(target.value.rstrip("/")) or ".")
        else:
            return
        rel = self.rel_of(link, command.cwd)
        if rel is None:
            return
        if target.value is None and not target.home:
            self.script.links[rel] = None
            return
        if target.home:
            value = target.value or "~"
            rest = value.split("/", 1)[1] if "/" in value else ""
            absolute = posixpath.normpath(f"{HOME_ROOT}/{rest}")
        elif (target.value or "").startswith("/"):
            absolute = posixpath.normpath(target.value or "/")
        else:
            # A relative target is relative to the directory holding the link.
            absolute = posixpath.normpath(posixpath.join(self.ws, posixpath.dirname(rel), target.value or ""))
        self.script.links[rel] = absolute

    def rel_of(self, word: Word, cwd: tuple[str, ...] | None) -> str | None:
        if word.value is None:
            return None
        for loc in locate(word, cwd, self.ws):
            if loc.where is Where.INSIDE:
                return loc.rel
        return None


# --------------------------------------------------------------------- helpers

_POSITIONAL_KEYS = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "@", "*", "#")


def _bind_positional(st: _State, args: Sequence[Word]) -> None:
    """``sh -c 'rm -rf "$1"' _ /``: positional parameters take the words that follow."""
    for i, key in enumerate(_POSITIONAL_KEYS[:10]):
        if i < len(args):
            st.vars[key] = args[i]
        else:
            st.vars[key] = literal("")
    rest = list(args[1:])
    if len(rest) == 1:
        st.vars["@"] = st.vars["*"] = rest[0]
    elif not rest:
        st.vars["@"] = st.vars["*"] = literal("")
    else:
        st.vars["@"] = st.vars["*"] = _unknown_word("$@", *rest)
    st.vars["#"] = literal(str(len(rest)))
    st.positional = tuple(rest)


def _join_words(words: Sequence[Word]) -> Word:
    """Words joined by spaces, as ``eval`` and ``watch`` join their arguments into one script."""
    shape = " ".join(w.shape for w in words)
    return Word(
        text=" ".join(w.text for w in words),
        value=None if UNKNOWN in shape else shape,
        shape=shape,
        fetches=any(w.fetches for w in words),
        decodes=any(w.decodes for w in words),
    )


def _is_all_args(node: Node, text: Callable[[Node], str]) -> bool:
    """``$@``, ``"$@"``, ``${@}``, ``$*``: the whole word is the positional parameters."""
    kind = node.type
    if kind == "string":
        named = node.named_children
        return len(named) == 1 and _is_all_args(named[0], text) and text(node) in ('"$@"', '"${@}"')
    if kind in ("simple_expansion", "expansion"):
        return text(node) in ("$@", "${@}", "$*", "${*}")
    return False


_SHALLOW_LEAVES = frozenset({"word", "raw_string", "ansi_c_string", "number", "string_content"})


def _is_shallow(node: Node) -> bool:
    """True for words built only of literal parts and plain variables (no nesting to follow)."""
    kind = node.type
    if kind in _SHALLOW_LEAVES:
        return True
    if kind == "simple_expansion":
        return True
    if kind in ("string", "concatenation"):
        for child in node.named_children:
            ctype = child.type
            if ctype in _SHALLOW_LEAVES or ctype == "simple_expansion":
                continue
            if ctype == "string" and all(
                c.type in _SHALLOW_LEAVES or c.type == "simple_expansion" for c in child.named_children
            ):
                continue
            return False
        return True
    return False


def _clone_dest(args: Sequence[Word]) -> Word | None:
    """The directory ``git clone URL [DIR]`` creates, when it is known."""
    values = [a.value for a in args]
    if "clone" not in values:
        return None
    rest = list(args[values.index("clone") + 1 :])
    with_arg = {"-b", "--branch", "-o", "--origin", "--depth", "-c", "--config", "--reference", "-u", "--upload-pack"}
    positional: list[Word] = []
    i = 0
    while i < len(rest):
        value = rest[i].value
        if value is not None and value.startswith("-"):
            i += 2 if value in with_arg else 1
            continue
        positional.append(rest[i])
        i += 1
    if len(positional) >= 2:
        return positional[1]
    if positional and positional[0].value is not None:
        name = posixpath.basename(positional[0].value.rstrip("/"))
        name = name.removesuffix(".git")
        return literal(name) if name else None
    return None


def _unknown_below(target: Word, ws: str) -> tuple[str, ...] | None:
    """``cd /proc/$PPID``: an unknown directory below a known one that is not an ancestor of the
    workspace is still outside it; ``*`` stands for the unknown part (secret patterns match it)."""
    shape = target.shape
    prefix = shape[: shape.index(UNKNOWN)] if UNKNOWN in shape else shape
    if not prefix.startswith("/"):
        return None
    base = posixpath.normpath(prefix.rsplit("/", 1)[0] or "/")
    if base == "/" or ws == base or ws.startswith(base.rstrip("/") + "/"):
        return None
    return (base + "/*",)


def _mktemp_path(args: Sequence[Word], st: _State) -> str | None:
    """Where ``$(mktemp)`` creates its file: under TMPDIR unless the arguments say otherwise."""
    tmpdir = st.vars.get("TMPDIR")
    if tmpdir is None or tmpdir.value is None:
        return None
    for arg in args:
        value = arg.value
        if value is None or value.startswith(("-p", "--tmpdir")) or "/" in value:
            return None
    return f"{tmpdir.value}/mktemp.{'X' * 10}"  # mktemp's default name template


def _assign_state(target: _State, source: _State) -> None:
    target.positional = source.positional
    target.cwd = source.cwd
    target.vars = source.vars
    target.path_ws = source.path_ws
    target.files = source.files
    target.fetched = source.fetched
    target.venvs = source.venvs


def _venv_target(program: str | None, args: Sequence[Word]) -> Word | None:
    """The directory ``python -m venv D``, ``virtualenv D`` or ``uv venv [D]`` makes, when known."""
    if program is None:
        return None
    rest: Sequence[Word]
    interp = programs.interpreter_for(program)
    if interp is not None and interp.family == "python":
        code, script, module, after, _ = _interpreter_args(interp, args)
        if code is not None or script is not None or not module or not after or after[0].value not in _VENV_MODULES:
            return None
        rest = after[1:]
    elif program == "virtualenv":
        rest = args
    elif program == "uv" and args and args[0].value == "venv":
        rest = args[1:]
    else:
        return None
    skip = False
    for word in rest:
        if skip:
            skip = False
            continue
        if word.value is None:
            return None
        if word.value.startswith("-"):
            skip = word.value in _VENV_VALUE_FLAGS
            continue
        return word
    return literal(".venv") if program == "uv" else None


def _is_system(word: Word, cwd: tuple[str, ...] | None, ws: str) -> bool:
    """A program named by an absolute path outside the workspace (``/bin/rm``): judged by its name."""
    value = word.value
    if value is None or not value.startswith("/"):
        return False
    where, _ = where_of(posixpath.normpath(value), ws)
    return where is not Where.INSIDE


def _spawns_itself(node: Node, name: str, text: Callable[[Node], str], *, in_pipe: bool) -> bool:
    """True when a function body runs itself in a pipeline or in the background (a fork bomb)."""
    children = node.children
    for i, child in enumerate(children):
        if not child.is_named:
            continue
        if child.type == "command":
            cmd_name = child.child_by_field_name("name")
            bg = i + 1 < len(children) and children[i + 1].type == "&"
            if cmd_name is not None and text(cmd_name) == name and (in_pipe or bg):
                return True
        pipe = in_pipe or child.type == "pipeline"
        bg = i + 1 < len(children) and children[i + 1].type == "&"
        if child.named_child_count and _spawns_itself(child, name, text, in_pipe=pipe or bg):
            return True
    return False


def _interpreter_args(
    interp: programs.Interpreter, args: Sequence[Word]
) -> tuple[Word | None, Word | None, bool, list[Word], bool]:
    """(code, script, module, positional words after code/script, reads stdin because of ``-s``)."""
    i = 0
    n = len(args)
    stdin_flag = False
    while i < n:
        word = args[i]
        value = word.value
        if value is None:
            return None, word, False, list(args[i:]), stdin_flag
        if value == "--":
            if i + 1 < n:
                return None, args[i + 1], False, list(args[i + 1 :]), stdin_flag
            return None, None, False, [], stdin_flag
        if value.startswith("--"):
            key, eq, val = value.partition("=")
            if key in interp.code_flags:
                if eq:
                    return literal(val), None, False, list(args[i + 1 :]), stdin_flag
                code = args[i + 1] if i + 1 < n else literal("")
                return code, None, False, list(args[i + 2 :]), stdin_flag
            if key in interp.arg_flags and not eq:
                i += 2
                continue
            i += 1
            continue
        if len(value) > 1 and value[0] in "-+":
            flag = value[1:]
            if value[0] == "+" or value in interp.arg_flags:
                i += 2 if value in interp.arg_flags or value in ("+o", "+O") else 1
                continue
            skip_next = False
            for j, ch in enumerate(flag):
                tail = flag[j + 1 :]
                if ch in interp.code_flags:
                    if tail and interp.family != "shell":
                        return literal(tail), None, False, list(args[i + 1 :]), stdin_flag
                    code = args[i + 1] if i + 1 < n else literal("")
                    return code, None, False, list(args[i + 2 :]), stdin_flag
                if ch in interp.module_flags:
                    return None, None, True, list(args[i + 1 :]), stdin_flag
                if ch in interp.script_flags:
                    script = literal(tail) if tail else (args[i + 1] if i + 1 < n else None)
                    return None, script, False, list(args[i + 1 :]), stdin_flag
                if interp.family == "shell" and ch == "s":
                    stdin_flag = True
                if ch in interp.attached_flags:
                    break
                if ch in interp.arg_flags:
                    skip_next = not tail
                    break
            i += 2 if skip_next else 1
            continue
        return None, word, False, list(args[i:]), stdin_flag
    return None, None, False, [], stdin_flag


def _literal_output(program: str | None, args: Sequence[Word], stdin: tuple[Word, bool] | None) -> str | None:
    """What ``echo``, ``printf`` or ``cat <<EOF`` print, when every part of it is known."""
    if program == "echo":
        values: list[str] = []
        newline = True
        escapes = False
        for arg in args:
            if arg.value is None:
                return None
            if not values and arg.value in ("-n", "-e", "-E", "-ne", "-en"):
                newline = newline and "n" not in arg.value
                escapes = escapes or "e" in arg.value[1:]
                continue
            values.append(arg.value)
        out = " ".join(values)
        if escapes:
            out = decode_escapes(out)
        return out + ("\n" if newline else "")
    if program == "printf":
        if not args or any(a.value is None for a in args):
            return None
        fmt = args[0].value or ""
        rest = [a.value or "" for a in args[1:]]
        if "%" not in fmt:
            return decode_escapes(fmt)
        if fmt in ("%s", "%s\\n", "%b", "%b\\n") and rest:
            joined = "".join(rest)
            return decode_escapes(joined) if fmt.startswith("%b") else joined
        return _printf_strings(fmt, rest)
    if program == "cat" and stdin is not None and stdin[1] and not args:
        return stdin[0].value
    return None


_SHORT_WITH_ARG = {
    "curl": frozenset("oAbcCdDeEFHKmQrTuUwXxYyz"),
    "wget": frozenset("oaOPTtwlQeiBUDIXAR"),
}


_PRINTF_PART = re.compile(r"(%%|%s)")


def _printf_strings(fmt: str, args: Sequence[str]) -> str | None:
    """``printf`` with only ``%s`` and ``%%`` in its format (``printf /etc/%s shadow``); the format is
    reused while arguments remain, as printf does. None for any other conversion."""
    parts = _PRINTF_PART.split(fmt)
    if any("%" in p for p in parts if p not in ("%%", "%s")) or "%s" not in parts:
        return None
    out: list[str] = []
    used = 0
    while True:
        for part in parts:
            if part == "%s":
                out.append(args[used] if used < len(args) else "")
                used += 1
            else:
                out.append("%" if part == "%%" else decode_escapes(part))
        if used >= len(args) or len(out) > 10_000:
            return "".join(out)


def _download_targets(program: str, args: Sequence[Word]) -> list[Word]:
    out: list[Word] = []
    letter, long = ("o", "--output") if program == "curl" else ("O", "--output-document")
    with_arg = _SHORT_WITH_ARG[program]
    for i, arg in enumerate(args):
        value = arg.value
        if value is None:
            continue
        if value == long and i + 1 < len(args):
            out.append(args[i + 1])
        elif value.startswith(long + "="):
            out.append(literal(value.split("=", 1)[1]))
        elif value.startswith("-") and not value.startswith("--") and len(value) > 1:
            # Short options bundle: ``-fsSLo file``, ``-qO file``, ``-ofile``.
            for j, ch in enumerate(value[1:], start=1):
                if ch == letter:
                    rest = value[j + 1 :]
                    if rest:
                        out.append(literal(rest))
                    elif i + 1 < len(args):
                        out.append(args[i + 1])
                    break
                if ch in with_arg:
                    break
    return [w for w in out if w.value != "-"]


# ---------------------------------------------------------------- wrappers

_Peeled = tuple[list[Word], list[tuple[str, Word]], Word | None]


def _skip_options(
    words: list[Word],
    start: int,
    with_arg: frozenset[str],
    *,
    assignments: bool = False,
    chdir: frozenset[str] = frozenset(),
) -> tuple[int, list[tuple[str, Word]], Word | None]:
    """Index of the first word after a wrapper's options, its NAME=value pairs and a chdir target."""
    i = start
    env: list[tuple[str, Word]] = []
    new_cwd: Word | None = None
    n = len(words)
    while i < n:
        value = words[i].value
        if value is None:
            break
        if value == "--":
            i += 1
            break
        if assignments and _ASSIGNMENT.match(value):
            key, _, val = value.partition("=")
            env.append((key, _assignment_word(words[i], val)))
            i += 1
            continue
        if not value.startswith("-") or value == "-":
            break
        key, eq, val = value.partition("=")
        if key in with_arg:
            if eq:
                if key in chdir:
                    new_cwd = literal(val)
                i += 1
            else:
                if key in chdir and i + 1 < n:
                    new_cwd = words[i + 1]
                i += 2
            continue
        if not value.startswith("--") and len(value) > 2 and value[:2] in with_arg:
            if value[:2] in chdir:
                new_cwd = literal(value[2:])
            i += 1
            continue
        i += 1
    return i, env, new_cwd


def _assignment_word(word: Word, value: str) -> Word:
    if word.value is not None and word.value.endswith(value):
        return Word(text=value, value=value, shape=value, home=value.startswith("~"))
    return literal(value)


def _simple_wrapper(with_arg: frozenset[str], positional: int = 0) -> Callable[[list[Word]], _Peeled | None]:
    def peel(words: list[Word]) -> _Peeled | None:
        i, _, _ = _skip_options(words, 1, with_arg)
        i += positional
        return words[i:], [], None

    return peel


def _peel_env(words: list[Word]) -> _Peeled | None:
    i, env, new_cwd = _skip_options(
        words,
        1,
        frozenset(
            {
                "-u",
                "--unset",
                "-C",
                "--chdir",
                "-S",
                "--split-string",
                "--default-signal",
                "--ignore-signal",
                "--block-signal",
            }
        ),
        assignments=True,
        chdir=frozenset({"-C", "--chdir"}),
    )
    # ``env -S 'rm -rf /'`` splits one string into the command.
    for j in range(1, i):
        value = words[j].value or ""
        split: str | None = None
        if value in ("-S", "--split-string") and j + 1 < len(words):
            split = words[j + 1].value
        elif value.startswith("--split-string="):
            split = value.split("=", 1)[1]
        elif value.startswith("-S") and len(value) > 2:
            split = value[2:]
        if split is not None:
            try:
                pieces = [literal(p) for p in shlex.split(split)]
            except ValueError:
                pieces = [_unknown_word(split)]
            return pieces + words[i:], env, new_cwd
    return words[i:], env, new_cwd


def _peel_command(words: list[Word]) -> _Peeled | None:
    i = 1
    while i < len(words) and (words[i].value or "").startswith("-"):
        flag = words[i].value or ""
        if flag == "--":
            i += 1
            break
        if "v" in flag or "V" in flag:
            return [], [], None
        i += 1
    return words[i:], [], None


def _peel_sudo(words: list[Word]) -> _Peeled | None:
    i, env, new_cwd = _skip_options(
        words,
        1,
        frozenset(
            {
                "-u",
                "-g",
                "-C",
                "-D",
                "-h",
                "-p",
                "-r",
                "-t",
                "-T",
                "-U",
                "--user",
                "--group",
                "--chdir",
                "--prompt",
                "--close-from",
                "--host",
                "--role",
                "--type",
                "--command-timeout",
                "--other-user",
            }
        ),
        assignments=True,
        chdir=frozenset({"-D", "--chdir"}),
    )
    return words[i:], env, new_cwd


_ENV_RUNNER_ARGS = frozenset(
    {
        "--with",
        "--with-requirements",
        "--python",
        "-p",
        "--directory",
        "--project",
        "--package",
        "--env-file",
        "--extra",
        "--group",
        "--index",
        "--default-index",
        "--index-url",
        "--extra-index-url",
        "-C",
        "--config-setting",
        "--env",
        "-e",
    }
)


def _peel_env_runner(words: list[Word]) -> _Peeled | None:
    """``uv run``, ``poetry run``, ``pipenv run``: the command runs in the project's environment."""
    if len(words) < 2 or words[1].value != "run":
        return None
    i, _, new_cwd = _skip_options(
        words, 2, _ENV_RUNNER_ARGS, chdir=frozenset({"--directory", "-C"}) if words[0].value == "uv" else frozenset()
    )
    inner = words[i:]
    if inner and (inner[0].value or "").endswith(".py"):
        # ``uv run tool.py`` runs the file with the environment's Python.
        inner = [literal("python"), *inner]
    return inner, [], new_cwd


def _peel_busybox(words: list[Word]) -> _Peeled | None:
    if len(words) > 1 and (words[1].value or "").startswith("-"):
        return None
    return words[1:], [], None


_WRAPPERS: dict[str, Callable[[list[Word]], _Peeled | None]] = {
    "env": _peel_env,
    "command": _peel_command,
    "builtin": _simple_wrapper(frozenset()),
    "exec": _simple_wrapper(frozenset({"-a"})),
    "nice": _simple_wrapper(frozenset({"-n", "--adjustment"})),
    "nohup": _simple_wrapper(frozenset()),
    "setsid": _simple_wrapper(frozenset()),
    "time": _simple_wrapper(frozenset({"-f", "--format", "-o", "--output"})),
    "stdbuf": _simple_wrapper(frozenset({"-i", "-o", "-e", "--input", "--output", "--error"})),
    "ionice": _simple_wrapper(frozenset({"-c", "-n", "-p", "-P", "-u", "--class", "--classdata"})),
    "timeout": _simple_wrapper(frozenset({"-s", "--signal", "-k", "--kill-after"}), 1),
    "sudo": _peel_sudo,
    "doas": _simple_wrapper(frozenset({"-u", "-C"})),
    "pkexec": _simple_wrapper(frozenset({"--user"})),
    "run0": _simple_wrapper(
        frozenset(
            {
                "-u",
                "--user",
                "-g",
                "--group",
                "-D",
                "--chdir",
                "--setenv",
                "--unit",
                "--property",
                "--description",
                "--slice",
                "--nice",
            }
        )
    ),
    "taskset": _simple_wrapper(frozenset(), 1),
    "chrt": _simple_wrapper(frozenset(), 1),
    "unbuffer": _simple_wrapper(frozenset()),
    "chronic": _simple_wrapper(frozenset()),
    "fakeroot": _simple_wrapper(frozenset({"-l", "-s", "-i"})),
    "catchsegv": _simple_wrapper(frozenset()),
    "torsocks": _simple_wrapper(frozenset()),
    "proxychains": _simple_wrapper(frozenset({"-f"})),
    "proxychains4": _simple_wrapper(frozenset({"-f"})),
    "busybox": _peel_busybox,
    "uv": _peel_env_runner,
    "poetry": _peel_env_runner,
    "pipenv": _peel_env_runner,
    "toybox": _peel_busybox,
    "xvfb-run": _simple_wrapper(
        frozenset({"-n", "-s", "-f", "-e", "-p", "--server-args", "--server-num", "--error-file", "--auth-file"})
    ),
    "strace": _simple_wrapper(
        frozenset({"-o", "-e", "-p", "-s", "-u", "-a", "-b", "-E", "-I", "-O", "-P", "-S", "-X"})
    ),
    "ltrace": _simple_wrapper(frozenset({"-o", "-e", "-p", "-s", "-u", "-a", "-n", "-l"})),
    **{name: _simple_wrapper(with_arg) for name, with_arg in runners.WRAPPERS.items()},
}
"""Programs that run the rest of their arguments as a command (``sudo rm`` is ``rm`` run by sudo)."""


# ------------------------------------------------------ programs with structure

_Special = Callable[
    [
        _Reader,
        str,
        list[Word],
        list[tuple[str, Word]],
        tuple[Redirect, ...],
        "tuple[Word, bool] | None",
        _State,
        _Ctx,
        tuple[str, ...],
        "tuple[str, ...] | None",
        bool,
    ],
    None,
]


def _eval(
    r: _Reader,
    base: str,
    words: list[Word],
    env: list[tuple[str, Word]],
    redirects: tuple[Redirect, ...],
    stdin: tuple[Word, bool] | None,
    st: _State,
    ctx: _Ctx,
    wrappers: tuple[str, ...],
    cwd: tuple[str, ...] | None,
    via_path: bool,
) -> None:
    args = words[1:]
    # ``eval eval rm -rf /`` equals ``eval rm -rf /`` when no word holds shell syntax: collapse the
    # chain rather than nest one script per eval.
    while (
        len(args) > 1
        and args[0].value == "eval"
        and all(a.value is not None and not _SHELL_META.search(a.value) for a in args[1:])
    ):
        args = args[1:]
    text = " ".join(a.value or "" for a in args)
    analysed = False
    if all(a.value is not None for a in args):
        code = literal(text)
        # eval runs in the current shell: its cd and assignments persist.
        analysed = r.nested(text, st, ctx, evidence=" ".join(w.text for w in words))
    else:
        code = _join_words(args)
        r.skeleton(code, st, ctx, evidence=code.text)
    r.emit_command(
        base,
        words,
        env,
        redirects,
        stdin,
        st,
        ctx,
        wrappers,
        cwd=cwd,
        code=code,
        analysed=analysed,
        via_path=via_path,
    )


def _source(
    r: _Reader,
    base: str,
    words: list[Word],
    env: list[tuple[str, Word]],
    redirects: tuple[Redirect, ...],
    stdin: tuple[Word, bool] | None,
    st: _State,
    ctx: _Ctx,
    wrappers: tuple[str, ...],
    cwd: tuple[str, ...] | None,
    via_path: bool,
) -> None:
    args = words[1:]
    script = args[0] if args else None
    analysed = fetched = False
    reads_stdin = False
    if script is not None and not script.procsub:
        if script.value in _STDIN_SCRIPTS:
            reads_stdin = True
            text = r.known_stdin(stdin, ctx)
            if text is not None:
                analysed = r.nested(text, st, ctx, evidence=" ".join(w.text for w in words))
        else:
            _, rel = r.place(script, cwd)
            analysed, fetched = r.run_file(rel, st, ctx, args, evidence=script.text, shell_only=False, sourced=True)
            activate = _ACTIVATE.match(rel) if rel is not None else None
            if not analysed and not fetched and activate is not None and r.is_venv(activate.group(1) or ".", st):
                # Written by ``python -m venv``, like the programs in a virtualenv's bin/ that are judged
                # by name; an activate script the mission wrote itself was read just above.
                analysed = True
    r.emit_command(
        base,
        words,
        env,
        redirects,
        stdin,
        st,
        ctx,
        wrappers,
        cwd=cwd,
        analysed=analysed,
        fetched=fetched,
        script=script,
        reads_stdin=reads_stdin,
        via_path=via_path,
    )


def _found_word(start: Word) -> Word:
    if start.value is None:
        return Word(text="{}", value=None, shape=UNKNOWN, fetches=start.fetches)
    base = start.value.rstrip("/")
    return Word(text="{}", value=None, shape=f"{base}/{UNKNOWN}", confined=True, home=start.home)


_FIND_GLOBAL = frozenset({"-H", "-L", "-P"})
_FIND_EXEC = frozenset({"-exec", "-execdir", "-ok", "-okdir"})


def find_start_points(args: Sequence[Word]) -> list[Word]:
    """The start points of a ``find`` command (``.`` when none are given)."""
    i = 0
    n = len(args)
    while i < n and (args[i].value in _FIND_GLOBAL or (args[i].value or "").startswith(("-O", "-D"))):
        i += 2 if args[i].value == "-D" else 1
    starts: list[Word] = []
    while i < n:
        value = args[i].value
        if value is not None and (value.startswith("-") or value in ("(", "!", ",")):
            break
        starts.append(args[i])
        i += 1
    return starts or [literal(".")]


def _find(
    r: _Reader,
    base: str,
    words: list[Word],
    env: list[tuple[str, Word]],
    redirects: tuple[Redirect, ...],
    stdin: tuple[Word, bool] | None,
    st: _State,
    ctx: _Ctx,
    wrappers: tuple[str, ...],
    cwd: tuple[str, ...] | None,
    via_path: bool,
) -> None:
    args = words[1:]
    starts = find_start_points(args)
    r.emit_command(base, words, env, redirects, stdin, st, ctx, wrappers, cwd=cwd, via_path=via_path)
    i = 0
    n = len(args)
    while i < n:
        if args[i].value in _FIND_EXEC:
            j = i + 1
            while j < n and args[j].value not in (";", "+"):
                j += 1
            template = args[i + 1 : j]
            for start in starts[:_MAX_FANOUT]:
                found = _found_word(start)
                sub = [found if (w.value or "") == "{}" else _replace_braces(w, found) for w in template]
                if sub:
                    r.simple(sub, [], (), None, st.copy(), ctx._replace(upstream=()), (*wrappers, base))
            i = j + 1
            continue
        i += 1


def _replace_braces(word: Word, found: Word) -> Word:
    if word.value is None or "{}" not in word.value:
        return word
    shape = word.value.replace("{}", found.shape)
    return Word(text=word.text, value=None, shape=shape, confined=found.confined, home=found.home)


_XARGS_ARG = frozenset(
    {
        "-a",
        "--arg-file",
        "-d",
        "--delimiter",
        "-E",
        "-I",
        "-L",
        "--max-lines",
        "-n",
        "--max-args",
        "-P",
        "--max-procs",
        "-s",
        "--max-chars",
        "--process-slot-var",
        "-e",
        "--eof",
    }
)


def _xargs(
    r: _Reader,
    base: str,
    words: list[Word],
    env: list[tuple[str, Word]],
    redirects: tuple[Redirect, ...],
    stdin: tuple[Word, bool] | None,
    st: _State,
    ctx: _Ctx,
    wrappers: tuple[str, ...],
    cwd: tuple[str, ...] | None,
    via_path: bool,
) -> None:
    replace: str | None = None
    i = 1
    n = len(words)
    while i < n:
        value = words[i].value
        if value is None or not value.startswith("-") or value == "-":
            break
        if value == "--":
            i += 1
            break
        key, eq, val = value.partition("=")
        if key == "-I" or key == "--replace":
            replace = val if eq else (words[i + 1].value if i + 1 < n and key == "-I" else "{}")
            i += 1 if eq or key == "--replace" else 2
            continue
        if value.startswith("-i"):
            replace = value[2:] or "{}"
            i += 1
            continue
        if key in _XARGS_ARG and not eq:
            i += 2
            continue
        if len(value) > 2 and value[:2] in _XARGS_ARG and value[:2] == "-I":
            replace = value[2:]
        i += 1
    template = words[i:] or [literal("echo")]
    item = _unknown_word("<input>")
    if any(u.fetches for u in ctx.upstream) or any(u.decodes for u in ctx.upstream):
        # The items are the upstream's output: downloaded or decoded text.
        item = Word(
            text="<input>",
            value=None,
            shape=UNKNOWN,
            fetches=any(u.fetches for u in ctx.upstream),
            decodes=any(u.decodes for u in ctx.upstream),
        )
    if ctx.upstream and ctx.upstream[-1].program == "find":
        starts = find_start_points(ctx.upstream[-1].args)
        if len(starts) == 1:
            item = _found_word(starts[0])
    if replace:
        sub = [item if w.value == replace else w for w in template]
        sub = [_replace_text(w, replace, item) if w.value is not None and replace in w.value else w for w in sub]
    else:
        sub = [*template, item]
    r.emit_command(base, words[:1], env, redirects, stdin, st, ctx, wrappers, cwd=cwd, via_path=via_path)
    r.simple(sub, [], redirects, None, st.copy(), ctx, (*wrappers, base))


def _replace_text(word: Word, token: str, item: Word) -> Word:
    shape = (word.value or "").replace(token, item.shape)
    return Word(text=word.text, value=None, shape=shape, confined=item.confined, home=item.home)


def _parallel(
    r: _Reader,
    base: str,
    words: list[Word],
    env: list[tuple[str, Word]],
    redirects: tuple[Redirect, ...],
    stdin: tuple[Word, bool] | None,
    st: _State,
    ctx: _Ctx,
    wrappers: tuple[str, ...],
    cwd: tuple[str, ...] | None,
    via_path: bool,
) -> None:
    args = words[1:]
    i = 0
    while i < len(args) and (args[i].value or "").startswith("-"):
        i += 1
    template: list[Word] = []
    while i < len(args) and args[i].value not in (":::", "::::"):
        template.append(args[i])
        i += 1
    inputs = [w for w in args[i + 1 :] if w.value not in (":::", "::::")] if i < len(args) else []
    if i < len(args) and args[i].value == "::::":
        inputs = []
    items = inputs[:_MAX_FANOUT] or [_unknown_word("<input>")]
    r.emit_command(base, words[:1], env, redirects, stdin, st, ctx, wrappers, cwd=cwd, via_path=via_path)
    if not template:
        return
    for item in items:
        if any((w.value or "") == "{}" for w in template):
            sub = [item if w.value == "{}" else w for w in template]
        else:
            sub = [*template, item]
        if len(sub) == 1 and sub[0].value is not None and " " in sub[0].value:
            r.nested(sub[0].value, st.copy(), ctx, evidence=sub[0].text)
            continue
        r.simple(sub, [], redirects, None, st.copy(), ctx, (*wrappers, base))


def _shell_string(
    r: _Reader,
    base: str,
    words: list[Word],
    env: list[tuple[str, Word]],
    redirects: tuple[Redirect, ...],
    stdin: tuple[Word, bool] | None,
    st: _State,
    ctx: _Ctx,
    wrappers: tuple[str, ...],
    cwd: tuple[str, ...] | None,
    via_path: bool,
) -> None:
    """Programs that hand a string to ``sh -c``: ``su -c``, ``watch``, ``flock -c``, ``script -c``."""
    args = words[1:]
    code: Word | None = None
    rest_index = len(args)
    if base == "watch":
        i, _, _ = _skip_options(words, 1, frozenset({"-n", "--interval", "-d", "--differences", "-q", "--equexit"}))
        rest = words[i:]
        if rest:
            code = _join_words(rest)
    else:
        for i, arg in enumerate(args):
            value = arg.value or ""
            if value in ("-c", "--command") and i + 1 < len(args):
                code = args[i + 1]
                rest_index = i + 2
                break
            if value.startswith("--command="):
                code = literal(value.split("=", 1)[1])
                rest_index = i + 1
                break
        if code is None and base == "flock":
            i, _, _ = _skip_options(words, 1, frozenset({"-w", "--timeout", "-E", "--conflict-exit-code"}))
            inner = words[i + 1 :]
            r.emit_command(base, words[: i + 1], env, redirects, stdin, st, ctx, wrappers, cwd=cwd, via_path=via_path)
            if inner:
                r.simple(inner, [], redirects, stdin, st.copy(), ctx, (*wrappers, base))
            return
    analysed = False
    if code is not None and code.script is not None:
        analysed = r.nested(
            code.script, st.copy(), ctx, evidence=" ".join(w.text for w in words), positional=args[rest_index:]
        )
    elif code is not None:
        r.skeleton(code, st.copy(), ctx, evidence=code.text, positional=args[rest_index:])
    r.emit_command(
        base,
        words,
        env,
        redirects,
        stdin,
        st,
        ctx,
        wrappers,
        cwd=cwd,
        code=code,
        analysed=analysed,
        via_path=via_path,
    )


def _git(
    r: _Reader,
    base: str,
    words: list[Word],
    env: list[tuple[str, Word]],
    redirects: tuple[Redirect, ...],
    stdin: tuple[Word, bool] | None,
    st: _State,
    ctx: _Ctx,
    wrappers: tuple[str, ...],
    cwd: tuple[str, ...] | None,
    via_path: bool,
) -> None:
    r.emit_command(base, words, env, redirects, stdin, st, ctx, wrappers, cwd=cwd, via_path=via_path)
    values = [w.value for w in words[1:]]
    scripts: list[Word] = []
    for i, value in enumerate(values):
        if value == "foreach" and i > 0 and values[i - 1] == "submodule":
            rest = words[i + 2 :]
            rest = [w for w in rest if (w.value or "") not in ("--recursive", "-q", "--quiet")]
            if rest:
                scripts.append(_join_words(rest))
    _run_found(r, runners.commands_of("git", words[1:]), st, ctx, (*wrappers, base), cwd)
    for script in scripts:
        if script.value is not None:
            r.nested(script.value, st.copy(), ctx, evidence=script.text)
        else:
            r.skeleton(script, st.copy(), ctx, evidence=script.text)
            r.emit_command(
                "sh",
                [literal("sh"), literal("-c"), script],
                [],
                (),
                None,
                st,
                ctx,
                (*wrappers, base),
                cwd=cwd,
                code=script,
            )


def _trap(
    r: _Reader,
    base: str,
    words: list[Word],
    env: list[tuple[str, Word]],
    redirects: tuple[Redirect, ...],
    stdin: tuple[Word, bool] | None,
    st: _State,
    ctx: _Ctx,
    wrappers: tuple[str, ...],
    cwd: tuple[str, ...] | None,
    via_path: bool,
) -> None:
    """``trap 'cmd' EXIT`` runs ``cmd`` later in this shell: it is judged like ``eval``."""
    args = [w for w in words[1:] if w.value not in ("--",)]
    code = args[0] if args and not (args[0].value or "").startswith("-") else None
    analysed = False
    if code is not None and len(args) > 1 and code.value not in ("", "-"):
        if code.value is not None:
            analysed = r.nested(code.value, st.copy(), ctx, evidence=code.text)
        else:
            r.skeleton(code, st.copy(), ctx, evidence=code.text)
    else:
        code = None
    r.emit_command(
        base,
        words,
        env,
        redirects,
        stdin,
        st,
        ctx,
        wrappers,
        cwd=cwd,
        code=code,
        analysed=analysed,
        via_path=via_path,
    )


def _run_found(
    r: _Reader,
    found: Sequence[runners.Found],
    st: _State,
    ctx: _Ctx,
    wrappers: tuple[str, ...],
    cwd: tuple[str, ...] | None,
) -> None:
    """Analyse the commands a program was told to run, as if they ran directly."""
    for item in found:
        if item.argv:
            r.simple(list(item.argv), [], (), None, st.copy(), ctx._replace(upstream=()), wrappers)
        elif item.script is not None:
            _run_string(r, item.script, st, ctx, wrappers, cwd)


def _run_string(
    r: _Reader, script: Word, st: _State, ctx: _Ctx, wrappers: tuple[str, ...], cwd: tuple[str, ...] | None
) -> None:
    """A shell string some program runs with ``sh -c``; when it cannot be known, it is opaque."""
    if script.script is not None:
        r.nested(script.script, st.copy(), ctx._replace(upstream=()), evidence=script.text)
        return
    r.skeleton(script, st.copy(), ctx, evidence=script.text)
    r.emit_command("sh", [literal("sh"), literal("-c"), script], [], (), None, st, ctx, wrappers, cwd=cwd, code=script)


def _option_runner(
    r: _Reader,
    base: str,
    words: list[Word],
    env: list[tuple[str, Word]],
    redirects: tuple[Redirect, ...],
    stdin: tuple[Word, bool] | None,
    st: _State,
    ctx: _Ctx,
    wrappers: tuple[str, ...],
    cwd: tuple[str, ...] | None,
    via_path: bool,
) -> None:
    """``zip -TT CMD``, ``vim -c '!CMD'``, ``tmux new CMD``: see the ``runners`` table."""
    r.emit_command(base, words, env, redirects, stdin, st, ctx, wrappers, cwd=cwd, via_path=via_path)
    _run_found(r, runners.commands_of(base, words[1:]), st, ctx, (*wrappers, base), cwd)


_SED_ADDR = r"(?:\d+(?:~\d+)?|\$|/(?:\\.|[^/\\\n])*/[IM]*)"
_SED_E = LazyPattern(
    r"(?:^|[;\n{}])\s*(?:" + _SED_ADDR + r"(?:\s*,\s*" + _SED_ADDR + r")?)?\s*!?\s*e(?:[ \t]+([^\n]*))?(?=\s|;|}|$)"
)
_SED_S_E = LazyPattern(r"s(.)(?:\\.|(?!\1).)*\1(?:\\.|(?!\1).)*\1[gpiImMw0-9]*e")


def sed_scripts(args: Sequence[Word]) -> list[Word]:
    """The scripts of a ``sed`` command: ``-e``/``--expression`` values, else the first operand."""
    scripts: list[Word] = []
    operands: list[Word] = []
    files = False
    i = 0
    n = len(args)
    while i < n:
        value = args[i].value
        if value in ("-e", "--expression") and i + 1 < n:
            scripts.append(args[i + 1])
            i += 2
            continue
        if value in ("-f", "--file", "-l", "--line-length") and i + 1 < n:
            files = files or value in ("-f", "--file")
            i += 2
            continue
        if value is not None and value.startswith("--expression="):
            scripts.append(literal(value.split("=", 1)[1]))
        elif value is not None and value.startswith("-e") and len(value) > 2 and not value.startswith("--"):
            scripts.append(literal(value[2:]))
        elif value is None or not value.startswith("-") or value == "-":
            operands.append(args[i])
        i += 1
    if not scripts and not files and operands:
        scripts.append(operands[0])
    return scripts


def _sed(
    r: _Reader,
    base: str,
    words: list[Word],
    env: list[tuple[str, Word]],
    redirects: tuple[Redirect, ...],
    stdin: tuple[Word, bool] | None,
    st: _State,
    ctx: _Ctx,
    wrappers: tuple[str, ...],
    cwd: tuple[str, ...] | None,
    via_path: bool,
) -> None:
    """GNU sed's ``e CMD`` runs CMD; a bare ``e`` or ``s///e`` runs the input text as commands."""
    runs_input = False
    commands: list[Word] = []
    for script in sed_scripts(words[1:]):
        text = script.value
        if text is None:
            continue
        for m in _SED_E.finditer(text):
            cmd = (m.group(1) or "").strip()
            if cmd:
                commands.append(literal(cmd))
            else:
                runs_input = True
        if _SED_S_E.search(text):
            runs_input = True
    r.emit_command(
        base, words, env, redirects, stdin, st, ctx, wrappers, cwd=cwd, via_path=via_path, reads_stdin=runs_input
    )
    for cmd in commands:
        _run_string(r, cmd, st, ctx, (*wrappers, base), cwd)


_AWK_ARG = frozenset({"-F", "-v", "-f", "--file", "--assign", "--field-separator", "-i", "--include", "-l", "--load"})
_AWK_STRING = r'"(?:\\.|[^"\\])*"'
_AWK_SYSTEM = LazyPattern(r"\bsystem\s*\(\s*(" + _AWK_STRING + r"|[A-Za-z_]\w*\s*\)|)")
_AWK_PIPE_TO = LazyPattern(r"\|\s*&?\s*(" + _AWK_STRING + r"|[A-Za-z_]\w*)?")
_AWK_PIPE_FROM = LazyPattern(r"(" + _AWK_STRING + r"|[A-Za-z_]\w*)\s*\|\s*getline")
_AWK_WRITE = LazyPattern(r"(?<![<>=!])(>>?)\s*(" + _AWK_STRING + r"|[A-Za-z_]\w*|\$?\(?[^;}\s]*)")
_AWK_PRINT = re.compile(r"\b(?:print|printf)\b")


def _awk_value(token: str, variables: Mapping[str, Word]) -> Word | None:
    """An awk expression that is a string literal or a ``-v`` variable; None when it is computed."""
    token = token.strip().rstrip(")").strip()
    if token.startswith('"') and token.endswith('"') and len(token) >= 2:
        return literal(decode_escapes(token[1:-1]))
    return variables.get(token)


def _awk(
    r: _Reader,
    base: str,
    words: list[Word],
    env: list[tuple[str, Word]],
    redirects: tuple[Redirect, ...],
    stdin: tuple[Word, bool] | None,
    st: _State,
    ctx: _Ctx,
    wrappers: tuple[str, ...],
    cwd: tuple[str, ...] | None,
    via_path: bool,
) -> None:
    """awk's ``system()``, pipes and ``print > file``, with ``-v`` variables filled in."""
    args = words[1:]
    variables: dict[str, Word] = {}
    program: Word | None = None
    has_file = False
    i = 0
    n = len(args)
    while i < n:
        value = args[i].value
        if value is None:
            program = args[i]
            break
        if value in ("-v", "--assign") and i + 1 < n:
            name, eq, val = (args[i + 1].value or "").partition("=")
            if eq:
                variables[name] = literal(decode_escapes(val))
            elif args[i + 1].value is None and "=" in args[i + 1].shape:
                variables[args[i + 1].shape.split("=", 1)[0]] = _unknown_word(args[i + 1].text)
            i += 2
            continue
        if value.startswith("-v") and "=" in value:
            name, _, val = value[2:].partition("=")
            variables[name] = literal(decode_escapes(val))
            i += 1
            continue
        if value in ("-f", "--file"):
            has_file = True
        if value == "--":
            program = args[i + 1] if i + 1 < n else None
            break
        if value.startswith("-") and value != "-":
            i += 2 if value in _AWK_ARG else 1
            continue
        program = args[i]
        break
    code: Word | None = None
    runs_input = False
    commands: list[Word] = []
    writes: list[Word] = []
    if program is not None and not has_file:
        text = program.value
        if text is None:
            code = program
        else:
            for m in _AWK_SYSTEM.finditer(text):
                found = _awk_value(m.group(1), variables)
                if found is None:
                    runs_input = True
                else:
                    commands.append(found)
            for m in _AWK_PIPE_TO.finditer(text):
                if text[m.start() : m.start() + 2] == "||":
                    continue
                expr = m.group(1) or ""
                if expr == "getline":
                    continue
                found = _awk_value(expr, variables) if expr else None
                if found is None:
                    runs_input = True
                else:
                    commands.append(found)
                    first = (found.value or "").split(" ", 1)[0].rsplit("/", 1)[-1]
                    if first in programs.SHELLS or programs.interpreter_for(first) is not None:
                        # ``print ... | "sh"``: what awk prints is run as code.
                        runs_input = True
            for m in _AWK_PIPE_FROM.finditer(text):
                found = _awk_value(m.group(1), variables)
                if found is None:
                    runs_input = True
                else:
                    commands.append(found)
            if _AWK_PRINT.search(text):
                for m in _AWK_WRITE.finditer(text):
                    before = text[: m.start()]
                    if not _AWK_PRINT.search(before.rsplit(";", 1)[-1].rsplit("{", 1)[-1]):
                        continue
                    found = _awk_value(m.group(2), variables)
                    if found is None:
                        writes.append(_unknown_word(m.group(2)))
                    else:
                        writes.append(found)
    if runs_input and not ctx.upstream and stdin is None:
        # It runs text taken from its input files: that code cannot be judged.
        code = program
    r.emit_command(
        base,
        words,
        env,
        redirects,
        stdin,
        st,
        ctx,
        wrappers,
        cwd=cwd,
        via_path=via_path,
        code=code,
        reads_stdin=runs_input and code is None,
    )
    for target in writes:
        r.script.redirects.append(Redirect(op=">", target=target, cwd=cwd, write=True, read=False))
    for cmd in commands:
        _run_string(r, cmd, st, ctx, (*wrappers, base), cwd)


def _set(
    r: _Reader,
    base: str,
    words: list[Word],
    env: list[tuple[str, Word]],
    redirects: tuple[Redirect, ...],
    stdin: tuple[Word, bool] | None,
    st: _State,
    ctx: _Ctx,
    wrappers: tuple[str, ...],
    cwd: tuple[str, ...] | None,
    via_path: bool,
) -> None:
    """``set -- a b c`` (or ``set a b``) sets the positional parameters."""
    args = words[1:]
    values = [a.value for a in args]
    if "--" in values:
        _bind_positional(st, [literal("sh"), *args[values.index("--") + 1 :]])
    elif args and values[0] is not None and not values[0].startswith(("-", "+")):
        _bind_positional(st, [literal("sh"), *args])
    r.emit_command(base, words, env, redirects, stdin, st, ctx, wrappers, cwd=cwd, via_path=via_path)


def _alias(
    r: _Reader,
    base: str,
    words: list[Word],
    env: list[tuple[str, Word]],
    redirects: tuple[Redirect, ...],
    stdin: tuple[Word, bool] | None,
    st: _State,
    ctx: _Ctx,
    wrappers: tuple[str, ...],
    cwd: tuple[str, ...] | None,
    via_path: bool,
) -> None:
    """``alias name='rm -rf'``: a later line that starts with ``name`` runs the alias text."""
    for arg in words[1:]:
        name, eq, value = (arg.value or arg.shape).partition("=")
        if eq and name and not name.startswith("-"):
            r.aliases[name] = value if arg.value is not None else "${__rc_unknown}"
    r.emit_command(base, words, env, redirects, stdin, st, ctx, wrappers, cwd=cwd, via_path=via_path)


_SPECIAL: dict[str, _Special] = {
    "trap": _trap,
    "eval": _eval,
    "source": _source,
    ".": _source,
    "find": _find,
    "xargs": _xargs,
    "parallel": _parallel,
    "su": _shell_string,
    "sg": _shell_string,
    "watch": _shell_string,
    "flock": _shell_string,
    "script": _shell_string,
    "git": _git,
    "sed": _sed,
    "gsed": _sed,
    "awk": _awk,
    "gawk": _awk,
    "mawk": _awk,
    "nawk": _awk,
    "busybox-awk": _awk,
    "set": _set,
    "alias": _alias,
    **{name: _option_runner for row in runners.RUNNERS for name in row.programs if name != "git"},
}


# ------------------------------------------------------------------ entry points


def _cwd_of(workspace: str, cwd: str | None) -> tuple[str, ...]:
    if cwd is None:
        return (workspace,)
    if cwd.startswith("/"):
        return (posixpath.normpath(cwd),)
    return (posixpath.normpath(f"{workspace}/{cwd}"),)


_MISSION_DIRS = {"TMPDIR": ".mission-tmp", "MISSION_OUTPUT": ".mission-output", "MISSION_WORKSPACE": ""}
"""Variables naming the mission's own places, judged as inside the workspace whatever their value."""


def _initial_state(workspace: str, cwd: str | None, env: Mapping[str, str] | None, reader: _Reader) -> _State:
    st = _State(cwd=_cwd_of(workspace, cwd))
    if env:
        st.vars.update(_env_words(tuple(env.items())))
        path = env.get("PATH")
        if path is not None:
            st.path_ws = _path_in_workspace(reader, path, st)
    # The runner gives every mission these; wherever they are on disk, they are the mission's own.
    st.vars.update(_mission_dirs(workspace))
    return st


@functools.lru_cache(maxsize=32)
def _env_words(env: tuple[tuple[str, str], ...]) -> dict[str, Word]:
    """The variables an environment gives the shell (every command of a mission has the same one);
    the caller copies the dict, the words are immutable."""
    return {name: _env_word(value) for name, value in env if name not in ("HOME", "PWD", "OLDPWD")}


def _env_word(value: str) -> Word:
    """The word of an environment value (words are immutable: the same value gives the same word)."""
    return _known_word(value) if len(value) <= _CACHED_TEXT else Word(text=value, value=value, shape=value)


@functools.lru_cache(maxsize=1024)
def _known_word(value: str) -> Word:
    return Word(text=value, value=value, shape=value)


_CACHED_TEXT = 4096
_PATH_VERDICTS: dict[tuple[str, str, tuple[str, ...] | None, bool], bool] = {}


def _path_in_workspace(reader: _Reader, value: str, st: _State) -> bool:
    """``reader.path_in_workspace`` for the environment's PATH, which is the same for every command of a
    mission: remembered by value, workspace and cwd, unless the answer came from looking at the disk
    (whether a workspace directory is a virtualenv), which a step may change."""
    key = (value, reader.ws, st.cwd, reader.venvs is None)
    known = _PATH_VERDICTS.get(key)
    if known is not None:
        return known
    venvs = reader.venvs
    asked = False
    if venvs is not None:

        def asking(rel: str) -> bool:
            nonlocal asked
            asked = True
            return venvs(rel)

        reader.venvs = asking
    try:
        answer = reader.path_in_workspace(literal(value), st)
    finally:
        reader.venvs = venvs
    if not asked and len(value) <= _CACHED_TEXT:
        if len(_PATH_VERDICTS) >= 256:
            _PATH_VERDICTS.clear()
        _PATH_VERDICTS[key] = answer
    return answer


@functools.lru_cache(maxsize=64)
def _mission_dirs(workspace: str) -> dict[str, Word]:
    return {name: literal(f"{workspace}/{rel}" if rel else workspace) for name, rel in _MISSION_DIRS.items()}


def parses(text: str) -> bool:
    """True when tree-sitter-bash reads ``text`` without ERROR or MISSING nodes."""
    root, _ = _parse(text)
    return not root.has_error


def read_line(
    text: str,
    *,
    workspace: str,
    cwd: str | None = None,
    written_scripts: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    venvs: Callable[[str], bool] | None = None,
) -> Script:
    """Read a shell command line into facts. ``workspace`` is absolute and normalised."""
    reader = _Reader(workspace=workspace, written=_normalise_keys(written_scripts), venvs=venvs)
    st = _initial_state(workspace, cwd, env, reader)
    # Under ``shell: true`` the script runs as ``/bin/sh -c``: ``$0`` is the shell itself.
    st.vars.setdefault("0", literal("/bin/sh"))
    try:
        reader.source(text, st, _Ctx())
    except _Exhausted:
        reader.script.issues.append(Issue(kind="budget", evidence=text[:80]))
    except RecursionError:
        reader.script.issues.append(Issue(kind="depth", evidence=text[:80]))
        reader.flattening = False
        root, raw = _parse(text)
        reader.src = raw
        try:
            reader.flat(root, st)
        except _Exhausted:
            reader.script.issues.append(Issue(kind="budget", evidence=text[:80]))
    reader.script.venvs = set(st.venvs)
    return reader.script


def _argv_word(arg: str) -> Word:
    """An argv element is passed as is, but ``~`` and ``$NAME`` in it are judged as a shell would see
    them: a template part or a wrapper that expands them must not make a path look harmless."""
    home = arg.startswith("~")
    if "$" in arg or "`" in arg:
        shape = re.sub(r"\$\{[^}]*\}|\$\([^)]*\)|\$[A-Za-z_0-9@*#?$!-]+|`[^`]*`", UNKNOWN, arg)
        if UNKNOWN in shape:
            if shape.startswith(UNKNOWN) and re.match(r"^(\$HOME|\$\{HOME\})", arg):
                home = True
                shape = "~" + shape[1:]
                if UNKNOWN not in shape:
                    return Word(text=arg, value=shape, shape=shape, home=True, argv=arg)
            return Word(text=arg, value=None, shape=shape, home=home, argv=arg)
    return Word(text=arg, value=arg, shape=arg, home=home, argv=arg)


def read_argv(
    argv: Sequence[str],
    *,
    workspace: str,
    cwd: str | None = None,
    written_scripts: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    venvs: Callable[[str], bool] | None = None,
) -> Script:
    """Read an argv command (no shell) into the same facts as a command line."""
    reader = _Reader(workspace=workspace, written=_normalise_keys(written_scripts), venvs=venvs)
    st = _initial_state(workspace, cwd, env, reader)
    words = [_argv_word(a) for a in argv]
    if words:
        try:
            reader.simple(words, [], (), None, st, _Ctx())
        except _Exhausted:
            reader.script.issues.append(Issue(kind="budget", evidence=" ".join(argv)[:80]))
        except RecursionError:
            reader.script.issues.append(Issue(kind="depth", evidence=" ".join(argv)[:80]))
    reader.script.venvs = set(st.venvs)
    return reader.script


def _normalise_keys(written: Mapping[str, str] | None) -> dict[str, str]:
    if not written:
        return {}
    return {posixpath.normpath(k.lstrip("/")) if not k.startswith("/") else k: v for k, v in written.items()}
