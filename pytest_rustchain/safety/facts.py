"""The facts the shell reader extracts from a command line and the rules judge: words, commands, redirects."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["UNKNOWN", "Command", "Issue", "Redirect", "Script", "Word", "literal"]

UNKNOWN = "\x00"
"""Stands for a part of a word whose value cannot be known (``$X``, ``$(cmd)``) inside ``Word.shape``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Word:
    """One shell word after quote removal and expansion, as far as the analyser can know it."""

    text: str
    """Normalised display: quotes and backslashes removed, unknown parts kept as written."""
    value: str | None
    """The word's value when every part of it is known."""
    shape: str
    """The value with each unknown part replaced by ``UNKNOWN``; its known prefix still says a lot."""
    glob: bool = False
    """Unquoted ``*``, ``?`` or ``[`` : the word is a pattern over existing paths."""
    brace: bool = False
    """Unquoted ``{a,b}``: the word may expand to several words."""
    home: bool = False
    """Starts with ``~`` or ``$HOME``: the user's home directory."""
    confined: bool = False
    """Unknown parts stay below the known prefix (the ``{}`` of ``find``, the items of ``xargs``)."""
    fetches: bool = False
    """A command substitution inside reads from the network."""
    decodes: bool = False
    """A command substitution inside decodes or decompresses data."""
    procsub: bool = False
    """The word is a process substitution ``<(...)``."""
    argv: str | None = None
    """For an element of an argv command, the element exactly as given: when a shell is handed it as a
    script (``sh -c``), this is the text it parses, ``$X`` in it being the script's own variables."""

    @property
    def script(self) -> str | None:
        """The text a shell would run if handed this word as a script, when it can be known."""
        return self.value if self.value is not None else self.argv

    @property
    def known(self) -> bool:
        return self.value is not None


def literal(text: str) -> Word:
    """A word that is exactly ``text`` (argv elements, values the analyser computed)."""
    return Word(text=text, value=text, shape=text)


@dataclass(frozen=True, slots=True, kw_only=True)
class Redirect:
    """A redirection, with the directory it is relative to."""

    op: str
    target: Word
    cwd: tuple[str, ...] | None
    write: bool
    read: bool
    fd: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """One simple command after wrappers were peeled off (``sudo env rm`` is ``rm`` with wrappers)."""

    program: str | None
    """Normalised program name (basename, quotes removed), or None when it cannot be identified."""
    program_word: Word
    args: tuple[Word, ...]
    display: str
    """The normalised command line, wrappers included, for evidence."""
    cwd: tuple[str, ...] | None
    """Absolute directories the command may run in; None when unknown."""
    wrappers: tuple[str, ...] = ()
    env: tuple[tuple[str, Word], ...] = ()
    redirects: tuple[Redirect, ...] = ()
    upstream: tuple[Command, ...] = ()
    """Commands whose output reaches this command's stdin through a pipe."""
    stdin: Word | None = None
    """Text or file redirected into stdin (heredoc, here-string, ``<``)."""
    stdin_is_text: bool = False
    location: str = "name"
    """How the program was named: ``name`` (PATH lookup), ``system`` (absolute path outside the
    workspace), ``workspace`` (a file in the workspace), ``unknown`` (a path that cannot be placed)."""
    analysed: bool = False
    """Its code (``sh -c`` string, a script the mission wrote, literal stdin) was read as commands."""
    fetched_script: bool = False
    """Runs a file that an earlier command of the same line downloaded."""
    path_in_workspace: bool = False
    """PATH has an entry inside the workspace when this program is looked up."""
    code: Word | None = None
    """Inline program text (``-c``, ``-e``) of an interpreter."""
    script: Word | None = None
    """Script file argument of an interpreter."""
    reads_stdin: bool = False
    """An interpreter that runs whatever arrives on stdin."""
    in_pipeline: bool = False
    background: bool = False
    fetches: bool = False
    """Its output comes from the network."""
    decodes: bool = False
    """Its output is decoded input."""
    literal_output: str | None = None
    """What it prints, when that is known (``echo 'x'``, ``cat <<'EOF'``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Issue:
    """Something about the text as a whole: it does not parse, it nests too deep, a fork bomb."""

    kind: str
    evidence: str


@dataclass(slots=True)
class Script:
    """Everything found in one command line, nested scripts included."""

    commands: list[Command] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    assignments: list[tuple[str, Word]] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    links: dict[str, str | None] = field(default_factory=dict)
    """Symbolic links the line makes: workspace-relative link path to the absolute target (None when
    the target cannot be known). Paths through them are judged by where they point."""
    venvs: set[str] = field(default_factory=set)
    """Workspace-relative virtualenvs the line makes (``python -m venv .v``)."""
