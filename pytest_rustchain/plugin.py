"""pytest hooks: mission files become items, steps become subtests."""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import os
import signal
import threading
import time
import warnings
from collections.abc import Generator, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_rustchain import report

if TYPE_CHECKING:
    from pytest_rustchain.levels import Policy
    from pytest_rustchain.llm.config import LLMOptions
    from pytest_rustchain.missioncache import MissionCache
    from pytest_rustchain.model import Combination, Limits, LoadOptions, Mission, MissionResult, Step, StepResult
    from pytest_rustchain.runner import RunSettings
    from pytest_rustchain.sandbox import Sandbox

# pytest loads this plugin in every run, also in runs that hold no mission: everything else (the
# reporter's aggregation, the loader, the runner, the safety analyser, the model) is imported where
# missions are handled, and the sandbox check waits for the first mission.

DEFAULT_GLOBS = ("*.mission.yaml", "*.mission.yml")
SANDBOX_MODES = ("auto", "bwrap", "landlock", "none", "required")
"""``sandbox.MODES``, here so that registering the option does not import the sandbox module."""
_PROJECT_GROUP = "rustchain-project-workspace"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rustchain", "pytest-rustchain missions")
    group.addoption(
        "--mission-compat",
        choices=("strict", "rustchain"),
        default=None,
        help="rustchain: run RustChain's files as they are (unknown keys warn, RustChain spellings accepted).",
    )
    group.addoption(
        "--mission-keep-workspace",
        choices=("failed", "always", "never"),
        default=None,
        help="Which mission workspaces to keep after the run (default: failed).",
    )
    group.addoption(
        "--mission-var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="Set a mission variable (repeatable); wins over ini mission_vars and the mission's vars.",
    )
    group.addoption(
        "--mission-safety",
        choices=("permissive", "standard", "strict"),
        default=None,
        help="Safety policy level (default: ini mission_safety, else standard); never below MISSION_SAFETY_FLOOR.",
    )
    group.addoption(
        "--mission-dry-run",
        action="store_true",
        default=False,
        help="Load, validate, plan and score every mission; run nothing. A mission fails if a step would be blocked.",
    )
    group.addoption(
        "--mission-sandbox",
        choices=SANDBOX_MODES,
        default=None,
        help="Confine command steps: auto (default: bwrap, else Landlock, else none with a warning), bwrap, "
        "landlock, none, or required (any layer, else the run stops).",
    )
    group.addoption(
        "--mission-repeat",
        type=int,
        default=None,
        metavar="N",
        help="Run each mission N times inside its one item, each repeat in a fresh workspace (subtests r2/<step>); "
        "reports give each step's k/n with a Wilson 95%% interval, pass@k, pass^k and flaky steps. "
        "Wins over the mission's config.repeat and ini mission_repeat.",
    )
    group.addoption(
        "--mission-trajectories",
        metavar="DIR",
        default=None,
        help="Write one JSON Lines file per mission run and repeat, DIR/<stem>/<run-id>/r<k>.jsonl, and DIR/index.json "
        "(schema: pytest_rustchain/schema/trajectory.schema.json).",
    )
    group.addoption(
        "--mission-rejudge",
        metavar="DIR",
        default=None,
        help="Run no step: read each mission's newest stored run from DIR (written by --mission-trajectories), "
        "score its repeats again with the mission's judge: and report the new scores and rewards.",
    )
    group.addoption(
        "--mission-export",
        choices=("chat-jsonl",),
        default=None,
        help="chat-jsonl: also write DIR/<run-id>.chat.jsonl, one line per llm/agent step with its messages and "
        "reward, for fine-tuning tools (needs --mission-trajectories).",
    )
    group.addoption(
        "--mission-record-mode",
        choices=("none", "once", "new_episodes", "all"),
        default=None,
        help="Model answers: none (replay only; PR CI), once (default: record when there is no cassette), "
        "new_episodes (record what is missing), all (re-record everything).",
    )
    group.addoption(
        "--mission-cassette-prune",
        action="store_true",
        default=False,
        help="Drop recordings the run did not use from the cassettes it read.",
    )
    report.add_options(parser)
    parser.addini(
        "mission_repeat", "Runs of each mission inside its item (a mission's config.repeat wins).", default=""
    )
    parser.addini(
        "mission_llm_providers",
        "LLM providers, one per line: ALIAS = openai|anthropic BASE_URL [key_env=VAR] [timeout=S].",
        type="linelist",
        default=[],
    )
    parser.addini("mission_llm_roles", "LLM roles, one per line: ROLE = ALIAS:MODEL.", type="linelist", default=[])
    parser.addini(
        "mission_llm_prices",
        "Prices, one per line: MODEL INPUT_USD OUTPUT_USD (per million).",
        type="linelist",
        default=[],
    )
    parser.addini(
        "mission_cassette_dir", "Where cassettes live (default: cassettes/ next to each mission).", default=""
    )
    parser.addini("mission_record_mode", "none, once (default), new_episodes or all.", default="once")
    parser.addini("mission_safety", "Safety policy level: permissive, standard (default), strict.", default="standard")
    parser.addini("mission_sandbox", "auto (default), bwrap, landlock, none or required.", default="auto")
    parser.addini(
        "mission_allow_unix_sockets",
        "Let sandboxed command steps open Unix sockets (host sockets such as docker.sock included).",
        type="bool",
        default=False,
    )
    parser.addini("mission_allow_hosts", "Hosts or CIDRs network steps may reach.", type="args", default=[])
    parser.addini("mission_allow_commands", "Programs whose opaque-code findings are waived.", type="args", default=[])
    parser.addini("mission_allow_rules", "Rule ids to waive, optionally RULE@path::step.", type="args", default=[])
    parser.addini(
        "mission_secrets", "Names of variables whose values are masked in every output.", type="args", default=[]
    )
    parser.addini("mission_files", "Glob patterns of mission files.", type="args", default=list(DEFAULT_GLOBS))
    parser.addini("mission_compat", "strict (default) or rustchain.", default="strict")
    parser.addini("mission_keep_workspace", "failed (default), always or never.", default="failed")
    parser.addini("mission_vars", "Mission variables, NAME=VALUE per line.", type="linelist", default=[])
    parser.addini("mission_pass_env", "Extra environment names (or globs) steps may see.", type="args", default=[])
    parser.addini(
        "mission_home_files",
        "The user's configuration files (~/.npmrc, ~/.config/pip/pip.conf) copied into each mission's HOME.",
        type="args",
        default=[],
    )
    parser.addini("mission_timeout_seconds", "Wall-clock limit of each mission (seconds).", default="")
    parser.addini("mission_max_steps", "Most steps a mission may have.", default="1000")
    parser.addini(
        "mission_max_file_bytes", "Largest mission file, and largest file a step reads or writes.", default=""
    )


def _compat(config: pytest.Config) -> bool:
    value = config.getoption("mission_compat") or config.getini("mission_compat")
    return str(value).strip() == "rustchain"


def _float_ini(config: pytest.Config, name: str) -> float | None:
    raw = str(config.getini(name) or "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise pytest.UsageError(f"{name} = {raw!r} is not a number") from None


def _limits(config: pytest.Config) -> Limits:
    from pytest_rustchain.model import Limits

    max_steps = _float_ini(config, "mission_max_steps")
    max_bytes = _float_ini(config, "mission_max_file_bytes")
    return Limits(
        max_steps=int(max_steps) if max_steps else 1000,
        mission_timeout_seconds=_float_ini(config, "mission_timeout_seconds"),
        max_file_bytes=int(max_bytes) if max_bytes else 1_048_576,
    )


def _parse_vars(lines: Iterable[str], source: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise pytest.UsageError(f"{source}: {line!r} is not NAME=VALUE")
        out[name.strip()] = value
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class _SessionSettings:
    policy: Policy
    header: tuple[str, ...]
    sandbox: Sandbox | None
    llm: LLMOptions
    home_files: tuple[tuple[Path, str], ...] = ()


_SETTINGS = pytest.StashKey[_SessionSettings]()
_POLICY = pytest.StashKey[tuple["Policy", tuple[str, ...]]]()
_SANDBOX = pytest.StashKey[tuple["Sandbox | None", tuple[str, ...]]]()
_LLM = pytest.StashKey[tuple["LLMOptions", tuple[str, ...]]]()
_HOME_FILES = pytest.StashKey[tuple[tuple[Path, str], ...]]()
_BASE_NUMBERS = pytest.StashKey[dict[str, int]]()
_RUN_SETTINGS = pytest.StashKey[dict[str, Any]]()


def _unmade_base(config: pytest.Config, factory: pytest.TempPathFactory, prefix: str) -> Path | None:
    """A fresh ``<prefix><n>`` under pytest's basetemp, named like ``factory.mktemp(prefix)`` would name it
    but not made yet (None when the prefix is not a plain name: ``mktemp`` then says what is wrong).

    The name is unique among this process's missions (a counter per prefix) and skips names that exist
    (kept workspaces, other fixtures' directories); one item runs at a time in a process, and the item
    makes the directory (mode 0700, failing if it exists) before its first step that needs one."""
    if os.sep in prefix or (os.altsep and os.altsep in prefix) or prefix in ("", ".", ".."):
        return None
    root = factory.getbasetemp()
    numbers = config.stash.setdefault(_BASE_NUMBERS, {})
    key = prefix.lower()
    number = numbers.get(key, 0)
    while os.path.lexists(root / f"{prefix}{number}"):
        number += 1
    numbers[key] = number + 1
    return root / f"{prefix}{number}"


def _session_settings(config: pytest.Config) -> _SessionSettings:
    """Every setting of the session, with the header lines that say them (this checks the sandbox)."""
    if _SETTINGS not in config.stash:
        policy, policy_lines = _policy_settings(config)
        sandbox, sandbox_lines = _sandbox_settings(config)
        llm, llm_lines = _llm_settings(config)
        config.stash[_SETTINGS] = _SessionSettings(
            policy=policy,
            header=(*policy_lines, *sandbox_lines, *llm_lines),
            sandbox=sandbox,
            llm=llm,
            home_files=_home_files(config),
        )
    return config.stash[_SETTINGS]


def _check_settings(config: pytest.Config) -> None:
    """Read the settings a mistake in which stops the run at its start; the sandbox check (it starts
    bwrap) waits for the first mission unless a layer is asked for by name or xdist workers start."""
    _policy_settings(config)
    if not _sandbox_deferred(config):
        _sandbox_settings(config)
    if _llm_configured(config):
        _llm_settings(config)
    _home_files(config)


def _sandbox_mode(config: pytest.Config) -> str:
    mode = config.getoption("mission_sandbox") or str(config.getini("mission_sandbox")).strip() or "auto"
    if mode not in SANDBOX_MODES:
        raise pytest.UsageError(f"mission_sandbox = {mode!r} is not one of {', '.join(SANDBOX_MODES)}")
    return str(mode)


def _sandbox_deferred(config: pytest.Config) -> bool:
    """True when the sandbox is checked at the first mission: ``auto``, outside an xdist controller
    (whose header is the only place its workers' sandbox is told)."""
    controller = not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", None))
    return _sandbox_mode(config) == "auto" and not controller


def _ini_source(config: pytest.Config, name: str) -> str:
    """Where the ini value ``name`` came from: ``-o`` on the command line (or in addopts), or the file."""
    for override in config.getoption("override_ini", None) or ():
        if str(override).partition("=")[0].strip() == name:
            return "the command line (-o)"
    return config.inipath.name if config.inipath else "no configuration file"


def _option_source(config: pytest.Config, name: str, default: str) -> str:
    """Who set the option ``name`` (its dest and ini name are the same): the command line, ``-o``, the file."""
    value = config.getoption(name)
    if value:
        return f"--{name.replace('_', '-')}={value}"
    if str(config.getini(name)).strip() not in ("", default):
        return f"{name} from {_ini_source(config, name)}"
    return ""


def _home_files(config: pytest.Config) -> tuple[tuple[Path, str], ...]:
    """ini ``mission_home_files``: each a regular file under the user's home, with its path there."""
    if _HOME_FILES in config.stash:
        return config.stash[_HOME_FILES]
    given_files = config.getini("mission_home_files")
    home = Path.home().resolve() if given_files else Path()
    out: list[tuple[Path, str]] = []
    for given in given_files:
        path = Path(os.path.expanduser(str(given))).resolve()  # noqa: PTH111 - "~" is the point
        if not path.is_relative_to(home) or path == home:
            raise pytest.UsageError(
                f"mission_home_files: {given} is not a file under your home directory ({home})\n"
                "  HINT: name files such as ~/.npmrc or ~/.config/pip/pip.conf"
            )
        if not path.is_file():
            raise pytest.UsageError(f"mission_home_files: {given} does not exist (looked for {path})")
        out.append((path, path.relative_to(home).as_posix()))
    config.stash[_HOME_FILES] = tuple(out)
    return config.stash[_HOME_FILES]


def _policy_settings(config: pytest.Config) -> tuple[Policy, tuple[str, ...]]:
    """The safety policy and its header lines (the level, the ini allow lists, the home files)."""
    if _POLICY in config.stash:
        return config.stash[_POLICY]
    from pytest_rustchain.levels import LEVELS, Policy, parse_allow_rule

    level = config.getoption("mission_safety") or str(config.getini("mission_safety")).strip() or "standard"
    level_source = _option_source(config, "mission_safety", "standard")
    if level not in LEVELS:
        raise pytest.UsageError(f"mission_safety = {level!r} is not one of {', '.join(LEVELS)}")
    floor = os.environ.get("MISSION_SAFETY_FLOOR", "").strip() or None
    if floor is not None and floor not in LEVELS:
        raise pytest.UsageError(f"MISSION_SAFETY_FLOOR={floor!r} is not one of {', '.join(LEVELS)}")
    allow_commands = tuple(config.getini("mission_allow_commands"))
    allow_rules = tuple(config.getini("mission_allow_rules"))
    allow_hosts = tuple(config.getini("mission_allow_hosts"))
    policy = Policy(
        level=level,
        allow_commands=frozenset(allow_commands),
        allow_rules=tuple(parse_allow_rule(r) for r in allow_rules),
        allow_hosts=allow_hosts,
    ).at_least(floor)
    line = f"rustchain: safety policy {policy.level} (blocks at risk {policy.threshold})"
    if floor is not None and policy.level == floor and floor != level:
        line += f", raised from {level} by MISSION_SAFETY_FLOOR={floor}"
    elif floor is not None:
        line += f", floor MISSION_SAFETY_FLOOR={floor}"
    if level_source:
        line += f"; {level} set by {level_source}"
    header = [line]
    for name, values in (
        ("mission_allow_commands", allow_commands),
        ("mission_allow_rules", allow_rules),
        ("mission_allow_hosts", allow_hosts),
        ("mission_home_files", tuple(config.getini("mission_home_files"))),
    ):
        if values:
            header.append(f"rustchain: {name} from {_ini_source(config, name)}: {', '.join(values)}")
    config.stash[_POLICY] = (policy, tuple(header))
    return config.stash[_POLICY]


def _sandbox_settings(config: pytest.Config) -> tuple[Sandbox | None, tuple[str, ...]]:
    """The confinement layer (checked here, once per session and process) and its header lines."""
    if _SANDBOX in config.stash:
        return config.stash[_SANDBOX]
    mode = _sandbox_mode(config)
    if mode == "none":  # nothing to check: the sandbox module is not even loaded
        line = f"sandbox none (set by {_option_source(config, 'mission_sandbox', 'auto')})"
        config.stash[_SANDBOX] = (None, (f"rustchain: {line}",))
        return config.stash[_SANDBOX]
    from pytest_rustchain.sandbox import Landlock, choose_sandbox
    from pytest_rustchain.sandbox import tcp_ports as sandbox_tcp_ports

    allow_hosts = tuple(config.getini("mission_allow_hosts"))
    unix_sockets = bool(config.getini("mission_allow_unix_sockets"))
    sandbox, line, error = choose_sandbox(mode, unix_sockets=unix_sockets)
    if error is not None:
        raise pytest.UsageError(error)
    header = [f"rustchain: {line}"]
    if sandbox is not None:
        if allow_hosts:
            limit = ""
            if isinstance(sandbox, Landlock) and sandbox.abi >= 4:
                limit = f" (TCP connect only to ports {', '.join(map(str, sandbox_tcp_ports(allow_hosts)))})"
            header.append(
                f"rustchain: mission_allow_hosts opens the network to command steps{limit}: the sandbox does not"
                " limit which hosts they reach"
            )
        if unix_sockets:
            header.append(
                f"rustchain: mission_allow_unix_sockets from {_ini_source(config, 'mission_allow_unix_sockets')}:"
                " host Unix sockets are reachable"
            )
    config.stash[_SANDBOX] = (sandbox, tuple(header))
    return config.stash[_SANDBOX]


def _llm_configured(config: pytest.Config) -> bool:
    """True when any model setting is given (otherwise the defaults hold and nothing can be wrong)."""
    return bool(
        any(str(line).strip() for name in _LLM_LISTS for line in config.getini(name))
        or config.getoption("mission_record_mode")
        or str(config.getini("mission_record_mode")).strip() not in ("", "once")
        or str(config.getini("mission_cassette_dir")).strip()
        or config.getoption("mission_cassette_prune")
    )


_LLM_LISTS = ("mission_llm_providers", "mission_llm_roles", "mission_llm_prices")


def _llm_settings(config: pytest.Config) -> tuple[LLMOptions, tuple[str, ...]]:
    """The model options and their header line."""
    if _LLM in config.stash:
        return config.stash[_LLM]
    llm = _llm_options(config)
    header: tuple[str, ...] = ()
    if llm.settings.configured or llm.record_mode != "once" or llm.prune:
        where = str(llm.cassette_dir) if llm.cassette_dir else "cassettes/ next to each mission"
        header = (f"rustchain: llm record mode {llm.record_mode}, cassettes in {where}",)
    config.stash[_LLM] = (llm, header)
    return config.stash[_LLM]


def _llm_options(config: pytest.Config) -> LLMOptions:
    from pytest_rustchain.llm.config import ConfigError, LLMOptions, parse_settings

    try:
        settings = parse_settings(
            config.getini("mission_llm_providers"),
            config.getini("mission_llm_roles"),
            config.getini("mission_llm_prices"),
        )
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    mode = config.getoption("mission_record_mode") or str(config.getini("mission_record_mode")).strip() or "once"
    if mode not in ("none", "once", "new_episodes", "all"):
        raise pytest.UsageError(f"mission_record_mode = {mode!r} is not one of none, once, new_episodes, all")
    directory = str(config.getini("mission_cassette_dir")).strip()
    return LLMOptions(
        settings=settings,
        cassette_dir=Path(config.rootpath) / directory if directory else None,
        record_mode=mode,
        prune=bool(config.getoption("mission_cassette_prune")),
    )


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: tell each worker the distribution mode, which workers themselves see as "no", and the
    run id that names this run's trajectory directories."""
    node.workerinput["rustchain_dist"] = node.config.getoption("dist", "no")
    node.workerinput["rustchain_run_id"] = _repeat_settings(node.config).run_id


@dataclass(frozen=True, slots=True, kw_only=True)
class _RepeatSettings:
    repeat: int | None
    """From --mission-repeat or ini mission_repeat; None: the mission's config.repeat, else 1."""
    repeat_from_command_line: bool
    trajectories: Path | None
    export: str | None
    run_id: str
    rejudge: Path | None = None
    """--mission-rejudge: the trajectory directory whose stored runs are scored again."""
    rejudge_shown: str = ""
    rejudge_index: tuple[dict[str, Any], ...] = ()


_REPEAT = pytest.StashKey[_RepeatSettings]()


def _repeat_settings(config: pytest.Config) -> _RepeatSettings:
    if _REPEAT not in config.stash:
        config.stash[_REPEAT] = _read_repeat_settings(config)
    return config.stash[_REPEAT]


def _read_repeat_settings(config: pytest.Config) -> _RepeatSettings:
    cli = config.getoption("mission_repeat", None)
    repeat: int | None = cli
    if cli is not None and cli < 1:
        raise pytest.UsageError(
            f"--mission-repeat={cli}: a mission runs at least once\n  HINT: use --mission-repeat 1 or more"
        )
    if cli is None:
        raw = str(config.getini("mission_repeat") or "").strip()
        if raw:
            try:
                repeat = int(raw)
            except ValueError:
                repeat = 0
            if repeat < 1:
                raise pytest.UsageError(
                    f"mission_repeat = {raw!r} is not a number of runs\n  HINT: write a whole number of at least 1"
                )
    raw_dir = config.getoption("mission_trajectories", None)
    trajectories = Path(os.path.abspath(Path(str(raw_dir)).expanduser())) if raw_dir else None  # noqa: PTH100
    if trajectories is not None and trajectories.exists() and not trajectories.is_dir():
        raise pytest.UsageError(
            f"--mission-trajectories={raw_dir} is a file\n"
            "  HINT: give a directory, e.g. --mission-trajectories=trajectories"
        )
    export = config.getoption("mission_export", None)
    if export is not None and trajectories is None:
        raise pytest.UsageError(
            f"--mission-export={export} is built from the trajectories\n"
            "  HINT: add --mission-trajectories=DIR; the export is written next to them"
        )
    workerinput = getattr(config, "workerinput", None)
    run_id = str(workerinput.get("rustchain_run_id", "")) if workerinput is not None else ""
    raw_rejudge = config.getoption("mission_rejudge", None)
    rejudge: Path | None = None
    index: list[Any] = []
    if raw_rejudge:
        from pytest_rustchain.rejudge import RejudgeError, read_index

        rejudge = Path(os.path.abspath(Path(str(raw_rejudge)).expanduser()))  # noqa: PTH100
        try:
            index = read_index(rejudge, shown=str(raw_rejudge))
        except RejudgeError as exc:
            raise pytest.UsageError(str(exc)) from None
        if trajectories is not None:
            raise pytest.UsageError(
                f"--mission-rejudge={raw_rejudge} runs no step, so it writes no trajectory\n"
                "  HINT: drop --mission-trajectories (and --mission-export) when rejudging"
            )
    return _RepeatSettings(
        repeat=repeat,
        repeat_from_command_line=cli is not None,
        trajectories=trajectories,
        export=export,
        run_id=run_id or _new_run_id(trajectories),
        rejudge=rejudge,
        rejudge_shown=str(raw_rejudge or ""),
        rejudge_index=tuple(dict(e) for e in index),
    )


def _new_run_id(trajectories: Path | None) -> str:
    """A run id names the trajectory directories: only runs that write them need one."""
    if trajectories is None:
        return ""
    from pytest_rustchain.trajectory import new_run_id

    return new_run_id()


def pytest_report_header(config: pytest.Config) -> list[str]:
    if _SANDBOX not in config.stash and _sandbox_deferred(config):
        # The sandbox line follows the collection, in runs that collect missions.
        return [*_policy_settings(config)[1], *(_llm_settings(config)[1] if _llm_configured(config) else ())]
    return list(_session_settings(config).header)


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    """The sandbox lines the header left out (``auto``, checked now that missions are to run)."""
    header_shown = config.get_verbosity() >= 0 and not config.getoption("no_header", False)
    if not header_shown or not _sandbox_deferred(config) or not any(isinstance(i, MissionItem) for i in items):
        return []
    return list(_sandbox_settings(config)[1])


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_rustchain import hooks

    pluginmanager.add_hookspecs(hooks)


_ADDED = pytest.StashKey[tuple[list[str], list[str]]]()
_SESSION_TYPES = pytest.StashKey[tuple[Any, Any]]()  # (this session's step registry, its activation token)


def _add_extensions(config: pytest.Config) -> None:
    """Step types and tools from other plugins and conftest.py files, for this session: the step types
    go into this session's own registry (in ``config.stash``), never into the built-in one."""
    from pytest_rustchain import loader
    from pytest_rustchain.steps import base, tool

    added_types: list[str] = []
    added_tools: list[str] = []
    config.stash[_ADDED] = (added_types, added_tools)
    types = base.BUILTINS.copy()
    for batch in config.hook.pytest_rustchain_step_types():
        for step_type in batch or ():
            if step_type.name in types:
                raise pytest.UsageError(
                    f"pytest_rustchain_step_types: step type '{step_type.name}' is already registered"
                )
            types.add(step_type)
            added_types.append(step_type.name)
    for batch in config.hook.pytest_rustchain_tools():
        for name, func in (batch or {}).items():
            tool.register_tool(name, func)
            added_tools.append(name)
    if added_types:
        config.stash[_SESSION_TYPES] = (types, base.activate(types))
        loader.forget_step_schemas()


def _remove_extensions(config: pytest.Config) -> None:
    added = config.stash.get(_ADDED, None)
    if added is None:
        return
    from pytest_rustchain import loader
    from pytest_rustchain.steps import base, tool

    session = config.stash.get(_SESSION_TYPES, None)
    if session is not None:
        base.deactivate(session[1])
        del config.stash[_SESSION_TYPES]
        loader.forget_step_schemas()
    for name in added[1]:
        tool.unregister_tool(name)


_SIGNALS = pytest.StashKey[dict[int, Any]]()


def _stop_on_signal(signum: int, frame: Any) -> None:
    # Raised in the main thread wherever it is: a running step stops its whole process tree as on
    # Ctrl-C (procs.run_process), the mission records what it has, pytest writes the reports and
    # exits with its interrupted status.
    raise KeyboardInterrupt(f"{signal.Signals(signum).name} received")


def _catch_signals(config: pytest.Config) -> None:
    """SIGTERM (a CI cancel or job timeout) and SIGHUP stop the run as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous: dict[int, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:  # never take a signal someone else handles
            previous[sig] = signal.signal(sig, _stop_on_signal)
    config.stash[_SIGNALS] = previous


def _restore_signals(config: pytest.Config) -> None:
    previous = config.stash.get(_SIGNALS, None)
    if previous and threading.current_thread() is threading.main_thread():
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mission: a RustChain-style mission collected by pytest-rustchain")
    _catch_signals(config)
    if config.hook.pytest_rustchain_step_types.get_hookimpls() or config.hook.pytest_rustchain_tools.get_hookimpls():
        _add_extensions(config)
    _check_settings(config)
    _repeat_settings(config)
    if config.getoption("mission_dry_run", False):
        config.pluginmanager.register(_DryRunTable(), "rustchain-dry-run")
    report.configure(
        config, safety=lambda: tuple(line.removeprefix("rustchain: ") for line in _session_settings(config).header)
    )
    if config.pluginmanager.hasplugin("html") and config.getoption("htmlpath", None):
        from pytest_rustchain import htmlextras  # pytest-html writes a report: add each mission's graph to it

        htmlextras.configure(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    mission_cache = config.stash.get(_MISSION_CACHE, None)
    if mission_cache is not None:
        # Every process that collected missions (xdist workers too: pruning removes only entries
        # nobody read for a week, so two workers doing it at once remove nothing the other needs).
        mission_cache.prune()
    _restore_signals(config)
    _remove_extensions(config)
    report.unconfigure(config)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> MissionFile | None:
    name = file_path.name
    if not name.endswith((".yaml", ".yml")):
        return None
    config = parent.config
    globs = config.getini("mission_files") or DEFAULT_GLOBS
    if any(fnmatch.fnmatch(name, g) for g in globs) or parent.session.isinitpath(file_path):
        return MissionFile.from_parent(parent, path=file_path)
    if _compat(config):
        from pytest_rustchain.loader import sniff_mission

        if sniff_mission(file_path):
            return MissionFile.from_parent(parent, path=file_path)
    return None


class MissionFile(pytest.File):
    """One mission file; always yields exactly one item, named after the file stem."""

    def collect(self) -> Iterable[MissionItem]:
        from pytest_rustchain.errors import MissionFormatError
        from pytest_rustchain.model import LoadOptions, mission_stem

        config = self.config
        rootdir = Path(config.rootpath)
        try:
            display = str(self.path.relative_to(rootdir))
        except ValueError:
            display = str(self.path)
        options = LoadOptions(compat=_compat(config), rootdir=rootdir, limits=_limits(config))
        mission, error = _load(config, self.path, display, options)
        stem = mission_stem(self.path)
        if mission is not None:
            from pytest_rustchain.levels import check_safety_level

            try:
                check_safety_level(mission, _policy_settings(config)[0])
            except MissionFormatError as exc:
                error = exc.render()
        # A matrix makes one item per combination, named as pytest names parametrized tests.
        combinations: tuple[Combination | None, ...] = (mission.matrix or (None,)) if mission is not None else (None,)
        for combination in combinations:
            name = stem if combination is None else f"{stem}[{combination.id}]"
            item = MissionItem.from_parent(self, name=name, callobj=_mission_test)
            item.mission = mission
            item.combination = combination
            item.load_error = error
            item.display_path = display
            if mission is not None and item.load_error is None:
                marks_error = item.apply_marks()
                if marks_error:
                    item.load_error = marks_error
                for text in mission.warnings:
                    try:
                        item.warn(pytest.PytestWarning(text))
                    except pytest.PytestWarning:
                        # filterwarnings = error: the warning fails this mission, not the whole collection.
                        item.load_error = f"{text}\n  HINT: remove the key, or let PytestWarning through filterwarnings"
                        break
            yield item


_MISSION_CACHE = pytest.StashKey["MissionCache | None"]()


def _mission_cache(config: pytest.Config) -> MissionCache | None:
    """Where loaded missions are kept between runs: in pytest's cache directory, when pytest keeps one
    (not with ``-p no:cacheprovider``) and no plugin or conftest.py adds step types or tools."""
    if _MISSION_CACHE not in config.stash:
        cache: MissionCache | None = None
        pytest_cache = getattr(config, "cache", None)
        if pytest_cache is not None and _ADDED not in config.stash:
            from pytest_rustchain.missioncache import MissionCache

            try:
                cache = MissionCache(pytest_cache.mkdir("rustchain-missions"))
            except OSError:  # a read-only checkout: every file is loaded
                cache = None
        config.stash[_MISSION_CACHE] = cache
    return config.stash[_MISSION_CACHE]


def _load(config: pytest.Config, path: Path, display: str, options: LoadOptions) -> tuple[Mission | None, str | None]:
    """The mission in ``path`` (from the cache when the file is unchanged), or the error that stops it."""
    cache = _mission_cache(config)
    key = cache.key(path, display, options) if cache is not None else None
    if cache is not None and key is not None:
        kept = cache.get(key)
        if kept is not None:
            return kept, None
    from pytest_rustchain.errors import MissionError
    from pytest_rustchain.loader import load_self_contained

    try:
        mission, self_contained = load_self_contained(path, display_path=display, options=options)
    except MissionError as exc:
        return None, str(exc)
    # Kept only when the file did not change while it was loaded.
    if cache is not None and key is not None and self_contained and cache.key(path, display, options) == key:
        cache.put(key, mission)
    return mission, None


def _mission_test(
    request: pytest.FixtureRequest, subtests: pytest.Subtests, tmp_path_factory: pytest.TempPathFactory
) -> None:
    item = request.node
    assert isinstance(item, MissionItem)
    item.run_mission(subtests, tmp_path_factory, request)


_SETUPS = pytest.StashKey[Any]()  # setups.SetupCache: one per session, so one per xdist worker


def _setup_cache(config: pytest.Config) -> Any:
    if _SETUPS not in config.stash:
        from pytest_rustchain.setups import SetupCache

        config.stash[_SETUPS] = SetupCache()
    return config.stash[_SETUPS]


def _available_fixtures(exc: pytest.FixtureLookupError) -> list[str]:
    """The fixture names pytest lists in its own lookup error (empty when it lists none)."""
    text = str(getattr(exc.formatrepr(), "errorstring", "") or "")
    for line in text.splitlines():
        head, sep, names = line.strip().partition("available fixtures:")
        if sep and not head:
            return [n.strip() for n in names.split(",") if n.strip()]
    return []


def _fixture_values(
    config: pytest.Config,
    mission: Mission,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    settings: RunSettings,
) -> dict[str, Any]:
    """``fixtures.<name>``: pytest fixtures through pytest's own machinery (any scope; a session
    fixture is made once per session and xdist worker) and setup files through the session's cache.
    Raises ``SetupFailed`` when one cannot be had."""
    from pytest_rustchain.errors import MissionFormatError
    from pytest_rustchain.setups import SetupFailed, fixture_uses, template_value

    def make_base(name: str) -> Path:
        return tmp_path_factory.mktemp(name[:40], numbered=True)

    values: dict[str, Any] = {}
    for use in fixture_uses(mission):
        if use.setup is not None:
            values[use.key] = _setup_cache(config).get(use, make_base=make_base, settings=settings)
            continue
        where = f"{use.source}:{use.line}"
        try:
            value = request.getfixturevalue(use.fixture)
        except pytest.FixtureLookupError as exc:
            if exc.argname != use.fixture:
                # The fixture exists; something it asks for does not: pytest's own words say what.
                said = str(getattr(exc.formatrepr(), "errorstring", "") or exc).strip().splitlines()
                message = f"fixture '{use.fixture}' ({where}) cannot be set up: {said[0] if said else exc}"
                raise SetupFailed(message, reason=f"fixture '{use.fixture}' failed") from None
            close = difflib.get_close_matches(use.fixture, _available_fixtures(exc), n=1)
            message = MissionFormatError(
                f"unknown fixture '{use.fixture}'",
                path=use.source,
                line=use.line,
                col=use.col,
                json_path=f"$.fixtures[{use.index}]",
                hint=(f"did you mean '{close[0]}'? Or define" if close else "define")
                + f" it in a conftest.py (@pytest.fixture def {use.fixture}(): ...); "
                "`pytest --fixtures` lists the fixtures that exist",
            ).render()
            raise SetupFailed(message, reason=f"unknown fixture '{use.fixture}' ({where})") from None
        except Exception as exc:
            message = (
                f"fixture '{use.fixture}' ({where}) raised {type(exc).__name__}: {exc}\n"
                "  HINT: a test that uses the fixture shows its traceback; --setup-show shows when it runs"
            )
            raise SetupFailed(message, reason=f"fixture '{use.fixture}' failed") from None
        values[use.key] = template_value(value)
    return values


class MissionItem(pytest.Function):
    """A mission as one test; its steps are reported as subtests."""

    mission: Mission | None = None
    combination: Combination | None = None
    """The ``matrix:`` combination this item runs (None: the mission has no matrix)."""
    load_error: str | None = None
    display_path: str = ""
    result: MissionResult | None = None
    current_step: Step | None = None
    current_where: tuple[str, int] | None = None
    """Where the subtest being reported points when it is no running step (the judge: line), for -rs."""
    dry_rows: list[dict[str, Any]] | None = None
    trajectory_files: list[dict[str, Any]] | None = None
    judged: Any = None
    """The mission-level judge's outcome (``missionjudge.JudgeOutcome``), when the mission has ``judge:``."""

    @property
    def id(self) -> Any:
        """The structured node id. pytest builds a parametrized test's from its name and its parameters
        apart; a matrix item's must be built the same way, or ``--lf``, ``--ff`` and ``--sw`` (which read
        ``ci[python=3.12]`` back from their cache as the name ``ci`` with parameters) never find it."""
        own = super().id
        if self.combination is None or self.mission is None or getattr(own, "params", None) is not None:
            return own
        try:
            return self.parent.id.child(self.mission.stem).with_params(self.combination.id)  # type: ignore[union-attr]
        except (AttributeError, TypeError):  # a pytest whose node ids have another shape: its own id
            return own

    def apply_marks(self) -> str | None:
        assert self.mission is not None
        self.add_marker(pytest.mark.mission)
        for name in self.mission.marks:
            line, col = self.mission.mark_positions.get(name, (self.mission.line, None))
            with warnings.catch_warnings(record=True) as caught:
                # pytest warns about an unknown mark from inside its own code; the warning is raised
                # again below, located at the mission file, where filterwarnings = error fails only it.
                warnings.simplefilter("always")
                try:
                    marker = getattr(pytest.mark, name)
                except pytest.fail.Exception:  # --strict-markers
                    return self._unknown_mark(name, line, col, "--strict-markers is on")
            if any(issubclass(w.category, pytest.PytestUnknownMarkWarning) for w in caught):
                text = self._unknown_mark(name, line, col, "")
                try:
                    warnings.warn_explicit(
                        pytest.PytestUnknownMarkWarning(text), category=None, filename=str(self.path), lineno=line
                    )
                except pytest.PytestUnknownMarkWarning:
                    return self._unknown_mark(name, line, col, "filterwarnings turns the warning into an error")
            self.add_marker(marker)
        if self.mission.skip is not None:
            self.add_marker(pytest.mark.skip(reason=self.mission.skip))
        if self.mission.config.workspace.kind == "project":
            self.add_marker(pytest.mark.xdist_group(_PROJECT_GROUP))
        return None

    def _unknown_mark(self, name: str, line: int, col: int | None, why: str) -> str:
        from pytest_rustchain.errors import MissionFormatError

        registered = [str(m).split(":", 1)[0].split("(", 1)[0].strip() for m in self.config.getini("markers")]
        close = difflib.get_close_matches(name, [m for m in registered if m], n=1)
        hint = f"did you mean '{close[0]}'? Or register" if close else "register"
        return MissionFormatError(
            f"unknown mark '{name}'" + (f" ({why})" if why else ""),
            path=self.display_path,
            line=line,
            col=col,
            json_path="$.marks",
            hint=f"{hint} it in the pytest configuration: markers = {name}: description",
        ).render()

    def reportinfo(self) -> tuple[Path, int, str]:
        from pytest_rustchain.masking import one_line

        line = self.mission.line - 1 if self.mission is not None else 0
        label = self.name if self.mission is None else f"{self.name}: {one_line(self.mission.name)}"
        return self.path, line, label

    def _repr_failure_py(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        # Frame locals hold the template context and the step environment: never print them (-l).
        showlocals = self.config.option.showlocals
        self.config.option.showlocals = False
        try:
            return super()._repr_failure_py(excinfo, style)
        finally:
            self.config.option.showlocals = showlocals

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str | Any:  # type: ignore[override]
        from pytest_rustchain.errors import MissionError

        if isinstance(excinfo.value, MissionError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    # -- running ---------------------------------------------------------------------------------

    def _settings(self) -> RunSettings:
        return self._settings_for(self.config, {}, self.combination)

    @property
    def run_stem(self) -> str:
        """The mission stem, with the combination for a matrix item (``ci.python=3.12``): names what
        belongs to this item alone (its workspace, trajectories, cassette)."""
        assert self.mission is not None
        return self.mission.stem + (f".{self.combination.id}" if self.combination is not None else "")

    @staticmethod
    def _settings_for(
        config: pytest.Config, extra_vars: dict[str, Any], combination: Combination | None = None
    ) -> RunSettings:
        from pytest_rustchain.runner import RunSettings

        if _RUN_SETTINGS not in config.stash:
            # What the configuration says is read once per session; the environment, once per mission.
            mission_vars = _parse_vars(config.getini("mission_vars"), "mission_vars")
            mission_vars.update(_parse_vars(config.getoption("mission_var"), "--mission-var"))
            session = _session_settings(config)
            config.stash[_RUN_SETTINGS] = {
                "rootdir": Path(config.rootpath),
                "pass_env": tuple(config.getini("mission_pass_env")),
                "vars_override": mission_vars,
                "tolerate": not config.getoption("runxfail"),
                "policy": session.policy,
                "secret_names": tuple(config.getini("mission_secrets")),
                "sandbox": session.sandbox,
                "llm": session.llm,
                "home_files": session.home_files,
            }
        fields = config.stash[_RUN_SETTINGS]
        if extra_vars:
            fields = {**fields, "vars_override": {**fields["vars_override"], **extra_vars}}
        return RunSettings(
            **fields,
            source_env=dict(os.environ),
            github_actions=os.environ.get("GITHUB_ACTIONS") == "true",
            matrix=dict(combination.values) if combination is not None else {},
            matrix_id=combination.id if combination is not None else "",
        )

    def _check_dist(self) -> None:
        assert self.mission is not None
        if self.mission.config.workspace.kind != "project":
            return
        # Workers see --dist as "no"; the controller hands its own mode over (pytest_configure_node).
        workerinput = getattr(self.config, "workerinput", None)
        dist = workerinput.get("rustchain_dist", "no") if workerinput is not None else "no"
        if dist not in ("loadgroup", "no"):
            from pytest_rustchain.errors import MissionFormatError

            raise MissionFormatError(
                f"a 'workspace: project' mission needs --dist loadgroup under -n (got --dist {dist})",
                path=self.display_path,
                hint="add --dist loadgroup so project missions share one worker and never edit one checkout at once",
            )

    def repeat_count(self) -> int:
        """--mission-repeat, else the mission's config.repeat, else ini mission_repeat, else 1."""
        settings = _repeat_settings(self.config)
        own = self.mission.config.repeat if self.mission is not None else None
        if settings.repeat_from_command_line or own is None:
            return settings.repeat or 1
        return own

    def _unmet(self, subtests: pytest.Subtests, message: str, reason: str) -> None:
        """The mission's fixtures could not be had: each step is reported skipped because of it and
        counted, and the mission fails with the message."""
        from pytest_rustchain.masking import neutralise_workflow_commands
        from pytest_rustchain.runner import unmet_result
        from pytest_rustchain.setups import mission_steps

        assert self.mission is not None
        self.result = result = unmet_result(self.mission, neutralise_workflow_commands(message), reason)
        for label, step in mission_steps(self.mission):
            self.current_step = step
            try:
                with subtests.test(msg=label):
                    _report_step(result.steps[label])
            except (pytest.fail.Exception, pytest.skip.Exception):
                continue
        self.current_step = None
        self.user_properties.extend(
            [
                ("mission_status", result.status.value),
                ("steps_total", result.steps_total),
                ("steps_passed", result.steps_passed),
                ("success_rate", "n/a" if result.success_rate is None else f"{result.success_rate:.4f}"),
            ]
        )
        pytest.fail(result.message, pytrace=False)

    def run_mission(
        self,
        subtests: pytest.Subtests,
        tmp_path_factory: pytest.TempPathFactory,
        request: pytest.FixtureRequest | None = None,
    ) -> None:
        from pytest_rustchain import repeats
        from pytest_rustchain.masking import neutralise_workflow_commands
        from pytest_rustchain.model import MissionStatus
        from pytest_rustchain.runner import ChainRun
        from pytest_rustchain.workspace import Workspace, create_workspace, make_directories

        if self.load_error is not None:
            self.user_properties.append(("mission_status", "error"))
            # The message quotes the file (keys, values): no line of it may act as a workflow command.
            pytest.fail(neutralise_workflow_commands(self.load_error), pytrace=False)
        mission = self.mission
        assert mission is not None
        if self.config.getoption("mission_dry_run"):
            self._dry_run(subtests)
            return
        if _repeat_settings(self.config).rejudge is not None:
            self._rejudge(subtests)
            return
        self._check_dist()
        fixtures: dict[str, Any] = {}
        if mission.fixtures or any(m.fixtures for m in mission.next_missions):
            from pytest_rustchain.setups import SetupFailed

            unmet: SetupFailed | None = None
            try:
                assert request is not None
                fixtures = _fixture_values(self.config, mission, request, tmp_path_factory, self._settings())
            except SetupFailed as exc:
                unmet = exc
            if unmet is not None:  # outside the except block: the failure is the message, not a chain
                self._unmet(subtests, str(unmet), unmet.reason)
                return
        settings = self._settings()
        if fixtures:
            from pytest_rustchain.setups import with_fixtures

            settings = with_fixtures(settings, mission, fixtures)
        keep = self.config.getoption("mission_keep_workspace") or self.config.getini("mission_keep_workspace")
        n = self.repeat_count()
        # A combination's directory ends in '-' before pytest's number: ci.python=3.12-0, not ci.python=3.120.
        tail = "-" if self.combination is not None else ""
        prefix = f"mission-{self.run_stem}"[:60] + tail
        # Directories cost milliseconds each on some disks: a mission makes them before its first step
        # that can touch them, so missions of bare noop steps make none, not even their base (unless
        # mission_home_files are copied into HOME as the mission starts).
        lazy_base = mission.config.workspace.kind == "tmp" and keep != "always" and not settings.home_files
        base = _unmade_base(self.config, tmp_path_factory, prefix) if lazy_base else None
        if base is None:
            base = tmp_path_factory.mktemp(prefix, numbered=True)
            lazy_base = False
        recorder = _TrajectoryRecorder.start(self, n)
        started = time.monotonic()
        parts: list[MissionResult] = []
        chain: ChainRun | None = None
        interrupted: KeyboardInterrupt | None = None
        transcripts: list[list[dict[str, Any]]] | None = [] if mission.judge is not None else None
        last_run: Any = None
        self.judged = None
        try:
            for index in range(n):
                root = base if n == 1 else base / f"r{index + 1}"
                lazy = mission.config.workspace.kind == "tmp" and keep != "always"
                # pytest's base temporary directory is resolved and the item's base is a new name in it.
                space = create_workspace(
                    mission, base=root, rootdir=Path(self.config.rootpath), make=not lazy, base_is_real=True
                )
                chain = ChainRun(
                    mission, workspace=space.path, home=space.home, tmpdir=space.tmpdir, settings=settings,
                    prefix=repeats.prefix(index + 1, n), repeat=index,
                    workspace_is_real=mission.config.workspace.kind != "project",
                )  # fmt: skip
                if recorder is not None:
                    recorder.begin(index, chain)
                if transcripts is not None:
                    transcripts.append([])
                for run, step in chain:
                    if lazy and (step.step_type != "noop" or step.expect):
                        if lazy_base:
                            base.mkdir(mode=0o700)  # as pytest's mktemp makes it; the name is this item's
                            lazy_base = False
                        make_directories(mission, space)
                        lazy = False
                    self.current_step = step
                    if recorder is not None:
                        recorder.step_start(index, run.prefix + step.id, step)
                    outcomes = [chain.execute(run, step), *run.substeps(step)]
                    for outcome in outcomes:
                        if recorder is not None:
                            recorder.step_end(index, outcome)
                        if transcripts is not None:
                            transcripts[index].extend(_transcript_events(outcome))
                        try:
                            with subtests.test(msg=outcome.step_id):
                                _report_step(outcome)
                        except (pytest.fail.Exception, pytest.skip.Exception):
                            # Under -x/--maxfail pytest re-raises subtest outcomes; the mission keeps
                            # control so its always() steps still run, and pytest stops after the mission.
                            continue
                self.current_step = None
                parts.append(chain.result())
                last_run, chain = chain.runs[0], None
            if transcripts is not None and last_run is not None:
                records = _repeat_records(parts, transcripts)
                self.judged = self._judge_repeats(last_run.llm_runtime, last_run.masker, records)
                # -x/--maxfail: the mission's verdict below still counts the judge
                with contextlib.suppress(pytest.fail.Exception, pytest.skip.Exception):
                    self._report_result(subtests, self.judged.result)
        except KeyboardInterrupt as exc:
            interrupted = exc
            raise
        finally:
            self.current_step = None
            if chain is not None:
                parts.append(chain.result())
            self.result = result = self._overall(parts, time.monotonic() - started)
            if interrupted is not None:
                why = str(interrupted) or "KeyboardInterrupt"
                self.result = result = replace(result, status=MissionStatus.ERROR, message=f"interrupted ({why})")
                # pytest makes no report for an interrupted test: hand the result to the reporter.
                report.record_unfinished(self.config, self.nodeid, result)
            if recorder is not None:
                self.trajectory_files = recorder.finish(parts, result)
            # One base holds every repeat's directories: the whole item is kept or removed.
            if not lazy_base:  # a base never made holds nothing
                Workspace(path=base, home=base, tmpdir=base, base=base).cleanup(passed=result.passed, keep=str(keep))
            self._add_properties(result)
        self._conclude(result)

    def _add_properties(self, result: MissionResult) -> None:
        """The mission's numbers as JUnit properties of its testcase."""
        from pytest_rustchain import repeats

        passed, total = result.tally()
        rate = None if total == 0 else passed / total
        self.user_properties.extend(
            [
                ("mission_status", result.status.value),
                ("steps_total", total),
                ("steps_passed", passed),
                ("success_rate", "n/a" if rate is None else f"{rate:.4f}"),
            ]
        )
        if result.repeats is not None and int(result.repeats["n"]) > 1:
            self.user_properties.extend(repeats.junit_properties(result.repeats))
        if result.llm.get("calls"):
            src = result.llm.get("by_source") or {}
            self.user_properties.extend(
                [
                    ("llm_calls", result.llm["calls"]),
                    ("llm_sources", " ".join(f"{k}={src.get(k, 0)}" for k in ("recorded", "scripted", "live"))),
                    (
                        "llm_tokens",
                        int(result.llm.get("input_tokens", 0)) + int(result.llm.get("output_tokens", 0)),
                    ),
                    ("llm_cost_usd", f"{float(result.llm.get('cost_usd') or 0):.6f}"),
                ]
            )

    def _conclude(self, result: MissionResult) -> None:
        """pytest's verdict on the item: the mission's, so the two never disagree."""
        from pytest_rustchain.model import MissionStatus, StepStatus

        mission = self.mission
        assert mission is not None
        if result.status is MissionStatus.XFAILED:
            pytest.xfail(f"{mission.xfail} ({result.message.splitlines()[0] if result.message else ''})")
        if result.status is not MissionStatus.PASSED:
            from pytest_rustchain.summary import rollup_once

            failed = (StepStatus.FAILED, StepStatus.BLOCKED)
            shown = [(r.step_id, r.reason) for r in result.steps.values() if r.status in failed]
            pytest.fail(rollup_once(result.message, shown) or "mission failed", pytrace=False)

    def _overall(self, parts: list[MissionResult], duration: float) -> MissionResult:
        """The item's result: the one run's, or all repeats combined with their numbers."""
        from pytest_rustchain import repeats
        from pytest_rustchain.runner import followers

        mission = self.mission
        assert mission is not None
        members = [("", mission), *followers(mission, "next/")]
        min_rates = {p + s.id: s.min_pass_rate for p, m in members for s in m.steps if s.min_pass_rate is not None}
        judged = self.judged
        if len(parts) == 1 and not min_rates and mission.reward is None and judged is None:
            return parts[0]
        from pytest_rustchain.llm.runtime import merge_llm

        combined = repeats.combine(
            mission.name,
            mission.display_path,
            parts,
            threshold=mission.config.success_threshold,
            xfail=mission.xfail is not None,
            min_pass_rates=min_rates,
            expects=frozenset(p + s.id for p, m in members for s in m.steps if s.expect),
            reward=mission.reward,
            judge_scores=judged.scores if judged is not None else None,
            judge=judged.block if judged is not None else None,
            judge_result=judged.result if judged is not None else None,
            duration=duration,
        )
        # Every repeat's model calls count in the llm line and the reports, as every repeat's steps do.
        llm = merge_llm([dict(p.llm) for p in parts])
        if llm and parts[-1].llm:
            # The repeats share one cassette: what is unused is known after the last one, not a sum.
            llm["unused_recordings"] = int(parts[-1].llm.get("unused_recordings") or 0)
        if judged is not None and judged.calls:
            from pytest_rustchain.llm.session import summarise_calls

            calls = [*llm.get("calls_list", ()), *judged.calls]
            llm = {**llm, **summarise_calls(calls), "calls_list": calls}
        if judged is not None and judged.unused_recordings is not None and llm:
            llm["unused_recordings"] = judged.unused_recordings
        return replace(combined, llm=llm)

    def _judge_repeats(self, runtime: Any, masker: Any, records: list[Any]) -> Any:
        """The mission-level judge over the repeats (``judge:``), through the cassette the repeats used."""
        from pytest_rustchain.llm.cassette import CassetteError
        from pytest_rustchain.missionjudge import run_judge
        from pytest_rustchain.model import StepStatus

        mission = self.mission
        assert mission is not None and mission.judge is not None
        outcome = run_judge(
            mission.judge, records, session=runtime.session, stem=mission.stem, path=mission.display_path
        )
        result = replace(
            outcome.result,
            reason=masker.text(outcome.result.reason),
            outputs=masker.value(dict(outcome.result.outputs)),
        )
        block = masker.value(dict(outcome.block)) if outcome.block is not None else None
        recorder = runtime.session.recorder
        if outcome.calls:
            try:
                recorder.save()
            except CassetteError as exc:
                result = replace(result, status=StepStatus.FAILED, reason=str(exc), phase="run")
        unused = len(recorder.unused()) if recorder.mode != "all" else 0
        return replace(outcome, result=result, block=block, unused_recordings=unused)

    def _rejudge(self, subtests: pytest.Subtests) -> None:
        """--mission-rejudge: score the newest stored run of this mission again; no step runs."""
        from pytest_rustchain.rejudge import RejudgeError, find_run, load_repeat, rejudge_steps

        mission = self.mission
        assert mission is not None
        settings = _repeat_settings(self.config)
        assert settings.rejudge is not None
        shown = settings.rejudge_shown
        stored = find_run(settings.rejudge_index, nodeid=self.nodeid, path=self.display_path)
        if stored is None:
            pytest.skip(f"--mission-rejudge={shown}: no stored run of this mission (index.json lists none)")
        if mission.judge is None and not any(s.step_type == "judge" for s in mission.steps):
            pytest.skip(
                f"--mission-rejudge={shown}: the mission has no judge to score its stored runs with "
                "(add judge: {method: ruler, rubric: ...} to the mission, or a judge step)"
            )
        started = time.monotonic()
        try:
            loaded = [load_repeat(settings.rejudge, entry, shown_dir=shown) for entry in stored.entries]
        except RejudgeError as exc:
            self.user_properties.append(("mission_status", "error"))
            pytest.fail(str(exc), pytrace=False)
        runtime, masker = self._rejudge_runtime()
        loaded, redone = rejudge_steps(mission, loaded, runtime, rootdir=Path(self.config.rootpath), mask=masker)
        for outcome in redone:
            try:
                self._report_result(subtests, outcome)
            except (pytest.fail.Exception, pytest.skip.Exception):
                continue
        parts = [_placed(r.result, mission) for r in loaded]
        step_calls = [c.to_dict() for c in runtime.session.calls]
        if step_calls:
            from pytest_rustchain.llm.cassette import CassetteError
            from pytest_rustchain.llm.session import summarise_calls
            from pytest_rustchain.model import MissionStatus

            parts[0] = replace(parts[0], llm={**summarise_calls(step_calls), "calls_list": step_calls})
            try:
                runtime.session.recorder.save()
            except CassetteError as exc:
                parts[0] = replace(parts[0], status=MissionStatus.FAILED, message=str(exc))
        self.judged = None
        if mission.judge is not None:
            self.judged = judged = self._judge_repeats(runtime, masker, [r.record for r in loaded])
            if judged.block is not None:
                self.judged = replace(judged, block={**judged.block, "rejudged_run": stored.run_id})
            with contextlib.suppress(pytest.fail.Exception, pytest.skip.Exception):
                self._report_result(subtests, judged.result)
        self.result = result = self._overall(parts, time.monotonic() - started)
        self._add_properties(result)
        self._conclude(result)

    def _report_result(self, subtests: pytest.Subtests, result: StepResult) -> None:
        """The subtest of a result that is no running step (a judge), its skip pointed at its own line."""
        self.current_where = (result.source or self.display_path, result.line) if result.line else None
        try:
            with subtests.test(msg=result.step_id):
                _report_step(result)
        finally:
            self.current_where = None

    def _rejudge_runtime(self) -> tuple[Any, Any]:
        """A model runtime for the judges alone: the mission's cassette, masking and hosts; no other step can run."""
        from pytest_rustchain.errors import StepError
        from pytest_rustchain.llm.config import LLMOptions
        from pytest_rustchain.llm.runtime import build_runtime
        from pytest_rustchain.masking import Masker, secret_values
        from pytest_rustchain.missionjudge import JUDGE_STEP_ID
        from pytest_rustchain.runner import mission_policy

        mission = self.mission
        assert mission is not None
        settings = self._settings()
        options = settings.llm or LLMOptions()
        secrets = secret_values(settings.source_env, settings.secret_names)
        secrets += options.settings.secret_values(settings.source_env)
        masker = Masker(secrets=tuple(secrets), neutralise_workflow_commands=settings.github_actions)

        def no_step(step_type: str, params: Any, /, *, level: str | None = None) -> Any:
            raise StepError(f"no step runs while rejudging (asked for {step_type})")

        runtime = build_runtime(
            options,
            mission_path=mission.path,
            mission_stem=self.run_stem,
            rootdir=settings.rootdir,
            masker=masker,
            volatile={},
            allow_hosts=mission_policy(settings.policy, mission.config.safety).allow_hosts,
            environ=settings.source_env,
            run_step=no_step,
            outputs_of=lambda _step_id: None,
            compat=mission.compat,
            # Only the judges are asked: the other steps' recordings are kept, never counted unused.
            only_steps=frozenset({JUDGE_STEP_ID, *(s.id for s in mission.steps if s.step_type == "judge")}),
        )
        return runtime, masker

    def _dry_run(self, subtests: pytest.Subtests) -> None:
        """Score every step on its raw parameters; create nothing, run nothing."""
        from pytest_rustchain.dryrun import dry_run

        assert self.mission is not None
        judged = dry_run(self.mission, self._settings())
        for row in judged.rows:
            self.current_step = row.step
            try:
                with subtests.test(msg=row.label):
                    if row.blocked:
                        pytest.fail(row.explanation, pytrace=False)
            except (pytest.fail.Exception, pytest.skip.Exception):
                continue  # -x/--maxfail: the dry run still lists every step
        self.current_step = None
        self.dry_rows = [row.to_dict() for row in judged.rows]
        if judged.blocked:
            pytest.fail(judged.message(), pytrace=False)


def _placed(stored: MissionResult, mission: Mission) -> MissionResult:
    """A stored run's step results with the line and file of each step as the mission now defines it
    (trajectories do not carry them), so reports point at the step, not at line 0."""
    from pytest_rustchain.runner import followers

    where = {
        prefix + step.id: (step.line, step.source or member.display_path)
        for prefix, member in [("", mission), *followers(mission, "next/")]
        for step in member.steps
    }
    steps = dict(stored.steps)
    for sid, step in stored.steps.items():
        head, _, rest = sid.partition("/")
        found = where.get(rest if head[:1] == "r" and head[1:].isdigit() else sid)  # r2/build is build
        if found is not None and not step.line:
            steps[sid] = replace(step, line=found[0], source=step.source or found[1])
    return replace(stored, steps=steps)


def _repeat_records(parts: list[MissionResult], transcripts: list[list[dict[str, Any]]]) -> list[Any]:
    """What the mission-level judge reads of each repeat: its events, status and workspace."""
    from pytest_rustchain.missionjudge import RepeatRecord

    return [
        RepeatRecord(events=tuple(events), status=part.status.value, workspace=part.workspace)
        for part, events in zip(parts, transcripts, strict=False)
    ]


def _transcript_events(result: StepResult) -> list[dict[str, Any]]:
    """A step's trajectory events as the mission-level judge reads them (capped as the files are)."""
    from pytest_rustchain.trajectory import capped, step_events

    return [{"event": event, **capped(fields, str)} for event, fields in step_events(result)]


class _TrajectoryRecorder:
    """Feeds one mission item's steps to its trajectory files (``--mission-trajectories``)."""

    def __init__(self, files: Any, mission: Mission) -> None:
        self.files = files
        self.mission = mission
        self.params: dict[str, Any] = {}

    @classmethod
    def start(cls, item: MissionItem, repeats: int) -> _TrajectoryRecorder | None:
        settings = _repeat_settings(item.config)
        if settings.trajectories is None or item.mission is None:
            return None
        from pytest_rustchain.trajectory import MissionTrajectories

        files = MissionTrajectories(
            settings.trajectories,
            run_id=settings.run_id,
            stem=item.run_stem,
            nodeid=item.nodeid,
            name=item.mission.name,
            path=item.display_path,
            repeats=repeats,
        )
        return cls(files, item.mission)

    def begin(self, index: int, chain: Any) -> None:
        maskers = [run.masker for run in chain.runs]

        def mask(text: str) -> str:
            for masker in maskers:
                text = masker.text(text)
            return text

        self.files.begin(index, workspace=str(chain.runs[0].workspace), mask=mask)

    def step_start(self, index: int, label: str, step: Step) -> None:
        self.files.step_start(index, label, step_type=step.step_type, line=step.line)

    def step_end(self, index: int, result: StepResult) -> None:
        from pytest_rustchain.trajectory import step_events

        for event, fields in step_events(result):
            self.files.emit(index, event, **fields)

    def finish(self, parts: list[MissionResult], result: MissionResult) -> list[dict[str, Any]]:
        return list(self.files.finish([p.to_dict() for p in parts], result.repeats))


class MissionFixture:
    """The ``mission`` fixture: run mission files inside a test, with the session's policy and sandbox."""

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self._config = request.config
        self._request = request
        self._tmp_path = tmp_path
        self._count = 0

    def load(self, path: str | Path) -> Mission:
        """Load and check a mission file (relative paths are relative to the rootdir)."""
        from pytest_rustchain.loader import LoadOptions, load_mission

        rootdir = Path(self._config.rootpath)
        target = Path(path) if Path(path).is_absolute() else rootdir / path
        options = LoadOptions(compat=_compat(self._config), rootdir=rootdir, limits=_limits(self._config))
        return load_mission(target, options=options)

    def run(
        self, path: str | Path | Mission, *, vars: dict[str, Any] | None = None, matrix: dict[str, Any] | None = None
    ) -> MissionResult:
        """Run a mission in a fresh workspace under ``tmp_path`` and return its result; a mission with a
        ``matrix:`` runs the combination ``matrix`` names (``{"python": "3.12"}``)."""
        from pytest_rustchain.matrix import select
        from pytest_rustchain.model import Mission
        from pytest_rustchain.runner import ChainRun, run_steps
        from pytest_rustchain.workspace import create_workspace

        loaded = path if isinstance(path, Mission) else self.load(path)
        combination = select(loaded.matrix, matrix, path=loaded.display_path)
        self._count += 1
        space = create_workspace(
            loaded, base=self._tmp_path / f"mission-{self._count}", rootdir=Path(self._config.rootpath)
        )
        settings = MissionItem._settings_for(self._config, dict(vars or {}), combination)
        if loaded.fixtures or any(m.fixtures for m in loaded.next_missions):
            # The test's own request: its fixtures, and setup files once per session like the missions'.
            factory = self._request.getfixturevalue("tmp_path_factory")
            fixtures = _fixture_values(self._config, loaded, self._request, factory, settings)
            from pytest_rustchain.setups import with_fixtures

            settings = with_fixtures(settings, loaded, fixtures)
        chain = ChainRun(loaded, workspace=space.path, home=space.home, tmpdir=space.tmpdir, settings=settings)
        return run_steps(chain)


@pytest.fixture
def mission(request: pytest.FixtureRequest, tmp_path: Path) -> MissionFixture:
    """Run missions inside a test: ``result = mission.run("missions/release.mission.yaml", vars={...})``."""
    return MissionFixture(request, tmp_path)


def _report_step(result: StepResult) -> None:
    from pytest_rustchain.model import StepStatus

    status = result.status
    if status is StepStatus.PASSED:
        return
    if status in (StepStatus.FAILED, StepStatus.BLOCKED):
        pytest.fail(result.reason, pytrace=False)
    if status is StepStatus.TOLERATED:
        pytest.xfail(result.reason)
    pytest.skip(result.reason)


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> Generator[None, None, None]:
    # A broken mission file must never disappear behind -m: it is a failed mission.
    if not config.getoption("markexpr", ""):
        return (yield)
    broken = {id(i) for i in items if isinstance(i, MissionItem) and i.load_error is not None}
    if not broken:
        return (yield)
    positions = [(n, i) for n, i in enumerate(items) if id(i) in broken]
    items[:] = [i for i in items if id(i) not in broken]
    try:
        return (yield)
    finally:
        for n, item in positions:
            items.insert(min(n, len(items)), item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if not isinstance(item, MissionItem):
        return report
    step = item.current_step
    if step is None:
        # Marks the mission's own reports (not its steps'), so the reporter also counts missions that
        # have no result: a broken file, a setup error, a skipped mission.
        report.mission_name = item.mission.name if item.mission is not None else item.name  # type: ignore[attr-defined]
    where = (step.source or item.display_path, step.line) if step is not None else item.current_where
    if where is not None and report.skipped and isinstance(report.longrepr, tuple):
        # Point a step's (or the judge's) skip at its YAML line, so -rs lists each reason where it is.
        report.longrepr = (where[0], where[1], report.longrepr[2])
    if call.when == "call" and step is None and item.dry_rows is not None:
        report.mission_dry_run = {"path": item.display_path, "name": item.name, "rows": item.dry_rows}  # type: ignore[attr-defined]
    if call.when == "call" and step is None and item.result is not None:
        # Plain builtin data crosses xdist intact; the controller aggregates it.
        from pytest_rustchain.graph import add_dependencies

        data = item.result.to_dict()
        if item.trajectory_files is not None:
            data["trajectories"] = item.trajectory_files
        report.mission = add_dependencies(data, item.mission) if item.mission is not None else data  # type: ignore[attr-defined]
    return report


class _DryRunTable:
    """Collects dry-run verdicts from the mission reports (also from xdist workers) and prints them."""

    def __init__(self) -> None:
        self.missions: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "mission_dry_run", None)
        if isinstance(data, dict) and report.when == "call":
            self.missions.append(data)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.missions:
            return
        tr = terminalreporter
        tr.write_sep("=", "mission dry run")
        for data in sorted(self.missions, key=lambda d: d["path"]):
            tr.write_line(f"{data['path']}::{data['name']}")
            for row in data["rows"]:
                rules = ",".join(row["rules"]) or "-"
                line = f"  {row['verdict']:8} risk {row['risk']:>3}  {row['step']:24} {row['type']:14} {rules}"
                if row["depends_on"]:
                    line += f"  after: {'; '.join(row['depends_on'])}"
                tr.write_line(line)
