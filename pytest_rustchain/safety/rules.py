"""The safety rules: commands, file-step paths, environments and URLs turned into findings."""

from __future__ import annotations

import ipaddress
import os
import posixpath
import re
import shlex
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pytest_rustchain.safety import catalog as R
from pytest_rustchain.safety import programs
from pytest_rustchain.safety.facts import UNKNOWN, Command, Redirect, Script, Word, literal
from pytest_rustchain.safety.findings import Finding, Rule
from pytest_rustchain.safety.paths import (
    HOME_ROOT,
    Loc,
    Where,
    display_path,
    is_secret_path,
    locate,
    shape_display,
    where_of,
)
from pytest_rustchain.safety.patterns import LazyPattern

__all__ = [
    "WAIVABLE_BY_COMMAND",
    "WAIVABLE_BY_HOST",
    "analyse_command",
    "analyse_env",
    "analyse_path",
    "analyse_url",
    "host_matches",
]

WorkspaceKind = Literal["tmp", "project"]
PathOp = Literal["read", "write", "delete"]

WAIVABLE_BY_COMMAND = frozenset(
    {
        R.EXEC_INLINE.id,
        R.EXEC_OPAQUE.id,
        R.EXEC_WORKSPACE.id,
        R.EXEC_PATH.id,
        R.EXEC_UNKNOWN.id,
        R.EXEC_UNKNOWN_OUTSIDE.id,
        R.EXEC_PACKAGE.id,
    }
)
"""Opaque and unidentified-program rules: ``mission_allow_commands`` waives them for its programs."""

WAIVABLE_BY_HOST = frozenset({R.NET_EGRESS.id, R.NET_METADATA.id, R.NET_PRIVATE.id})
"""Network rules that ``mission_allow_hosts`` waives for its hosts."""

_STARTUP = LazyPattern(
    r"^~/(?:\.bashrc|\.bash_profile|\.bash_login|\.bash_logout|\.profile|\.zshrc|\.zprofile"
    r"|\.zshenv|\.zlogin|\.kshrc|\.cshrc|\.tcshrc|\.xinitrc|\.xprofile|\.pam_environment"
    r"|\.gitconfig|\.config/git/config|\.curlrc|\.wgetrc|\.npmrc|\.pypirc|\.inputrc"
    r"|\.config/fish(?:/|$)|\.config/autostart(?:/|$)|\.config/systemd(?:/|$)"
    r"|\.config/environment\.d(?:/|$)|\.ssh/authorized_keys|\.ssh/rc$|\.ssh/config$"
    r"|\.config/pip(?:/|$)|\.pip(?:/|$)|\.local/lib/python[^/]*/site-packages/[^/]*\.pth$)"
    r"|^/etc/(?:profile|profile\.d(?:/|$)|bash\.bashrc|bashrc|zsh(?:/|$)|environment$"
    r"|ld\.so\.preload|ld\.so\.conf|cron|crontab|anacrontab|sudoers|systemd(?:/|$)|init\.d(?:/|$)"
    r"|rc\.local|pam\.d(?:/|$)|ssh(?:/|$)|apt/apt\.conf\.d(?:/|$)|gitconfig)"
    r"|^/var/spool/cron|^/usr/(?:local/)?lib/python[^/]*/(?:site|dist)-packages/[^/]*\.pth$"
)
_HOME_ABS = re.compile(r"^/(?:root|home/[^/]+)(?=/|$)")
_PRIV_WRAPPERS = frozenset({"sudo", "doas", "pkexec", "run0", "su"})
_NOT_READERS = frozenset(
    {
        "echo",
        "printf",
        "test",
        "[",
        "true",
        "false",
        ":",
        "basename",
        "dirname",
        "cd",
        "pushd",
        "mkdir",
        "export",
        "declare",
        "local",
        "readonly",
        "typeset",
        "set",
        "realpath",
        "rm",
        "rmdir",
        "unlink",
        "touch",
    }
)
_CODE_RUNNERS = frozenset({"eval", "trap", "su", "watch", "flock", "script", *programs.SHELLS})
_TASK_RUNNERS = frozenset({"make", "gmake", "bmake", "just", "rake", "mage", "invoke", "task", "tox", "nox"})
_PKG_RUNNERS = frozenset({"npx", "bunx", "pnpx", "uvx"})
_JS_PMS = frozenset({"npm", "yarn", "pnpm", "bun"})
_JS_SCRIPTS = frozenset({"run", "run-script", "test", "t", "tst", "start", "restart", "stop", "exec"})
_PUBLISH = {
    "npm": frozenset({"publish", "unpublish", "dist-tag", "deprecate", "owner"}),
    "pnpm": frozenset({"publish"}),
    "yarn": frozenset({"publish", "npm"}),
    "bun": frozenset({"publish"}),
    "twine": frozenset({"upload", "register"}),
    "cargo": frozenset({"publish", "yank", "owner"}),
    "gem": frozenset({"push", "yank", "owner"}),
    "poetry": frozenset({"publish"}),
    "flit": frozenset({"publish"}),
    "hatch": frozenset({"publish"}),
    "uv": frozenset({"publish"}),
    "docker": frozenset({"push", "login"}),
    "podman": frozenset({"push", "login"}),
    "helm": frozenset({"push"}),
    "mvn": frozenset({"deploy"}),
    "gradle": frozenset({"publish"}),
    "dotnet": frozenset({"nuget"}),
}
_FORGE_CLIS = frozenset({"gh", "glab", "hub", "tea"})
_ADMIN = frozenset(
    {
        "mount",
        "umount",
        "swapon",
        "swapoff",
        "iptables",
        "ip6tables",
        "iptables-restore",
        "ip6tables-restore",
        "iptables-legacy",
        "nft",
        "ufw",
        "firewall-cmd",
        "modprobe",
        "insmod",
        "rmmod",
        "depmod",
        "setcap",
        "chroot",
        "nsenter",
        "useradd",
        "userdel",
        "usermod",
        "groupadd",
        "groupdel",
        "groupmod",
        "adduser",
        "deluser",
        "passwd",
        "chpasswd",
        "visudo",
        "reboot",
        "shutdown",
        "poweroff",
        "halt",
        "init",
        "telinit",
        "setenforce",
        "mknod",
        "sysctl",
        "update-alternatives",
        "ldconfig",
    }
)
_PKG_SYSTEM = {
    "apt": frozenset(
        {"install", "remove", "purge", "upgrade", "dist-upgrade", "full-upgrade", "autoremove", "reinstall"}
    ),
    "apt-get": frozenset({"install", "remove", "purge", "upgrade", "dist-upgrade", "autoremove", "reinstall"}),
    "aptitude": frozenset({"install", "remove", "purge", "upgrade"}),
    "dnf": frozenset({"install", "remove", "erase", "upgrade", "update", "reinstall"}),
    "yum": frozenset({"install", "remove", "erase", "upgrade", "update", "reinstall"}),
    "zypper": frozenset({"install", "in", "remove", "rm", "update", "up"}),
    "apk": frozenset({"add", "del", "upgrade"}),
    "snap": frozenset({"install", "remove", "refresh"}),
    "dpkg": frozenset({"-i", "--install", "-r", "--remove", "-P", "--purge"}),
}
_SCHEDULERS = frozenset(
    {"crontab", "at", "batch", "systemctl", "service", "launchctl", "update-rc.d", "chkconfig", "rc-update", "loginctl"}
)
_SYSTEMCTL_READ = frozenset(
    {
        "status",
        "is-active",
        "is-enabled",
        "is-failed",
        "list-units",
        "list-unit-files",
        "show",
        "cat",
        "--version",
        "list-timers",
        "help",
    }
)
_DISK_TOOLS = frozenset(
    {
        "mkfs",
        "mke2fs",
        "mkswap",
        "wipefs",
        "fdisk",
        "sfdisk",
        "gdisk",
        "sgdisk",
        "cfdisk",
        "parted",
        "blkdiscard",
        "mkdosfs",
        "mkntfs",
    }
)
_NET_CLIENTS = frozenset({"aria2c", "http", "https", "xh", "lftp", "ftp", "tftp", "fetch"})
_METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata", "metadata.azure.com", "instance-data", "instance-data.ec2.internal"}
)
_METADATA_NETS = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("100.100.100.200/32"),
)
_GIT_CODE_KEYS = LazyPattern(
    r"^(?:core\.(?:hookspath|fsmonitor|sshcommand|pager|editor|askpass|gitproxy|attributesfile"
    r"|excludesfile)|credential\.|sequence\.editor|diff\.external|gpg\.(?:[a-z]+\.)?program"
    r"|uploadpack\.packobjectshook|include\.path|includeif\.|filter\.[^.]+\.(?:clean|smudge|process)"
    r"|diff\.[^.]+\.(?:textconv|command)|merge\.[^.]+\.driver|pager\.|remote\.[^.]+\.(?:uploadpack"
    r"|receivepack|proxy)|http\.(?:[^.]*\.)?(?:extraheader|proxy)|url\.|protocol\.|safe\.directory)"
)
_GIT_SECRET_KEYS = LazyPattern(r"(?:credential|extraheader|token|password|url|insteadof)", re.I)
_CHMOD_MODE = LazyPattern(r"^(?:[0-7]{1,4}|[ugoa]*[-+=][rwxXstugo]*(?:,[ugoa]*[-+=][rwxXstugo]*)*)$")
_SETUID_SYMBOLIC = re.compile(r"[+=][rwxXt]*s")
_SED_EXEC = LazyPattern(r"(?:^|[;\n{}])\s*e(?:\s|$)|s(.)(?:\\.|(?!\1).)*\1(?:\\.|(?!\1).)*\1[gpiImM0-9w]*e")
_SED_WRITE = LazyPattern(r"(?:^|[;\n{}])\s*w\s+(\S+)|s(.)(?:\\.|(?!\2).)*\2(?:\\.|(?!\2).)*\2[gpiImMe0-9]*w\s+(\S+)")
_SCP_REMOTE = LazyPattern(r"^(?:[^/:@]+@)?(\[[^\]]+\]|[^/:]+):")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True, slots=True)
class _Opts:
    flags: frozenset[str]
    values: Mapping[str, Sequence[Word]]
    positional: Sequence[Word]


def _tail(word: Word, n: int) -> Word:
    """The part of ``word`` after its first ``n`` characters (the value of ``--opt=value``)."""
    shape = word.shape[n:]
    value = word.value[n:] if word.value is not None else None
    text = word.text[n:] if len(word.text) >= n else word.text
    return Word(
        text=text,
        value=value,
        shape=shape,
        glob=word.glob,
        home=shape.startswith("~"),
        fetches=word.fetches,
        decodes=word.decodes,
    )


def _parse(args: Sequence[Word], with_arg: frozenset[str] = frozenset()) -> _Opts:
    """GNU-style option parsing: short clusters, ``--long=value``, ``--`` and option arguments."""
    flags: set[str] = set()
    values: dict[str, list[Word]] = {}
    positional: list[Word] = []
    i = 0
    n = len(args)
    while i < n:
        word = args[i]
        value = word.value
        if value is None or not value.startswith("-") or value == "-":
            positional.append(word)
            i += 1
            continue
        if value == "--":
            positional.extend(args[i + 1 :])
            break
        if value.startswith("--"):
            key, eq, _ = value.partition("=")
            if eq:
                values.setdefault(key, []).append(_tail(word, len(key) + 1))
            elif key in with_arg and i + 1 < n:
                values.setdefault(key, []).append(args[i + 1])
                i += 1
            else:
                flags.add(key)
            i += 1
            continue
        j = 1
        while j < len(value):
            key = "-" + value[j]
            if key in with_arg:
                if j + 1 < len(value):
                    values.setdefault(key, []).append(_tail(word, j + 1))
                elif i + 1 < n:
                    values.setdefault(key, []).append(args[i + 1])
                    i += 1
                break
            flags.add(key)
            j += 1
        i += 1
    return _Opts(frozenset(flags), values, positional)


def _ws(workspace: Path | str) -> str:
    return posixpath.normpath(os.fspath(workspace))


def _host_of(text: str) -> str | None:
    """The host of a URL or ``host[:port][/path]`` string; None when it has no host."""
    if _URL.match(text):
        try:
            parts = urlsplit(text)
            return (parts.hostname or "").lower() or None
        except ValueError:
            return None
    head = text.split("/", 1)[0]
    if "@" in head:
        head = head.rsplit("@", 1)[1]
    if head.startswith("["):
        return head[1:].split("]", 1)[0].lower() or None
    if head.count(":") == 1:
        head = head.split(":", 1)[0]
    return head.lower() or None


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        try:
            # ``http://2852039166/`` and other numeric forms still reach 169.254.169.254.
            number = int(host, 0)
        except ValueError:
            return None
        if 0 <= number < 2**32:
            return ipaddress.IPv4Address(number)
        return None


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    ip = _ip(host)
    return ip is not None and (ip.is_loopback or ip.is_unspecified)


def _is_metadata(host: str) -> bool:
    if host in _METADATA_HOSTS:
        return True
    ip = _ip(host)
    return ip is not None and any(ip in net for net in _METADATA_NETS)


def host_matches(host: str, allow_hosts: Iterable[str]) -> bool:
    """True when ``host`` is listed: exact name, ``*.example.com`` / ``.example.com``, or a CIDR."""
    host = host.lower().strip("[]")
    ip = _ip(host)
    for entry in allow_hosts:
        entry = entry.strip().lower()
        if not entry:
            continue
        if "/" in entry or _ip(entry) is not None:
            try:
                net = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                continue
            if ip is not None and ip.version == net.version and ip in net:
                return True
            continue
        if entry.startswith("*."):
            entry = entry[1:]
        if entry.startswith("."):
            if host.endswith(entry) or host == entry[1:]:
                return True
        elif host == entry:
            return True
    return False


@dataclass(slots=True)
class _Judge:
    ws: str
    project: bool
    out: list[Finding] = field(default_factory=list)
    links: dict[str, str | None] = field(default_factory=dict)
    """Symbolic links the line makes (workspace-relative link to absolute target)."""
    look_on_disk: bool = False
    """Follow links already on disk in the workspace too (at run time), through ``disk``."""
    _disk: str | None = field(default=None, init=False, repr=False)
    _disk_known: bool = field(default=False, init=False, repr=False)

    @property
    def looked_on_disk(self) -> bool:
        return self._disk_known and self.look_on_disk

    @property
    def disk(self) -> str | None:
        """The workspace's real path when it exists, looked up when a path first needs it: a command
        without paths (``true``) costs no walk of the workspace's path on disk."""
        if not self._disk_known:
            self._disk = _on_disk(self.ws) if self.look_on_disk else None
            self._disk_known = True
        return self._disk

    def add(self, rule: Rule, evidence: str, *, detail: str = "", subject: str = "") -> None:
        self.out.append(rule.finding(evidence, detail=detail, subject=subject))

    # ---------------------------------------------------------------- script

    def script(self, script: Script) -> None:
        for issue in script.issues:
            if issue.kind == "parse":
                self.add(R.PARSE_FAILED, issue.evidence)
            elif issue.kind == "depth":
                self.add(R.PARSE_LIMIT, issue.evidence)
            elif issue.kind == "budget":
                self.add(R.PARSE_BUDGET, issue.evidence)
            elif issue.kind == "fork-bomb":
                self.add(R.PROC_FORK_BOMB, issue.evidence)
        self.links = {**self.links, **script.links}
        for link, target in script.links.items():
            self.link(link, target)
        for name, word in script.assignments:
            if programs.is_loader_variable(name):
                self.add(R.ENV_LOADER, f"{name}={word.text}", detail=name)
        for command in script.commands:
            self.command(command)
        for redirect in script.redirects:
            self.redirect(redirect)

    # ----------------------------------------------------------------- paths

    def link(self, link: str, target: str | None) -> None:
        ev = f"ln -s {display_path(target) if target else '?'} {link}"
        if target is None:
            self.add(R.LINK_OUT, ev, detail="target cannot be known")
            return
        where, rel = where_of(target, self.ws)
        if where is Where.INSIDE:
            if ".git" in rel.split("/"):
                self.add(R.FS_GIT_DIR, ev, detail=f"link {link} -> {rel or '.'}")
        elif where is not Where.SINK:
            self.add(R.LINK_OUT, ev, detail=f"{link} -> {display_path(target)}")

    def locs(self, word: Word, cwd: tuple[str, ...] | None, *, through: bool = True) -> list[Loc]:
        """Where ``word`` points; ``through``: a path that is itself a link is judged by its target."""
        found = locate(word, cwd, self.ws)
        if not self.links and self.disk is None:
            return found
        return [self.follow(loc, through) for loc in found]

    def follow(self, loc: Loc, through: bool) -> Loc:
        if loc.where is not Where.INSIDE or not loc.rel:
            return loc
        rel = loc.rel
        for link, target in self.links.items():
            if rel.startswith(link + "/") or (through and rel == link):
                if target is None:
                    return Loc(where=Where.UNKNOWN, display=f"{rel} (through a link)")
                return self.relocated(target + rel[len(link) :], self.ws)
        if self.disk is not None:
            full = posixpath.join(self.disk, rel)
            if through:
                real = realpath_below(self.disk, rel)
            else:
                head, _, name = rel.rpartition("/")
                real = posixpath.join(realpath_below(self.disk, head) if head else self.disk, name)
            if real != posixpath.normpath(full):
                return self.relocated(real, self.disk)
        return loc

    @staticmethod
    def relocated(path: str, ws: str) -> Loc:
        """A path reached through a link, classified by where it really is."""
        path = posixpath.normpath(path)
        where, rel = where_of(path, ws)
        if where is Where.INSIDE:
            return Loc(where=where, path=path, rel=rel, display=rel or ".", covers_root=rel == "")
        return Loc(where=where, path=path, display=display_path(path))

    def target(
        self,
        c: Command,
        word: Word,
        *,
        op: str,
        recursive: bool = False,
        destructive: bool = False,
        cwd: tuple[str, ...] | None = None,
        evidence: str | None = None,
        through: bool | None = None,
    ) -> None:
        """Judge ``word`` as something ``c`` writes (``op`` write/meta), deletes or moves."""
        ev = c.display if evidence is None else evidence
        if through is None:
            through = op not in ("delete", "move")
        for loc in self.locs(word, c.cwd if cwd is None else cwd, through=through):
            if word.value is not None and _own_home(loc, op):
                continue
            self.judge_loc(loc, ev, op=op, recursive=recursive, destructive=destructive)

    def judge_loc(self, loc: Loc, ev: str, *, op: str, recursive: bool = False, destructive: bool = False) -> None:
        where = loc.where
        if where is Where.SOCKET:
            self.add(R.NET_REVERSE_SHELL, ev, detail=loc.display)
        elif where is Where.DEVICE:
            if op in ("write", "meta"):
                self.add(R.DEV_WRITE, ev, detail=loc.display)
            else:
                self.add(R.FS_OUTSIDE, ev, detail=loc.display)
        elif where is Where.SINK:
            if op in ("delete", "move", "meta"):
                self.add(R.FS_OUTSIDE, ev, detail=loc.display)
        elif where is Where.OUTSIDE:
            if op != "delete" and _STARTUP.match(_home_display(loc.display)):
                self.add(R.PERS_STARTUP, ev, detail=loc.display)
            elif recursive:
                self.add(R.FS_RECURSIVE_OUTSIDE, ev, detail=loc.display)
            else:
                self.add(R.FS_OUTSIDE, ev, detail=loc.display)
        elif where is Where.UNKNOWN:
            if recursive:
                self.add(R.FS_RECURSIVE_UNKNOWN, ev, detail=loc.display)
            else:
                self.add(R.FS_UNKNOWN, ev, detail=loc.display)
        else:
            self.inside(loc, ev, op=op, recursive=recursive, destructive=destructive)

    def inside(self, loc: Loc, ev: str, *, op: str, recursive: bool, destructive: bool) -> None:
        parts = loc.rel.split("/") if loc.rel else []
        if ".git" in parts:
            sub = parts[parts.index(".git") + 1 :]
            if sub and sub[0] == "hooks" and (op != "delete" or len(sub) > 1):
                self.add(R.PERS_GIT_HOOK, ev, detail=loc.rel)
            elif sub == ["config"] and op != "delete":
                self.add(R.PERS_GIT_CONFIG, ev, detail=loc.rel)
            elif not sub and op in ("delete", "move"):
                if self.project:
                    self.add(R.FS_WIPE, ev, detail=loc.rel)
                else:
                    self.add(R.FS_DESTRUCTIVE, ev, detail=loc.rel)
            else:
                self.add(R.FS_GIT_DIR, ev, detail=loc.rel)
            return
        if loc.covers_root and (op in ("delete", "move") or (recursive and op == "meta")):
            if self.project:
                self.add(R.FS_WIPE, ev, detail=loc.display)
            else:
                self.add(R.FS_DESTRUCTIVE, ev, detail=loc.display)
        elif op == "delete" and (destructive or recursive):
            self.add(R.FS_DESTRUCTIVE, ev, detail=loc.rel or ".")

    def redirect(self, r: Redirect) -> None:
        ev = f"{r.op} {r.target.text}"
        for loc in self.locs(r.target, r.cwd):
            if loc.where is Where.SOCKET:
                self.add(R.NET_REVERSE_SHELL, ev, detail=loc.display)
                continue
            if r.write and not (r.target.value is not None and _own_home(loc, "write")):
                self.judge_loc(loc, ev, op="write")
            if r.read:
                self.read_loc(loc, ev)
        if r.read and r.target.value is None:
            self.read_shape(r.target, r.cwd, ev)

    def read_loc(self, loc: Loc, ev: str) -> None:
        if loc.where is Where.INSIDE:
            if loc.rel == ".git/config" or loc.rel.endswith("/.git/config"):
                self.add(R.SEC_GIT_CREDENTIALS, ev, detail=loc.rel)
        elif loc.where in (Where.OUTSIDE, Where.DEVICE) and is_secret_path(loc.display):
            self.add(R.SEC_FILE, ev, detail=loc.display)

    def read_shape(self, word: Word, cwd: tuple[str, ...] | None, ev: str) -> None:
        for display in shape_display(word, cwd, self.ws):
            if is_secret_path(display):
                self.add(R.SEC_FILE, ev, detail=display)

    # -------------------------------------------------------------- commands

    def command(self, c: Command) -> None:
        ev = c.display
        program = c.program
        for wrapper in c.wrappers:
            if wrapper in _PRIV_WRAPPERS:
                self.add(R.PRIV_ESCALATE, ev, detail=wrapper, subject=wrapper)
            elif wrapper == "systemd-run":
                # A transient unit outlives the step (and with a timer, runs again later).
                self.add(R.PERS_SCHEDULE, ev, detail=wrapper)
        for name, _word in c.env:
            if programs.is_loader_variable(name):
                self.add(R.ENV_LOADER, ev, detail=name)
        if program is None:
            self.unidentified(c)
            self.reads(c)
            return
        if c.path_in_workspace and c.location == "name":
            self.add(R.EXEC_PATH, ev, subject=program)
        if c.location in ("workspace", "unknown"):
            if c.fetched_script:
                self.add(R.EXEC_REMOTE, ev, detail="runs a file it downloaded")
            elif not c.analysed:
                self.add(R.EXEC_WORKSPACE, ev, detail=_not_a_venv(c.program_word), subject=c.program_word.text)
        else:
            self.code(c, program)
            handler = _HANDLERS.get(program)
            if handler is not None:
                handler(self, c)
            elif program.startswith("mkfs."):
                self.add(R.DEV_FORMAT, ev)
        self.reads(c)

    def unidentified(self, c: Command) -> None:
        outside = False
        for arg in c.args:
            value = arg.value
            if value is not None and value.startswith("-"):
                if "=" not in value:
                    continue
                word = _tail(arg, value.index("=") + 1)
            else:
                word = arg
            for loc in self.locs(word, c.cwd):
                if loc.where in (Where.OUTSIDE, Where.DEVICE, Where.SOCKET):
                    outside = True
        rule = R.EXEC_UNKNOWN_OUTSIDE if outside else R.EXEC_UNKNOWN
        self.add(rule, c.display, subject=c.program_word.text)

    def code(self, c: Command, program: str) -> None:
        """Interpreters, eval and ``sh -c``: where their code comes from decides the verdict."""
        ev = c.display
        if c.fetched_script:
            self.add(R.EXEC_REMOTE, ev, detail="runs a file it downloaded")
            return
        if c.analysed:
            return
        opaque = R.EXEC_OPAQUE if program in _CODE_RUNNERS else R.EXEC_INLINE
        if c.code is not None:
            if c.code.fetches:
                self.add(R.EXEC_REMOTE, ev)
            elif c.code.decodes:
                self.add(R.EXEC_DECODED, ev)
            else:
                self.add(opaque, ev, subject=program)
            return
        if c.script is not None and not c.reads_stdin:
            script = c.script
            if script.procsub:
                if script.fetches:
                    self.add(R.EXEC_REMOTE, ev)
                elif script.decodes:
                    self.add(R.EXEC_DECODED, ev)
                else:
                    self.add(R.EXEC_OPAQUE, ev, subject=program)
                return
            runs_scripts = program in (".", "source") or programs.interpreter_for(program) is not None
            if runs_scripts and self.runs_workspace_file(script, c.cwd):
                self.add(R.EXEC_WORKSPACE, ev, subject=program)
            return
        if not c.reads_stdin:
            return
        stdin = c.stdin
        if stdin is not None:
            if stdin.fetches or (stdin.procsub and stdin.fetches):
                self.add(R.EXEC_REMOTE, ev)
            elif stdin.decodes:
                self.add(R.EXEC_DECODED, ev)
            elif c.stdin_is_text or stdin.procsub:
                self.add(R.EXEC_OPAQUE, ev, subject=program)
            elif self.runs_workspace_file(stdin, c.cwd):
                self.add(R.EXEC_WORKSPACE, ev, subject=program)
            return
        if c.upstream:
            if any(u.fetches for u in c.upstream):
                self.add(R.EXEC_REMOTE, ev)
            elif any(u.decodes for u in c.upstream):
                self.add(R.EXEC_DECODED, ev)
            else:
                self.add(R.EXEC_OPAQUE, ev, subject=program)

    def runs_workspace_file(self, word: Word, cwd: tuple[str, ...] | None) -> bool:
        if word.home or word.value is None:
            return True
        for loc in self.locs(word, cwd):
            if loc.where in (Where.INSIDE, Where.UNKNOWN):
                return True
            if loc.where is Where.OUTSIDE and not word.value.startswith("/"):
                return True
        return False

    def reads(self, c: Command) -> None:
        """Secret files and sockets named anywhere in the arguments of a program that reads files."""
        if c.program in _NOT_READERS:
            return
        cwd_inside = c.cwd is not None and all(p == self.ws or p.startswith(self.ws + "/") for p in c.cwd)
        for arg in c.args:
            value = arg.value
            word = arg
            if value is not None:
                if not value or (value.startswith("-") and "=" not in value):
                    continue
                if (
                    cwd_inside
                    and not arg.brace
                    and value[0] not in "/~@-"
                    and not self.links
                    and self.disk is None
                    and ".." not in value
                    and "config" not in value
                    and "=" not in value
                    and ":" not in value
                ):
                    # A plain relative name from inside the workspace stays inside it.
                    continue
                if _URL.match(value):
                    if value.lower().startswith("file://"):
                        word = literal(urlsplit(value).path)
                    else:
                        continue
                elif value.startswith("@"):
                    word = _tail(arg, 1)
                elif "=" in value and (value.startswith("-") or c.program == "dd"):
                    word = _tail(arg, value.index("=") + 1)
                for loc in self.locs(word, c.cwd):
                    if loc.where is Where.SOCKET:
                        self.add(R.NET_REVERSE_SHELL, c.display, detail=loc.display)
                    else:
                        self.read_loc(loc, c.display)
            else:
                shape = arg.shape
                if shape.startswith("@"):
                    word = _tail(arg, 1)
                self.read_shape(word, c.cwd, c.display)

    # ----------------------------------------------------------- network

    def egress(self, c: Command, hosts: Iterable[str | None], *, detail: str = "") -> None:
        for host in hosts:
            if host is None:
                self.add(R.NET_EGRESS, c.display, detail=detail or "host cannot be known")
                continue
            if _is_loopback(host):
                continue
            if _is_metadata(host):
                self.add(R.NET_METADATA, c.display, detail=host, subject=host)
            else:
                self.add(R.NET_EGRESS, c.display, detail=host, subject=host)

    def sends_local_data(self, c: Command) -> bool:
        """stdin comes from a file or from a command whose output is not a known literal."""
        if c.stdin is not None:
            return not (c.stdin_is_text and c.stdin.value is not None)
        return any(u.literal_output is None for u in c.upstream)


def _own_home(loc: Loc, op: str) -> bool:
    """A known path below ``~`` (not ``~`` itself, nor everything in it): each mission has its own
    HOME, so ``rm -rf ~/.cache/pip`` or ``cp x ~/.config/app/`` stay in the mission. Startup files
    are still judged (RC-PERS-001), and so are reads of secrets."""
    if loc.where is not Where.OUTSIDE or not loc.path.startswith(HOME_ROOT + "/"):
        return False
    first = loc.path[len(HOME_ROOT) + 1 :].split("/", 1)[0]
    if not first or first == ".." or any(ch in first for ch in "*?["):
        return False
    return not (op != "delete" and _STARTUP.match(_home_display(loc.display)))


def _home_display(display: str) -> str:
    m = _HOME_ABS.match(display)
    return "~" + display[m.end() :] if m else display


def _hosts_of(words: Iterable[Word]) -> list[str | None]:
    hosts: list[str | None] = []
    for word in words:
        if word.value is None:
            hosts.append(None)
            continue
        host = _host_of(word.value)
        if host:
            hosts.append(host)
    return hosts


# ------------------------------------------------------------------ handlers


def _rm(j: _Judge, c: Command) -> None:
    o = _parse(c.args)
    recursive = bool(o.flags & {"-r", "-R", "--recursive"})
    force = bool(o.flags & {"-f", "--force"})
    if "--no-preserve-root" in o.flags:
        j.add(R.FS_RECURSIVE_OUTSIDE, c.display, detail="--no-preserve-root")
    for word in o.positional:
        j.target(c, word, op="delete", recursive=recursive, destructive=recursive or force)


def _delete_each(j: _Judge, c: Command) -> None:
    for word in _parse(c.args).positional:
        j.target(c, word, op="delete")


def _shred(j: _Judge, c: Command) -> None:
    o = _parse(c.args, frozenset({"-n", "-s", "--iterations", "--size", "--random-source"}))
    op = "delete" if o.flags & {"-u", "--remove"} else "write"
    for word in o.positional:
        j.target(c, word, op="write", destructive=True)
        if op == "delete":
            j.target(c, word, op="delete", destructive=True)


def _move_copy(j: _Judge, c: Command) -> None:
    o = _parse(c.args, frozenset({"-t", "--target-directory", "-S", "--suffix"}))
    recursive = c.program == "cp" and bool(o.flags & {"-r", "-R", "-a", "--recursive", "--archive"})
    targets = o.values.get("-t") or o.values.get("--target-directory")
    sources = list(o.positional)
    if targets:
        dests = list(targets)
    elif len(sources) >= 2:
        dests = [sources.pop()]
    else:
        dests = []
    if c.program == "mv":
        for word in sources:
            j.target(c, word, op="move")
    for word in dests:
        j.target(c, word, op="write", recursive=recursive)


def _install(j: _Judge, c: Command) -> None:
    o = _parse(
        c.args,
        frozenset({"-m", "-o", "-g", "-S", "-t", "--mode", "--owner", "--group", "--suffix", "--target-directory"}),
    )
    if o.flags & {"-d", "--directory"}:
        dests = list(o.positional)
    elif o.values.get("-t") or o.values.get("--target-directory"):
        dests = list(o.values.get("-t", ())) + list(o.values.get("--target-directory", ()))
    else:
        dests = list(o.positional[-1:]) if len(o.positional) >= 2 else []
    for word in dests:
        j.target(c, word, op="write")


def _ln(j: _Judge, c: Command) -> None:
    o = _parse(c.args, frozenset({"-t", "--target-directory", "-S", "--suffix"}))
    target_dir = list(o.values.get("-t", ())) + list(o.values.get("--target-directory", ()))
    if target_dir:
        links = target_dir
    elif len(o.positional) >= 2:
        links = [o.positional[-1]]
    elif o.positional and o.positional[0].value is not None:
        links = [literal(posixpath.basename(o.positional[0].value.rstrip("/")) or ".")]
    else:
        links = []
    for word in links:
        # The link itself is written, not what an existing link of that name points to.
        j.target(c, word, op="write", through=False)


_WRITE_ARGS = {
    "touch": frozenset({"-r", "-d", "-t", "--reference", "--date"}),
    "mkdir": frozenset({"-m", "--mode", "--context"}),
    "truncate": frozenset({"-s", "-r", "--size", "--reference"}),
    "tee": frozenset(),
    "mkfifo": frozenset({"-m", "--mode"}),
}


def _write_each(j: _Judge, c: Command) -> None:
    o = _parse(c.args, _WRITE_ARGS.get(c.program or "", frozenset()))
    for word in o.positional:
        j.target(c, word, op="write")


def _dd(j: _Judge, c: Command) -> None:
    for arg in c.args:
        value = arg.value
        shape = arg.shape
        if (value or shape).startswith("of="):
            j.target(c, _tail(arg, 3), op="write")


def _chmod(j: _Judge, c: Command) -> None:
    mode: str | None = None
    recursive = False
    reference = False
    targets: list[Word] = []
    for arg in c.args:
        value = arg.value
        if value is not None and mode is None and not reference and _CHMOD_MODE.match(value):
            mode = value
            continue
        if value is not None and value.startswith("--reference"):
            reference = True
            continue
        if value is not None and value.startswith("-") and len(value) > 1:
            if value in ("-R", "--recursive") or (not value.startswith("--") and "R" in value):
                recursive = True
            continue
        targets.append(arg)
    if mode is not None and _setuid(mode):
        j.add(R.PRIV_SETUID, c.display, detail=mode)
    for word in targets:
        j.target(c, word, op="meta", recursive=recursive)


def _setuid(mode: str) -> bool:
    if mode.isdigit():
        return len(mode) == 4 and int(mode[0]) & 6 != 0
    return bool(_SETUID_SYMBOLIC.search(mode))


def _chown(j: _Judge, c: Command) -> None:
    o = _parse(c.args, frozenset({"--from"}))
    recursive = bool(o.flags & {"-R", "--recursive"})
    targets = list(o.positional)
    if not any(k.startswith("--reference") for k in o.values) and targets:
        targets = targets[1:]
    for word in targets:
        j.target(c, word, op="meta", recursive=recursive)


def _chattr(j: _Judge, c: Command) -> None:
    o = _parse(c.args, frozenset({"-v", "-p"}))
    positional = [w for w in o.positional if not (w.value or "").startswith(("+", "="))]
    recursive = "-R" in o.flags
    for word in positional:
        j.target(c, word, op="meta", recursive=recursive)


def _sed(j: _Judge, c: Command) -> None:
    o = _parse(c.args, frozenset({"-e", "-f", "--expression", "--file", "-l", "--line-length"}))
    in_place = any(k == "-i" or k == "--in-place" for k in o.flags) or "--in-place" in o.values
    in_place = in_place or any(
        (a.value or "").startswith("-i")
        or ((a.value or "").startswith("-") and "i" in (a.value or "") and not (a.value or "").startswith("--"))
        for a in c.args
    )
    scripts = list(o.values.get("-e", ())) + list(o.values.get("--expression", ()))
    files = list(o.positional)
    if not scripts and not o.values.get("-f") and not o.values.get("--file") and files:
        scripts = [files.pop(0)]
    for script in scripts:
        if script.value is None:
            continue
        if _SED_EXEC.search(script.value):
            j.add(R.EXEC_INLINE, c.display, detail="sed e command", subject="sed")
        for m in _SED_WRITE.finditer(script.value):
            target = m.group(1) or m.group(3)
            if target and target not in ("/dev/stdout", "/dev/stderr"):
                j.target(c, literal(target), op="write")
    if in_place:
        for word in files:
            j.target(c, word, op="write")


def _sort(j: _Judge, c: Command) -> None:
    o = _parse(
        c.args,
        frozenset(
            {
                "-o",
                "--output",
                "-k",
                "-t",
                "-S",
                "-T",
                "--key",
                "--field-separator",
                "--buffer-size",
                "--temporary-directory",
            }
        ),
    )
    for word in list(o.values.get("-o", ())) + list(o.values.get("--output", ())):
        j.target(c, word, op="write")


def _tar(j: _Judge, c: Command) -> None:
    args = list(c.args)
    mode = ""
    archive: Word | None = None
    directory: list[Word] = []
    if args and args[0].value is not None and not args[0].value.startswith("-"):
        bundle = args[0].value
        mode = "".join(ch for ch in bundle if ch in "xtcruA")
        rest = args[1:]
        if "f" in bundle and rest:
            archive = rest[0]
            rest = rest[1:]
        args = rest
    o = _parse(
        args,
        frozenset(
            {
                "-f",
                "--file",
                "-C",
                "--directory",
                "-T",
                "--files-from",
                "-X",
                "--exclude-from",
                "-I",
                "--use-compress-program",
                "--to-command",
                "--info-script",
                "-F",
                "--new-volume-script",
                "--rsh-command",
                "-b",
                "--blocking-factor",
                "-K",
                "-N",
                "-V",
                "--label",
            }
        ),
    )
    for flag, letter in (
        ("-x", "x"),
        ("--extract", "x"),
        ("--get", "x"),
        ("-c", "c"),
        ("--create", "c"),
        ("-r", "c"),
        ("--append", "c"),
        ("-u", "c"),
        ("--update", "c"),
    ):
        if flag in o.flags:
            mode += letter
    archive = archive or next(iter(list(o.values.get("-f", ())) + list(o.values.get("--file", ()))), None)
    directory = list(o.values.get("-C", ())) + list(o.values.get("--directory", ()))
    for key in (
        "--to-command",
        "-I",
        "--use-compress-program",
        "--info-script",
        "-F",
        "--new-volume-script",
        "--rsh-command",
    ):
        if key in o.values:
            j.add(R.EXEC_INLINE, c.display, detail=f"tar {key}", subject="tar")
    if any(
        k.startswith("--checkpoint-action") and "exec" in (w.value or w.text) for k, ws in o.values.items() for w in ws
    ):
        j.add(R.EXEC_INLINE, c.display, detail="tar --checkpoint-action=exec", subject="tar")
    if "x" in mode:
        for word in directory or [literal(".")]:
            j.target(c, word, op="write", recursive=True)
    elif "c" in mode and archive is not None and archive.value != "-":
        j.target(c, archive, op="write")


def _unzip(j: _Judge, c: Command) -> None:
    o = _parse(c.args, frozenset({"-d", "-x", "-P"}))
    for word in o.values.get("-d", ()):
        j.target(c, word, op="write", recursive=True)


def _rsync(j: _Judge, c: Command) -> None:
    o = _parse(
        c.args,
        frozenset(
            {
                "-e",
                "--rsh",
                "-f",
                "--filter",
                "--exclude",
                "--include",
                "--exclude-from",
                "--include-from",
                "--files-from",
                "-T",
                "--temp-dir",
                "--password-file",
                "--log-file",
                "--partial-dir",
                "-B",
                "--block-size",
                "--chmod",
                "--chown",
                "--max-size",
                "--min-size",
                "--bwlimit",
                "--port",
                "-M",
                "--remote-option",
                "--rsync-path",
                "--backup-dir",
                "--suffix",
                "--compare-dest",
                "--link-dest",
                "--copy-dest",
            }
        ),
    )
    positional = list(o.positional)
    if len(positional) < 2:
        j.egress(c, [h for w in positional if _is_remote(w) for h in _hosts_of([w])])
        return
    dest = positional[-1]
    sources = positional[:-1]
    if _is_remote(dest):
        j.add(R.NET_EXFILTRATION, c.display, detail=dest.text)
    else:
        recursive = bool(o.flags & {"-a", "-r", "--archive", "--recursive"})
        deletes = any(f.startswith("--delete") for f in o.flags)
        j.target(c, dest, op="write", recursive=recursive or deletes)
    remote_sources = [w for w in sources if _is_remote(w)]
    if remote_sources:
        j.egress(c, [_host_of(_strip_rsync(w.value or "")) for w in remote_sources])
    if "--remove-source-files" in o.flags:
        for word in sources:
            if not _is_remote(word):
                j.target(c, word, op="delete")


def _strip_rsync(value: str) -> str:
    if value.startswith("rsync://"):
        return value
    return value.split(":", 1)[0]


def _is_remote(word: Word) -> bool:
    value = word.value
    if value is None:
        return False
    if value.startswith("rsync://") or _URL.match(value):
        return True
    return bool(_SCP_REMOTE.match(value)) and not value.startswith(("/", "./", "~"))


def _scp(j: _Judge, c: Command) -> None:
    o = _parse(c.args, frozenset({"-i", "-P", "-o", "-F", "-l", "-c", "-J", "-S", "-D", "-X"}))
    positional = list(o.positional)
    if c.program == "sftp":
        j.add(R.NET_EXFILTRATION, c.display, detail="sftp session")
        return
    if len(positional) < 2:
        return
    dest = positional[-1]
    sources = positional[:-1]
    if _is_remote(dest):
        j.add(R.NET_EXFILTRATION, c.display, detail=dest.text)
    else:
        j.target(c, dest, op="write", recursive="-r" in o.flags)
    remote = [w for w in sources if _is_remote(w)]
    if remote:
        j.egress(c, [_host_of((w.value or "").split(":", 1)[0]) for w in remote])


_CURL_ARG = frozenset(
    {
        "-A",
        "-b",
        "-c",
        "-C",
        "-d",
        "-D",
        "-e",
        "-E",
        "-F",
        "-H",
        "-K",
        "-m",
        "-o",
        "-P",
        "-Q",
        "-r",
        "-T",
        "-u",
        "-U",
        "-w",
        "-x",
        "-X",
        "-y",
        "-Y",
        "-z",
        "--data",
        "--data-ascii",
        "--data-binary",
        "--data-raw",
        "--data-urlencode",
        "--json",
        "--form",
        "--form-string",
        "--upload-file",
        "--output",
        "--output-dir",
        "--config",
        "--header",
        "--user",
        "--proxy",
        "--request",
        "--url",
        "--cookie",
        "--cookie-jar",
        "--referer",
        "--user-agent",
        "--connect-to",
        "--resolve",
        "--max-time",
        "--retry",
        "--retry-delay",
        "--retry-max-time",
        "--cacert",
        "--capath",
        "--cert",
        "--key",
        "--pass",
        "--dump-header",
        "--trace",
        "--trace-ascii",
        "--stderr",
        "--write-out",
        "--limit-rate",
        "--max-filesize",
        "--interface",
        "--local-port",
        "--proxy-user",
        "--continue-at",
        "--range",
        "--time-cond",
        "--variable",
        "--connect-timeout",
        "--cert-type",
        "--key-type",
        "--ciphers",
        "--netrc-file",
        "--oauth2-bearer",
        "--unix-socket",
        "--abstract-unix-socket",
        "--proto",
        "--proto-redir",
        "--dns-servers",
    }
)
_CURL_DATA = ("-d", "--data", "--data-ascii", "--data-binary", "--data-urlencode", "--json")
_CURL_WRITES = (
    "-o",
    "--output",
    "-D",
    "--dump-header",
    "-c",
    "--cookie-jar",
    "--trace",
    "--trace-ascii",
    "--stderr",
    "--output-dir",
)


def _curl(j: _Judge, c: Command) -> None:
    o = _parse(c.args, _CURL_ARG)
    ev = c.display
    for key in _CURL_DATA:
        for word in o.values.get(key, ()):
            text = word.value if word.value is not None else word.shape
            at = text.find("@")
            if at == 0 or (key == "--data-urlencode" and at > 0 and "=" not in text[:at]):
                file = text[at + 1 :]
                if file != "-" or j.sends_local_data(c):
                    j.add(R.NET_EXFILTRATION, ev, detail=f"{key} {word.text}")
    for key in ("-F", "--form"):
        for word in o.values.get(key, ()):
            text = word.value if word.value is not None else word.shape
            if "=@" in text or "=<" in text:
                j.add(R.NET_EXFILTRATION, ev, detail=f"{key} {word.text}")
    for key in ("-T", "--upload-file"):
        for word in o.values.get(key, ()):
            j.add(R.NET_EXFILTRATION, ev, detail=f"{key} {word.text}")
    for key in _CURL_WRITES:
        for word in o.values.get(key, ()):
            if word.value != "-":
                j.target(c, word, op="write")
    if o.flags & {"-O", "--remote-name", "--remote-name-all"} and not o.values.get("--output-dir"):
        j.target(c, literal("."), op="write")
    urls = list(o.positional) + list(o.values.get("--url", ()))
    for word in urls:
        if word.value is not None and word.value.lower().startswith("file://"):
            urls = [u for u in urls if u is not word]
    j.egress(c, _hosts_of(urls))


_WGET_ARG = frozenset(
    {
        "-O",
        "-o",
        "-a",
        "-P",
        "-i",
        "-e",
        "-t",
        "-T",
        "-w",
        "-U",
        "-B",
        "-Q",
        "-l",
        "-A",
        "-R",
        "-D",
        "-I",
        "-X",
        "--output-document",
        "--output-file",
        "--append-output",
        "--directory-prefix",
        "--input-file",
        "--execute",
        "--tries",
        "--timeout",
        "--wait",
        "--user-agent",
        "--base",
        "--quota",
        "--level",
        "--accept",
        "--reject",
        "--domains",
        "--include-directories",
        "--exclude-directories",
        "--post-data",
        "--post-file",
        "--body-data",
        "--body-file",
        "--method",
        "--header",
        "--user",
        "--password",
        "--load-cookies",
        "--save-cookies",
        "--ca-certificate",
        "--certificate",
        "--private-key",
        "--bind-address",
        "--limit-rate",
        "--referer",
    }
)


def _wget(j: _Judge, c: Command) -> None:
    o = _parse(c.args, _WGET_ARG)
    for key in ("--post-file", "--body-file"):
        for word in o.values.get(key, ()):
            j.add(R.NET_EXFILTRATION, c.display, detail=f"{key} {word.text}")
    outputs = list(o.values.get("-O", ())) + list(o.values.get("--output-document", ()))
    for key in (
        "-O",
        "--output-document",
        "-o",
        "--output-file",
        "-a",
        "--append-output",
        "-P",
        "--directory-prefix",
        "--save-cookies",
    ):
        for word in o.values.get(key, ()):
            if word.value != "-":
                j.target(c, word, op="write")
    if not outputs and not o.values.get("-P") and not o.values.get("--directory-prefix"):
        j.target(c, literal("."), op="write")
    j.egress(c, _hosts_of(o.positional))


_NC_ARG = frozenset(
    {
        "-p",
        "-s",
        "-w",
        "-i",
        "-q",
        "-x",
        "-X",
        "-e",
        "-c",
        "-g",
        "-G",
        "-I",
        "-O",
        "-T",
        "-V",
        "-W",
        "-M",
        "-m",
        "--exec",
        "--sh-exec",
        "--lua-exec",
        "--proxy",
        "--proxy-type",
        "-o",
        "--output",
        "--source-port",
        "--wait",
        "--source",
    }
)


def _nc(j: _Judge, c: Command) -> None:
    o = _parse(c.args, _NC_ARG)
    for key in ("-e", "-c", "--exec", "--sh-exec", "--lua-exec"):
        if key in o.values:
            j.add(R.NET_REVERSE_SHELL, c.display, detail=f"{c.program} {key}")
    listen = bool(o.flags & {"-l", "--listen"})
    if not listen and o.positional:
        j.egress(c, _hosts_of(o.positional[:1]))
        if j.sends_local_data(c):
            j.add(R.NET_EXFILTRATION, c.display, detail="stdin sent to the network")


_SOCAT_NET = LazyPattern(
    r"^(?:tcp[46]?|udp[46]?|tcp[46]?-connect|udp[46]?-connect|openssl|ssl|openssl-connect|sctp"
    r"|socks[45]a?|proxy):(\[[^\]]+\]|[^:,]+)",
    re.I,
)
_SOCAT_FILE = LazyPattern(r"^(?:file|open|gopen|create|-)(?::|$)", re.I)


def _socat(j: _Judge, c: Command) -> None:
    hosts: list[str | None] = []
    has_file = False
    for word in c.args:
        text = (word.value if word.value is not None else word.shape).strip()
        lower = text.lower()
        if re.search(r"(?:^|[,!])\s*(?:exec|system)\s*:", lower):
            j.add(R.NET_REVERSE_SHELL, c.display, detail="socat exec/system address")
        m = _SOCAT_NET.match(text)
        if m is not None:
            hosts.append(m.group(1).strip("[]").lower() if word.value is not None else None)
        elif _SOCAT_FILE.match(text) or text == "-":
            has_file = True
    j.egress(c, hosts)
    if hosts and has_file:
        j.add(R.NET_EXFILTRATION, c.display, detail="socat file to network")


def _telnet(j: _Judge, c: Command) -> None:
    positional = _parse(c.args, frozenset({"-b", "-e", "-l", "-n"})).positional
    if positional:
        j.egress(c, _hosts_of(positional[:1]))
        if (c.upstream or c.stdin is not None) and j.sends_local_data(c):
            j.add(R.NET_EXFILTRATION, c.display, detail="stdin sent to the network")


_SSH_ARG = frozenset(
    {
        "-b",
        "-c",
        "-D",
        "-E",
        "-e",
        "-F",
        "-I",
        "-i",
        "-J",
        "-L",
        "-l",
        "-m",
        "-O",
        "-o",
        "-p",
        "-Q",
        "-R",
        "-S",
        "-W",
        "-w",
        "-B",
    }
)


def _ssh(j: _Judge, c: Command) -> None:
    o = _parse(c.args, _SSH_ARG)
    for word in o.values.get("-o", ()):
        key = (word.value or word.shape).split("=", 1)[0].split(" ", 1)[0].lower()
        if key in ("proxycommand", "localcommand", "permitlocalcommand", "knownhostscommand"):
            j.add(R.EXEC_INLINE, c.display, detail=f"ssh -o {key}", subject="ssh")
    if o.positional:
        j.egress(c, _hosts_of(o.positional[:1]))
        if (c.stdin is not None or c.upstream) and j.sends_local_data(c):
            j.add(R.NET_EXFILTRATION, c.display, detail="stdin sent over ssh")


def _net_client(j: _Judge, c: Command) -> None:
    urls = [w for w in c.args if w.value is None or not w.value.startswith("-")]
    hosts = [h for h in _hosts_of(urls) if h is None or "." in h or h == "localhost" or ":" in h]
    j.egress(c, hosts or [None])


def _s_client(j: _Judge, c: Command) -> None:
    o = _parse(c.args, frozenset({"-connect", "-servername", "-proxy", "-cert", "-key", "-CAfile"}))
    del o
    args = list(c.args)
    for i, word in enumerate(args):
        if word.value in ("-connect",) and i + 1 < len(args):
            j.egress(c, _hosts_of([args[i + 1]]))


def _openssl(j: _Judge, c: Command) -> None:
    if c.args and c.args[0].value == "s_client":
        _s_client(j, c)


def _git(j: _Judge, c: Command) -> None:
    args = list(c.args)
    n = len(args)
    i = 0
    cwd = c.cwd
    configs: list[Word] = []
    while i < n:
        value = args[i].value
        if value is None:
            break
        if value == "-C" and i + 1 < n:
            cwd = _chdir(j, args[i + 1], cwd)
            i += 2
        elif value == "-c" and i + 1 < n:
            configs.append(args[i + 1])
            i += 2
        elif (
            value
            in (
                "--git-dir",
                "--work-tree",
                "--namespace",
                "--super-prefix",
                "--config-env",
                "--list-cmds",
                "--exec-path",
            )
            and i + 1 < n
        ):
            if value == "--exec-path":
                j.add(R.EXEC_WORKSPACE, c.display, detail="git --exec-path", subject="git")
            i += 2
        elif value.startswith("--exec-path="):
            j.add(R.EXEC_WORKSPACE, c.display, detail="git --exec-path", subject="git")
            i += 1
        elif value.startswith("-"):
            i += 1
        else:
            break
    for word in configs:
        text = word.value if word.value is not None else word.shape
        key, _, val = text.partition("=")
        if _GIT_CODE_KEYS.match(key.lower()) or (key.lower().startswith("alias.") and val.startswith("!")):
            j.add(R.PERS_GIT_CONFIG, c.display, detail=key)
    if i >= n:
        return
    sub = args[i].value
    rest = args[i + 1 :]
    values = [w.value for w in rest]
    ev = c.display
    if sub in ("push", "send-email", "request-pull"):
        j.add(R.NET_PUSH, ev, detail=f"git {sub}", subject="git")
    elif sub == "config":
        _git_config(j, c, rest)
    elif sub is not None and sub.startswith("credential"):
        j.add(R.SEC_GIT_CREDENTIALS, ev, detail=f"git {sub}")
    elif sub == "clean":
        o = _parse(rest, frozenset({"-e", "--exclude"}))
        dry = bool(o.flags & {"-n", "--dry-run"})
        force = bool(o.flags & {"-f", "--force", "-i", "--interactive"})
        if force and not dry:
            _git_discard(j, c, cwd, "git clean")
    elif sub == "reset":
        if "--hard" in values or "--merge" in values or "--keep" in values:
            _git_discard(j, c, cwd, "git reset --hard")
    elif sub == "checkout":
        if (
            "-f" in values
            or "--force" in values
            or "." in values
            or ("--" in values and values.index("--") < len(values) - 1)
        ):
            _git_discard(j, c, cwd, "git checkout")
    elif sub == "restore":
        staged_only = "--staged" in values and "--worktree" not in values and "-W" not in values
        if not staged_only and any(v is None or not v.startswith("-") for v in values):
            _git_discard(j, c, cwd, "git restore")
    elif sub == "stash" and values[:1] and values[0] in ("drop", "clear"):
        _git_discard(j, c, cwd, f"git stash {values[0]}")
    elif sub == "clone":
        o = _parse(
            rest,
            frozenset(
                {
                    "-b",
                    "--branch",
                    "-o",
                    "--origin",
                    "--depth",
                    "-c",
                    "--config",
                    "--reference",
                    "--separate-git-dir",
                    "-u",
                    "--upload-pack",
                    "--template",
                    "--filter",
                    "-j",
                    "--jobs",
                }
            ),
        )
        for word in list(o.values.get("-c", ())) + list(o.values.get("--config", ())):
            key = (word.value or word.shape).partition("=")[0].lower()
            if _GIT_CODE_KEYS.match(key):
                j.add(R.PERS_GIT_CONFIG, ev, detail=key)
        if o.values.get("-u") or o.values.get("--upload-pack") or o.values.get("--template"):
            j.add(R.EXEC_INLINE, ev, detail="git clone runs a given program", subject="git")
        if o.positional:
            j.egress(c, _git_hosts(o.positional[:1]))
        if len(o.positional) >= 2:
            j.target(c, o.positional[1], op="write", cwd=cwd)
    elif sub in ("fetch", "pull", "ls-remote", "remote", "submodule"):
        if sub == "remote" and not (values[:1] and values[0] in ("update", "show", "prune")):
            return
        if sub == "submodule" and not (values[:1] and values[0] in ("update", "add", "sync")):
            return
        hosts = _git_hosts([w for w in rest if w.value is None or "://" in w.value or "@" in w.value])
        j.egress(c, hosts or [None], detail="git remote")
    elif sub == "hook":
        j.add(R.EXEC_WORKSPACE, ev, detail="git hook run", subject="git")


def _git_hosts(words: Iterable[Word]) -> list[str | None]:
    out: list[str | None] = []
    for word in words:
        value = word.value
        if value is None:
            out.append(None)
        elif _URL.match(value):
            out.append(_host_of(value))
        elif _SCP_REMOTE.match(value):
            out.append(_host_of(value.split(":", 1)[0]))
    return out


def _chdir(j: _Judge, word: Word, cwd: tuple[str, ...] | None) -> tuple[str, ...] | None:
    locs = j.locs(word, cwd)
    if not locs or any(loc.where is Where.UNKNOWN for loc in locs):
        return None
    return tuple(dict.fromkeys(loc.path for loc in locs))


def _git_discard(j: _Judge, c: Command, cwd: tuple[str, ...] | None, what: str) -> None:
    for loc in j.locs(literal("."), cwd):
        if loc.where is Where.INSIDE:
            rule = R.GIT_DISCARD_PROJECT if j.project else R.GIT_DISCARD_TMP
            j.add(rule, c.display, detail=what)
        elif loc.where is Where.UNKNOWN:
            j.add(R.FS_UNKNOWN, c.display, detail=what)
        else:
            j.add(R.FS_OUTSIDE, c.display, detail=f"{what} outside the workspace")


def _git_config(j: _Judge, c: Command, rest: Sequence[Word]) -> None:
    o = _parse(rest, frozenset({"-f", "--file", "--blob", "--type", "--default", "--comment", "--value"}))
    positional = list(o.positional)
    action = ""
    if positional and positional[0].value in (
        "get",
        "set",
        "list",
        "unset",
        "edit",
        "rename-section",
        "remove-section",
    ):
        action = positional.pop(0).value or ""
    listing = action == "list" or bool(o.flags & {"-l", "--list"})
    getting = action == "get" or any(f.startswith("--get") for f in o.flags)
    unsetting = action in ("unset", "remove-section") or any(
        f.startswith("--unset") or f == "--remove-section" for f in o.flags
    )
    files = list(o.values.get("-f", ())) + list(o.values.get("--file", ()))
    # ``--global`` writes ~/.gitconfig, and every mission has its own HOME: only keys that run code
    # matter there. ``--system`` and files outside the workspace outlive the mission.
    scope_outside = "--system" in o.flags
    for word in files:
        for loc in j.locs(word, c.cwd):
            if loc.where is not Where.INSIDE:
                scope_outside = True
    if listing:
        j.add(R.SEC_GIT_CREDENTIALS, c.display, detail="git config --list")
        return
    key = (positional[0].value or positional[0].shape) if positional else ""
    if getting or (len(positional) == 1 and not unsetting and not action):
        if key and _GIT_SECRET_KEYS.search(key):
            j.add(R.SEC_GIT_CREDENTIALS, c.display, detail=key)
        return
    if scope_outside:
        j.add(R.PERS_GIT_CONFIG, c.display, detail="--system" if "--system" in o.flags else "scope")
        return
    value = (positional[1].value or "") if len(positional) > 1 else ""
    lowered = key.lower()
    runs_code = _GIT_CODE_KEYS.match(lowered) or (lowered.startswith("alias.") and value.startswith("!"))
    if lowered == "safe.directory" and "--global" in o.flags:
        # Trusts repositories for git processes that use this HOME: the mission's own.
        runs_code = False
    if runs_code and not unsetting:
        j.add(R.PERS_GIT_CONFIG, c.display, detail=key)


def _forge(j: _Judge, c: Command) -> None:
    values = [w.value for w in c.args]
    if values in ([], ["--version"], ["version"], ["--help"], ["help"]):
        return
    j.add(R.NET_PUSH, c.display, detail=c.program or "", subject=c.program or "")


_GLOBAL_WITH_ARG = {
    "docker": frozenset(
        {"-H", "--host", "-c", "--context", "--config", "-l", "--log-level", "--tlscacert", "--tlscert", "--tlskey"}
    ),
    "podman": frozenset(
        {"--url", "-c", "--connection", "--root", "--runroot", "--storage-driver", "--log-level", "--remote"}
    ),
    "nerdctl": frozenset({"-H", "--address", "-n", "--namespace", "--host", "--snapshotter"}),
}


def _subcommand(c: Command) -> str | None:
    with_arg = _GLOBAL_WITH_ARG.get(c.program or "", frozenset())
    skip = False
    for word in c.args:
        value = word.value
        if skip:
            skip = False
            continue
        if value is None:
            return None
        if not value.startswith("-"):
            return value
        skip = value in with_arg
    return None


_INSTALL_SUBS = frozenset({"install", "i", "add", "download", "wheel"})
_VCS_URL = LazyPattern(r"^(?:git|hg|svn|bzr)\+|^[A-Za-z][A-Za-z0-9+.-]*://|^git@|^github:|^gitlab:|^bitbucket:")


def _installs_from_outside(j: _Judge, c: Command, sub: str | None) -> None:
    """``pip install URL``, ``npm install URL``, ``pip install ./dir``: code from outside the index runs
    (setup scripts, ``.pth`` files, lifecycle scripts)."""
    program = c.program or ""
    args = list(c.args)
    if program == "uv" and sub == "pip" and len(args) > 1:
        sub = args[1].value
    if sub not in _INSTALL_SUBS:
        return
    values = [w.value for w in args]
    for i, value in enumerate(values):
        if value is None:
            continue
        if i > 0 and values[i - 1] in (
            "-r",
            "--requirement",
            "-c",
            "--constraint",
            "-i",
            "--index-url",
            "--extra-index-url",
            "-f",
            "--find-links",
            "--prefix",
            "--target",
            "-t",
            "--root",
            "--registry",
        ):
            continue
        spec = value.split("@", 1)[1].strip() if " @ " in value or "@ " in value else value
        if _VCS_URL.match(spec):
            j.add(R.EXEC_PACKAGE, c.display, detail=f"{program} installs from {spec}", subject=program)
        elif value in ("-e", "--editable") and i + 1 < len(values) and values[i + 1] is not None:
            continue
        elif not value.startswith("-") and (value.startswith(("./", "../", "/", "~")) or value == "."):
            j.add(
                R.EXEC_WORKSPACE,
                c.display,
                detail=f"{program} installs {value} and runs its build code",
                subject=program,
            )


def _package_tools(j: _Judge, c: Command) -> None:
    program = c.program or ""
    sub = _subcommand(c)
    _installs_from_outside(j, c, sub)
    publish = _PUBLISH.get(program)
    if publish is not None and sub in publish:
        j.add(R.NET_PUSH, c.display, detail=f"{program} {sub}", subject=program)
        return
    if program in _JS_PMS:
        if sub in _JS_SCRIPTS:
            j.add(R.EXEC_WORKSPACE, c.display, detail=f"{program} {sub}", subject=program)
        elif sub == "dlx" or (program == "bun" and sub == "x"):
            j.add(R.EXEC_PACKAGE, c.display, subject=program)
    if program in ("docker", "podman", "nerdctl", "docker-compose", "podman-compose"):
        _container(j, c, sub)
    if program in ("pipx", "uv") and sub in ("run", "tool"):
        values = [w.value for w in c.args]
        if program == "pipx" or (len(values) > 1 and values[1] == "run"):
            j.add(R.EXEC_PACKAGE, c.display, subject=program)
    if program in ("hatch", "pdm") and sub == "run":
        # Names after ``run`` are scripts defined in the project's pyproject.toml.
        j.add(R.EXEC_WORKSPACE, c.display, detail=f"{program} run", subject=program)


_CONTAINER_HOST_FLAGS = (
    "--privileged",
    "--cap-add",
    "--pid=host",
    "--network=host",
    "--net=host",
    "--ipc=host",
    "--userns=host",
    "--uts=host",
    "--cgroupns=host",
    "--security-opt",
    "--device",
)


def _container(j: _Judge, c: Command, sub: str | None) -> None:
    values = [w.value for w in c.args]
    if sub == "container" and sub in values and values.index(sub) + 1 < len(values):
        sub = values[values.index(sub) + 1]
    if sub in ("compose", "stack") or c.program in ("docker-compose", "podman-compose"):
        rest = [v for v in values if v is not None and not v.startswith("-")]
        if any(v in ("up", "run", "create", "start", "deploy", "exec", "restart") for v in rest):
            # The compose file decides mounts and privileges: through the daemon, that is host root.
            j.add(R.EXEC_WORKSPACE, c.display, detail="the compose file's containers run", subject=c.program or "")
        return
    if sub not in ("run", "create", "exec"):
        return
    args = list(c.args)
    for i, word in enumerate(args):
        value = word.value
        if value is None:
            continue
        if any(
            value == f
            or value.startswith(f + "=")
            or (f.endswith("=host") and value == f.split("=")[0] and i + 1 < len(args) and args[i + 1].value == "host")
            for f in _CONTAINER_HOST_FLAGS
        ):
            j.add(R.PRIV_CONTAINER, c.display, detail=value)
        spec: Word | None = None
        if value in ("-v", "--volume", "--mount") and i + 1 < len(args):
            spec = args[i + 1]
        elif value.startswith(("--volume=", "--mount=")):
            spec = _tail(word, value.index("=") + 1)
        elif value.startswith("-v") and len(value) > 2 and not value.startswith("--"):
            spec = _tail(word, 3 if value.startswith("-v=") else 2)
        if spec is None:
            continue
        text = spec.value if spec.value is not None else spec.shape
        if "source=" in text or "src=" in text:
            source = re.split(r"(?:^|,)(?:source|src)=", text)[-1].split(",", 1)[0]
        else:
            source = text.split(":", 1)[0]
        if not source or not source.startswith(("/", ".", "~", UNKNOWN)):
            continue
        host = Word(text=source, value=None if UNKNOWN in source else source, shape=source, home=source.startswith("~"))
        for loc in j.locs(host, c.cwd):
            if loc.where is Where.INSIDE:
                continue
            if loc.where is Where.UNKNOWN:
                j.add(R.FS_UNKNOWN, c.display, detail=f"volume {spec.text}")
            else:
                j.add(R.PRIV_CONTAINER, c.display, detail=f"host mount {loc.display}")


def _kill(j: _Judge, c: Command) -> None:
    values = [w.value for w in c.args]
    if not values:
        return
    i = 0
    if values[0] in ("-s", "-n", "--signal"):
        i = 2
    elif values[0] is not None and values[0].startswith("-") and values[0] != "--":
        i = 1 if len(values) > 1 else 0
    if i < len(values) and values[i] == "--":
        i += 1
    if "-1" in values[i:]:
        j.add(R.PROC_KILL_ALL, c.display)


def _privileged(j: _Judge, c: Command) -> None:
    program = c.program or ""
    values = [w.value for w in c.args]
    if program == "sysctl" and not any(
        v is None or v in ("-w", "--write", "-p", "--load", "--system") or "=" in v for v in values
    ):
        return
    if program in ("sudo", "su", "doas", "pkexec", "run0"):
        j.add(R.PRIV_ESCALATE, c.display, detail=program, subject=program)
        return
    j.add(R.PRIV_ADMIN, c.display, detail=program)


def _system_packages(j: _Judge, c: Command) -> None:
    program = c.program or ""
    mutating = _PKG_SYSTEM.get(program, frozenset())
    values = [w.value for w in c.args]
    if any(v in mutating for v in values):
        j.add(R.PRIV_ADMIN, c.display, detail=f"{program} changes system packages")
    elif program == "pacman" and any(
        v is not None and re.match(r"^-[SRU]", v) and not re.match(r"^-[SRU][^ ]*[si]$", v or "") for v in values
    ):
        j.add(R.PRIV_ADMIN, c.display, detail="pacman changes system packages")


def _scheduler(j: _Judge, c: Command) -> None:
    program = c.program or ""
    values = [w.value for w in c.args]
    if (
        program == "crontab"
        and values
        and all(v in ("-l", "-u") or (v and not v.startswith("-") and values[0] == "-u") for v in values)
        and "-l" in values
    ):
        return
    if program in ("systemctl", "service", "launchctl"):
        sub = next((v for v in values if v is None or not v.startswith("-")), None)
        if sub in _SYSTEMCTL_READ or (program == "service" and "status" in values):
            return
        if not values or values == ["--version"]:
            return
    if program == "loginctl" and not any(v in ("enable-linger",) for v in values):
        return
    j.add(R.PERS_SCHEDULE, c.display, detail=program)


def _disk(j: _Judge, c: Command) -> None:
    values = [w.value for w in c.args]
    if c.program in ("fdisk", "sfdisk", "parted", "gdisk", "sgdisk") and any(
        v in ("-l", "--list", "print", "-p") for v in values
    ):
        return
    j.add(R.DEV_FORMAT, c.display, detail=c.program or "")


def _env_dump(j: _Judge, c: Command) -> None:
    program = c.program
    values = [w.value for w in c.args]
    positional = [v for v in values if v is None or not v.startswith(("-", "+"))]
    dump = False
    if program == "env":
        dump = True
    elif program == "printenv" or program == "export":
        dump = not positional
    elif program in ("declare", "typeset", "readonly"):
        dump = not positional and all(v in ("-p", "-x", "-px", "-xp") for v in values)
    elif program == "set":
        dump = not values
    elif program == "ps":
        dump = bool(values) and values[0] is not None and not values[0].startswith("-") and "e" in values[0]
    if dump:
        j.add(R.SEC_ENV_DUMP, c.display, detail=program or "")


def _task_runner(j: _Judge, c: Command) -> None:
    values = [w.value for w in c.args]
    if values in (["--version"], ["-v"], ["--help"], ["-h"], ["-n"], ["--dry-run"]):
        return
    j.add(R.EXEC_WORKSPACE, c.display, detail=c.program or "", subject=c.program or "")


def _pkg_runner(j: _Judge, c: Command) -> None:
    j.add(R.EXEC_PACKAGE, c.display, subject=c.program or "")


def _deno(j: _Judge, c: Command) -> None:
    sub = _subcommand(c)
    if sub == "eval":
        j.add(R.EXEC_INLINE, c.display, subject="deno")
        return
    if sub not in ("run", "test", "bench", "install", "compile", "serve"):
        return
    words = [w for w in c.args[1:] if w.value is None or not w.value.startswith("-")]
    if not words:
        return
    target = words[0]
    if target.value is not None and target.value.startswith(("http://", "https://", "npm:", "jsr:")):
        j.add(R.EXEC_REMOTE, c.display, detail=target.value)
    elif j.runs_workspace_file(target, c.cwd):
        j.add(R.EXEC_WORKSPACE, c.display, subject="deno")


def _awk(j: _Judge, c: Command) -> None:
    o = _parse(
        c.args,
        frozenset({"-F", "-v", "-f", "--file", "--assign", "--field-separator", "-i", "--include", "-l", "--load"}),
    )
    files = list(o.values.get("-f", ())) + list(o.values.get("--file", ()))
    for word in files:
        if j.runs_workspace_file(word, c.cwd):
            j.add(R.EXEC_WORKSPACE, c.display, subject=c.program or "awk")
    if files or not o.positional:
        return
    # system(), pipes and ``print > file`` are read by the shell reader (shell.py ``_awk``).
    program = o.positional[0]
    if program.value is not None and re.search(r"\bin\s+ENVIRON\b", program.value):
        j.add(R.SEC_ENV_DUMP, c.display, detail="awk ENVIRON")


def _find(j: _Judge, c: Command) -> None:
    from pytest_rustchain.safety.shell import find_start_points  # tree-sitter: loaded by the first command line

    starts = find_start_points(c.args)
    values = [w.value for w in c.args]
    if "-delete" in values:
        for start in starts:
            j.target(c, start, op="delete", recursive=True, destructive=True)
    args = list(c.args)
    for i, word in enumerate(args):
        if word.value in ("-fprint", "-fprint0", "-fls", "-fprintf") and i + 1 < len(args):
            j.target(c, args[i + 1], op="write")


_HANDLERS: dict[str, Callable[[_Judge, Command], None]] = {
    "rm": _rm,
    "srm": _rm,
    "rmdir": _delete_each,
    "unlink": _delete_each,
    "shred": _shred,
    "wipe": _rm,
    "mv": _move_copy,
    "cp": _move_copy,
    "install": _install,
    "ln": _ln,
    "touch": _write_each,
    "mkdir": _write_each,
    "truncate": _write_each,
    "tee": _write_each,
    "mkfifo": _write_each,
    "dd": _dd,
    "chmod": _chmod,
    "chown": _chown,
    "chgrp": _chown,
    "chattr": _chattr,
    "setfacl": _chattr,
    "sed": _sed,
    "gsed": _sed,
    "sort": _sort,
    "tar": _tar,
    "bsdtar": _tar,
    "unzip": _unzip,
    "rsync": _rsync,
    "scp": _scp,
    "sftp": _scp,
    "curl": _curl,
    "wget": _wget,
    "nc": _nc,
    "ncat": _nc,
    "netcat": _nc,
    "socat": _socat,
    "telnet": _telnet,
    "ssh": _ssh,
    "openssl": _openssl,
    "git": _git,
    "kill": _kill,
    "killall5": lambda j, c: j.add(R.PROC_KILL_ALL, c.display),
    "deno": _deno,
    "awk": _awk,
    "gawk": _awk,
    "mawk": _awk,
    "nawk": _awk,
    "find": _find,
    **dict.fromkeys(_FORGE_CLIS, _forge),
    **dict.fromkeys(
        (*_PUBLISH, *_JS_PMS, "pipx", "nerdctl", "pdm", "pip", "pip3", "docker-compose", "podman-compose"),
        _package_tools,
    ),
    **dict.fromkeys((*_ADMIN, *_PRIV_WRAPPERS), _privileged),
    **dict.fromkeys((*_PKG_SYSTEM, "pacman"), _system_packages),
    **dict.fromkeys(_SCHEDULERS, _scheduler),
    **dict.fromkeys(_DISK_TOOLS, _disk),
    **dict.fromkeys(("env", "printenv", "export", "declare", "typeset", "readonly", "set", "ps"), _env_dump),
    **dict.fromkeys(_TASK_RUNNERS, _task_runner),
    **dict.fromkeys(_PKG_RUNNERS, _pkg_runner),
    **dict.fromkeys(_NET_CLIENTS, _net_client),
}


# ------------------------------------------------------------------ entry points


def _dedupe(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    seen: dict[tuple[str, str, str], Finding] = {}
    for finding in findings:
        key = (finding.rule_id, finding.message, finding.evidence)
        seen.setdefault(key, finding)
    return tuple(sorted(seen.values(), key=lambda f: (-int(f.severity), f.rule_id)))


def analyse_command(
    command: str | Sequence[str],
    *,
    shell: bool,
    workspace: Path | str,
    cwd: Path | str | None = None,
    workspace_kind: WorkspaceKind = "tmp",
    written_scripts: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    links: dict[str, str | None] | None = None,
    venvs: Callable[[str], bool] | None = None,
    made_venvs: set[str] | None = None,
) -> tuple[Finding, ...]:
    """Findings for one command step, most severe first.

    ``venvs`` answers whether a workspace-relative directory is a virtualenv (the caller looks for its
    ``pyvenv.cfg``); programs in its ``bin/`` are judged by name, as installed tools. A folder name alone
    (``.venv``) proves nothing. The virtualenvs this command makes are added to ``made_venvs``.

    ``links`` maps symbolic links earlier steps made (workspace-relative) to their absolute targets:
    paths through them are judged by the target, and the links this command makes are added to it.

    ``command`` is a shell command line (``shell=True``), an argv list, or a string that is split
    with shlex (``shell=False``). ``cwd`` is the step's working directory (absolute, or relative to
    the workspace). ``written_scripts`` maps workspace-relative paths to the content of scripts that
    earlier steps wrote; running one of them is judged as that script. ``env`` is what the mission
    and step set: known values help (``rm -rf $BUILD``), and a PATH entry inside the workspace makes
    program lookups opaque. Template parts should be passed as an unset variable (``${TPL_1}``) so
    that they count as unknown.
    """
    from pytest_rustchain.safety.shell import read_argv, read_line  # tree-sitter: loaded by the first command line

    ws = _ws(workspace)
    where = None if cwd is None else os.fspath(cwd)
    key = None if written_scripts or links else _memo_key(command, shell, ws, where, workspace_kind, env, venvs)
    if key is not None and (known := _ANALYSED.get(key)) is not None:
        return known
    asked = False
    if venvs is not None and key is not None:
        ask = venvs

        def asking(rel: str) -> bool:
            nonlocal asked
            asked = True
            return ask(rel)

        venvs = asking
    judge = _Judge(ws=ws, project=workspace_kind == "project", look_on_disk=True, links=dict(links or {}))
    if isinstance(command, str):
        if shell:
            script = read_line(command, workspace=ws, cwd=where, written_scripts=written_scripts, env=env, venvs=venvs)
        else:
            try:
                argv = shlex.split(command)
            except ValueError:
                judge.add(R.PARSE_FAILED, command, detail="unbalanced quotes")
                return _dedupe(judge.out)
            script = read_argv(argv, workspace=ws, cwd=where, written_scripts=written_scripts, env=env, venvs=venvs)
    else:
        argv = [str(a) for a in command]
        if shell:
            script = read_line(
                shlex.join(argv), workspace=ws, cwd=where, written_scripts=written_scripts, env=env, venvs=venvs
            )
        else:
            script = read_argv(argv, workspace=ws, cwd=where, written_scripts=written_scripts, env=env, venvs=venvs)
    judge.script(script)
    if links is not None:
        links.update(script.links)
    if made_venvs is not None:
        made_venvs.update(script.venvs)
    found = _dedupe(judge.out)
    if key is not None and not asked and not judge.looked_on_disk and not script.links and not script.venvs:
        # Nothing on disk was consulted and nothing is handed back: the same inputs give these findings.
        if len(_ANALYSED) >= _ANALYSED_SIZE:
            _ANALYSED.clear()
        _ANALYSED[key] = found
    return found


_ANALYSED: dict[tuple[object, ...], tuple[Finding, ...]] = {}
"""Findings of analyses that looked at nothing on disk, by their inputs: a mission runs the same command
again (repeats, loops, the same line in many steps), and an analysis is a pure function of its inputs
unless it follows links or asks whether a directory is a virtualenv, which a step may change."""
_ANALYSED_SIZE = 256
_MEMO_TEXT = 4096


def _memo_key(
    command: str | Sequence[str],
    shell: bool,
    ws: str,
    cwd: str | None,
    workspace_kind: str,
    env: Mapping[str, str] | None,
    venvs: Callable[[str], bool] | None,
) -> tuple[object, ...] | None:
    """The inputs an analysis depends on apart from the disk; None for long commands (not kept)."""
    text = command if isinstance(command, str) else tuple(str(a) for a in command)
    if (len(text) if isinstance(text, str) else sum(len(a) for a in text)) > _MEMO_TEXT:
        return None
    return (text, shell, ws, cwd, workspace_kind, venvs is None, tuple(env.items()) if env else ())


def _not_a_venv(word: Word) -> str:
    """Why ``D/bin/python`` was not judged as an installed tool, when its path looks like one."""
    head, _, name = (word.value or "").rpartition("/bin/")
    if not head or not name or "/" in name:
        return ""
    return f"{head} is not a virtualenv: no pyvenv.cfg with a `home` key next to its bin/"


def realpath_below(root: str, rel: str) -> str:
    """``os.path.realpath(root/rel)`` for a ``root`` that is a real path already (no links in it) and a
    relative path: only the entries of ``rel`` are looked at on disk, and at the first link on the way
    the whole path is left to ``os.path.realpath``. A missing entry is kept as written, as there."""
    names = rel.split("/")
    if not rel or any(name in ("", ".", "..") for name in names):
        return os.path.realpath(posixpath.join(root, rel))
    path = root.rstrip("/")
    for name in names:
        path = f"{path}/{name}"
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            continue
        if stat.S_ISLNK(mode):
            return os.path.realpath(posixpath.join(root, rel))
    return path


def _on_disk(ws: str) -> str | None:
    """The workspace's real path when it exists (at run time), so links on disk can be followed."""
    if not os.path.isdir(ws):  # noqa: PTH112 - one stat per analysis, on the hot path
        return None
    return os.path.realpath(ws)


def analyse_path(
    path: str,
    *,
    op: PathOp,
    workspace: Path | str,
    recursive: bool = False,
) -> tuple[Finding, ...]:
    """Findings for one path of a file step (``read_file``, ``create_file``, ``delete_file`` ...)."""
    ws = _ws(workspace)
    judge = _Judge(ws=ws, project=False)
    evidence = f"{op} {path}"
    if "\x00" in path or len(path) > 4096:
        judge.add(R.PARSE_FAILED, evidence.replace("\x00", "\\0")[:120], detail="path cannot be used")
        return _dedupe(judge.out)
    # An empty path means the workspace root to every file step.
    value = path or "."
    word = Word(text=value, value=value, shape=value, home=value.startswith("~"))
    for loc in locate(word, (ws,), ws):
        where = loc.where
        if where is Where.INSIDE:
            parts = loc.rel.split("/") if loc.rel else []
            if ".git" in parts:
                if op == "read" and (loc.rel == ".git/config" or loc.rel.endswith("/.git/config")):
                    judge.add(R.SEC_GIT_CREDENTIALS, evidence, detail=loc.rel)
                elif op == "write" and parts[parts.index(".git") + 1 : parts.index(".git") + 2] == ["hooks"]:
                    judge.add(R.PERS_GIT_HOOK, evidence, detail=loc.rel)
                else:
                    judge.add(R.FS_FILE_GIT, evidence, detail=loc.rel)
            elif op == "delete" and loc.rel == "":
                judge.add(R.FS_ROOT, evidence)
            elif op == "delete" and recursive:
                judge.add(R.FS_DESTRUCTIVE, evidence, detail=loc.rel)
            continue
        if op == "read":
            if is_secret_path(loc.display):
                judge.add(R.SEC_FILE, evidence, detail=loc.display)
            else:
                judge.add(R.FS_READ_OUTSIDE, evidence, detail=loc.display)
        elif where is Where.DEVICE and op == "write":
            judge.add(R.DEV_WRITE, evidence, detail=loc.display)
        elif op == "write" and _STARTUP.match(_home_display(loc.display)):
            judge.add(R.PERS_STARTUP, evidence, detail=loc.display)
        elif op == "delete" and recursive:
            judge.add(R.FS_RECURSIVE_OUTSIDE, evidence, detail=loc.display)
        else:
            judge.add(R.FS_OUTSIDE, evidence, detail=loc.display)
    return _dedupe(judge.out)


def analyse_env(env: Mapping[str, str]) -> tuple[Finding, ...]:
    """Findings for a mission's or step's ``env``: variables that change how programs load."""
    judge = _Judge(ws="/", project=False)
    for name, value in env.items():
        if programs.is_loader_variable(name):
            judge.add(R.ENV_LOADER, f"{name}={value}", detail=name)
    return _dedupe(judge.out)


def analyse_url(url: str, allow_hosts: Iterable[str] = ()) -> tuple[Finding, ...]:
    """Findings for the URL of an ``http`` step, before the host is resolved (it is checked again,
    resolved, at connect time and on every redirect)."""
    judge = _Judge(ws="/", project=False)
    allowed = tuple(allow_hosts)
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        scheme = parts.scheme.lower()
    except ValueError:
        judge.add(R.PARSE_FAILED, url, detail="URL does not parse")
        return _dedupe(judge.out)
    if scheme not in ("http", "https"):
        judge.add(R.NET_SCHEME, url, detail=scheme or "no scheme")
        return _dedupe(judge.out)
    if not host:
        judge.add(R.PARSE_FAILED, url, detail="URL has no host")
        return _dedupe(judge.out)
    if host_matches(host, allowed) or _is_loopback(host):
        return ()
    ip = _ip(host)
    if _is_metadata(host):
        judge.add(R.NET_METADATA, url, detail=host, subject=host)
    elif ip is not None and (ip.is_private or ip.is_reserved or ip.is_link_local):
        judge.add(R.NET_PRIVATE, url, detail=host, subject=host)
    else:
        judge.add(R.NET_EGRESS, url, detail=host, subject=host)
    return _dedupe(judge.out)
