"""Aggregation of mission results across workers, the terminal section, the gate and report files."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
from collections.abc import Callable, Generator, Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

    from pytest_rustchain.history import Notice
    from pytest_rustchain.model import MissionResult
    from pytest_rustchain.summary import RunSummary, Threshold

# The reporter is registered in every run, also in runs without missions: the aggregation (summary,
# graph, model) and the run history are imported once there is a mission result or a file to write.

__all__ = ["MissionReporter", "add_options", "configure", "record_unfinished", "unconfigure"]

_REPORTER = pytest.StashKey["MissionReporter"]()
_MAX_WIDTH = 100
HISTORY_RUNS = 10
"""The default of ``mission_history_runs``: runs of each mission kept in the run history."""


def add_options(parser: pytest.Parser) -> None:
    """Register the reporting options (in the ``rustchain`` group)."""
    group = parser.getgroup("rustchain")
    group.addoption(
        "--mission-min-success-rate",
        metavar="R",
        default=None,
        help="Fail the run (exit code 1) when the overall step success rate is below R (0..1), "
        "even when every mission passed. Default: ini mission_min_success_rate.",
    )
    group.addoption(
        "--mission-gate-statistic",
        choices=("point", "wilson-lower"),
        default="point",
        help="What --mission-min-success-rate compares: point (default: the pooled step rate) or wilson-lower "
        "(its Wilson 95%% lower bound, so a few lucky runs cannot pass the gate).",
    )
    group.addoption(
        "--mission-report",
        metavar="PATH",
        default=None,
        help="Write a JSON report of every mission and step (schema: pytest_rustchain/schema/report.schema.json).",
    )
    group.addoption(
        "--mission-summary",
        metavar="PATH",
        default=None,
        help="Write the success rates as Markdown; also appended to $GITHUB_STEP_SUMMARY when set, and "
        "failed steps become ::error annotations when GITHUB_ACTIONS=true.",
    )
    group.addoption(
        "--mission-history",
        action="store_true",
        default=False,
        help="Print the run history of the selected missions (kept in pytest's cache): each run's rate and "
        "each step's outcomes. With --collect-only it prints the table without running anything.",
    )
    group.addoption(
        "--mission-html",
        metavar="PATH",
        default=None,
        help="Write one self-contained HTML page of every mission: dependency graph, steps, outputs.",
    )
    group.addoption(
        "--mission-graph",
        metavar="DIR",
        default=None,
        help="Write each mission's dependency graph to DIR as Mermaid (.mmd) and Graphviz DOT (.dot).",
    )
    parser.addini("mission_min_success_rate", "Least overall step success rate (0..1) for the run to pass.", default="")
    parser.addini(
        "mission_history_runs",
        "Runs of each mission kept in the run history (pytest's cache); 0 turns the history off.",
        default=str(HISTORY_RUNS),
    )


def _threshold(config: pytest.Config) -> Threshold | None:
    raw = config.getoption("mission_min_success_rate")
    source = "--mission-min-success-rate"
    if raw is None:
        raw = str(config.getini("mission_min_success_rate") or "").strip()
        source = "mission_min_success_rate"
        if not raw:
            return None
    from pytest_rustchain import summary

    try:
        return summary.parse_threshold(str(raw))
    except ValueError as exc:
        raise pytest.UsageError(f"{source}: {exc}") from None


def _path_option(config: pytest.Config, name: str) -> Path | None:
    raw = config.getoption(name)
    if not raw:
        return None
    path = Path(os.path.abspath(Path(str(raw)).expanduser()))  # noqa: PTH100 - keep symlinks as given
    if path.is_dir():
        flag = "--" + name.replace("_", "-")
        raise pytest.UsageError(f"{flag}={raw} is a directory\n  HINT: give a file name, e.g. {flag}={raw}/missions")
    return path


def _junit_path(config: pytest.Config) -> Path | None:
    """Where pytest writes ``--junitxml`` (computed as pytest does: from the invocation directory)."""
    raw = config.getoption("xmlpath", None)
    if not raw or hasattr(config, "workerinput"):
        return None
    return Path(os.path.normpath(os.path.abspath(os.path.expanduser(os.path.expandvars(str(raw))))))  # noqa: PTH100, PTH111


def _history_runs(config: pytest.Config) -> int:
    raw = str(config.getini("mission_history_runs")).strip()
    try:
        runs = int(raw)
    except ValueError:
        runs = -1
    if runs < 0:
        raise pytest.UsageError(
            f"mission_history_runs: {raw!r} is not a number of runs\n  HINT: write a whole number, e.g. "
            f"mission_history_runs = {HISTORY_RUNS} (0 turns the history off)"
        )
    return runs


def _dir_option(config: pytest.Config, name: str) -> Path | None:
    raw = config.getoption(name)
    if not raw:
        return None
    path = Path(os.path.abspath(Path(str(raw)).expanduser()))  # noqa: PTH100 - keep symlinks as given
    if path.exists() and not path.is_dir():
        flag = "--" + name.replace("_", "-")
        raise pytest.UsageError(f"{flag}={raw} is a file\n  HINT: give a directory, e.g. {flag}=graphs")
    return path


def configure(config: pytest.Config, *, safety: Callable[[], tuple[str, ...]] | tuple[str, ...] = ()) -> None:
    """Create and register the reporter (controller and workers); ``safety`` gives the lines that say
    the effective safety policy and where its settings came from (the JSON report's ``safety``),
    asked for when a report is written."""
    reporter = MissionReporter(
        config,
        safety=safety,
        threshold=_threshold(config),
        report_path=_path_option(config, "mission_report"),
        summary_path=_path_option(config, "mission_summary"),
        junit_path=_junit_path(config),
        html_path=_path_option(config, "mission_html"),
        graph_dir=_dir_option(config, "mission_graph"),
    )
    config.stash[_REPORTER] = reporter
    config.pluginmanager.register(reporter, "rustchain-reporter")


def unconfigure(config: pytest.Config) -> None:
    """Unregister the reporter."""
    reporter = config.stash.get(_REPORTER, None)
    if reporter is not None:
        del config.stash[_REPORTER]
        config.pluginmanager.unregister(reporter)


def record_unfinished(config: pytest.Config, nodeid: str, result: MissionResult) -> None:
    """A mission stopped by an interrupt (Ctrl-C, SIGTERM) has no pytest report; its result still
    goes into the section and the files, with every step it did not finish counted as not run."""
    reporter = config.stash.get(_REPORTER, None)
    if reporter is not None and reporter.active:
        from pytest_rustchain import summary

        reporter.names[nodeid] = result.name
        reporter.entries[nodeid] = summary.mission_entry(nodeid, result.to_dict())


def _one_line_failure(report: pytest.TestReport) -> None:
    """The mission's failure message (JUnit ``message=``, the short summary) becomes its first line,
    the roll-up; the full text stays where pytest shows it."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is None:
        return
    message = str(crash.message).removeprefix("Failed: ")
    first = message.split("\n", 1)[0].strip()
    if first:
        crash.message = first


def _failure_text(report: pytest.TestReport) -> str:
    # Not longreprtext: under xdist that starts with the worker's "[gw0] linux -- Python ..." line.
    return str(report.longrepr).strip() if report.longrepr is not None else ""


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):
        return str(longrepr[2]).removeprefix("Skipped: ")
    return _failure_text(report)


class MissionReporter:
    """Collects each mission's result from its report (so the numbers do not depend on which worker ran
    it), then prints the section, applies the gate and writes the files, on the controller only."""

    def __init__(
        self,
        config: pytest.Config,
        *,
        threshold: Threshold | None,
        report_path: Path | None,
        summary_path: Path | None,
        junit_path: Path | None = None,
        html_path: Path | None = None,
        graph_dir: Path | None = None,
        safety: Callable[[], tuple[str, ...]] | tuple[str, ...] = (),
    ) -> None:
        self.config = config
        self._safety = safety
        self.junit_path = junit_path
        self.durations: dict[str, dict[str, float]] = {}
        self.threshold = threshold
        self.report_path = report_path
        self.summary_path = summary_path
        self.html_path = html_path
        self.graph_dir = graph_dir
        self.worker = hasattr(config, "workerinput")
        # A dry run runs nothing, so it has no success rate and no gate.
        self.active = not self.worker and not config.getoption("mission_dry_run", False)
        self.github_actions = os.environ.get("GITHUB_ACTIONS") == "true"
        self._scrub: Callable[[str], str] | None = None
        self.entries: dict[str, dict[str, Any]] = {}
        self.names: dict[str, str] = {}
        self.started = time.monotonic()
        self.result: RunSummary | None = None
        self.gate: tuple[bool, str] | None = None
        self.written: list[tuple[str, Path]] = []
        self.problems: list[str] = []
        self.statistic = str(config.getoption("mission_gate_statistic", "point") or "point")
        self.trajectory_entries: list[dict[str, Any]] = []
        self._typed: dict[str, Any] = {}
        """nodeid -> the ``MissionResult`` whose data a call report carries, for missions run in this
        process (no xdist): the summary uses it as it is instead of rebuilding it from that data."""
        self.history_runs = _history_runs(config)
        self.show_history = bool(config.getoption("mission_history", False))
        self.selected: list[str] = []
        self.history: Any = None
        self.notices: list[Notice] = []

    @property
    def safety(self) -> list[str]:
        """The lines that say the effective safety policy (the header's, without "rustchain: ")."""
        return list(self._safety() if callable(self._safety) else self._safety)

    @property
    def scrub(self) -> Callable[[str], str]:
        """Masks what must not reach a report (and, on GitHub Actions, workflow commands)."""
        if self._scrub is None:
            from pytest_rustchain import summary

            self._scrub = summary.scrubber(github_actions=self.github_actions)
        return self._scrub

    def _summary(self) -> RunSummary:
        if self.result is None:
            from pytest_rustchain import summary

            self.result = summary.summarize(self.entries.values())
        return self.result

    # -- on the worker (or the only process) --------------------------------------------------------

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.when != "call" or getattr(report, "mission_name", None) is None:
            return report
        data = getattr(report, "mission", None)
        if report.failed:
            _one_line_failure(report)
        if isinstance(data, dict):
            risks = [s["risk"] for s in data.get("steps", ()) if isinstance(s.get("risk"), int)]
            if risks:
                item.user_properties.append(("risk_max", max(risks)))
            typed = getattr(item, "result", None)
            if self.active and typed is not None:
                self._typed[report.nodeid] = typed
        elif report.failed:
            # A mission that never ran (a broken file) still tells JUnit readers its numbers.
            have = {name for name, _ in item.user_properties}
            for name, value in (("mission_status", "error"), ("steps_total", 0), ("steps_passed", 0)):
                if name not in have:
                    item.user_properties.append((name, value))
            if "success_rate" not in have:
                item.user_properties.append(("success_rate", "n/a"))
        return report

    # -- on the controller --------------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not self.active or isinstance(report, pytest.SubtestReport):
            return
        nodeid = report.nodeid
        name = getattr(report, "mission_name", None)
        if name is not None:
            self.durations.setdefault(nodeid, {})[report.when] = report.duration
        if name is None:
            if report.when == "???" and report.failed and self._is_mission(nodeid):  # type: ignore[comparison-overlap]
                # A worker died while running it (pytest-xdist's report): its declared steps are lost.
                self.entries[nodeid] = self._lost_entry(nodeid, _failure_text(report))
            return
        from pytest_rustchain import summary

        self.names[nodeid] = str(name)
        if report.when == "setup":
            if report.skipped:
                self.entries[nodeid] = summary.skipped_entry(nodeid, name=str(name), reason=_skip_reason(report))
            elif report.failed:
                self.entries[nodeid] = summary.error_entry(
                    nodeid, name=str(name), message=_failure_text(report), duration=report.duration
                )
        elif report.when == "call":
            data = getattr(report, "mission", None)
            typed = self._typed.pop(nodeid, None)
            if isinstance(data, dict):
                self.entries[nodeid] = summary.mission_entry(nodeid, data, typed)
                files = data.get("trajectories")
                if isinstance(files, list):
                    self.trajectory_entries.extend(f for f in files if isinstance(f, dict))
            elif report.skipped:
                self.entries[nodeid] = summary.skipped_entry(nodeid, name=str(name), reason=_skip_reason(report))
            elif report.failed:
                self.entries[nodeid] = summary.error_entry(
                    nodeid, name=str(name), message=_failure_text(report), duration=report.duration
                )

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Under xdist the controller collects nothing; there the missions that report are the selection.
        self.selected = [item.nodeid for item in session.items if self._is_mission(item.nodeid)]

    def _lost_entry(self, nodeid: str, message: str) -> dict[str, Any]:
        """A mission whose worker died: every step it declares counts as ``lost`` (not passed)."""
        from pytest_rustchain import summary
        from pytest_rustchain.errors import MissionError
        from pytest_rustchain.loader import LoadOptions, load_mission
        from pytest_rustchain.runner import lost_result

        name = self.names.get(nodeid, _stem(nodeid))
        path = nodeid.split("::", 1)[0]
        rootdir = Path(self.config.rootpath)
        compat = str(self.config.getoption("mission_compat") or self.config.getini("mission_compat")) == "rustchain"
        try:
            mission = load_mission(
                rootdir / path, display_path=path, options=LoadOptions(compat=compat, rootdir=rootdir)
            )
        except (MissionError, OSError):
            return summary.error_entry(nodeid, name=name, message=message)
        return summary.mission_entry(nodeid, lost_result(mission, message).to_dict())

    def _is_mission(self, nodeid: str) -> bool:
        return nodeid in self.names or nodeid.split("::", 1)[0].endswith((".yaml", ".yml"))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.worker:
            return
        if not (self.entries or self.names or self.show_history or self._writes_files()):
            return  # no mission in this run and nothing to write: no gate, no history entry
        from pytest_rustchain import graph, summary

        result = self._summary()
        if self.threshold is not None and not result.empty:
            self.gate = summary.gate_line(result, self.threshold, self.statistic)
            if self.gate[0] and session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        self._keep_history(result)
        self._trajectory_index()
        document: dict[str, Any] = {}
        if self.report_path or self.summary_path or self.html_path or self.graph_dir:
            document = summary.report_document(
                result,
                created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                duration=time.monotonic() - self.started,
                exit_status=int(session.exitstatus),
                threshold=self.threshold,
                statistic=self.statistic,
                versions=_versions(),
                safety=self.safety,
                scrub=self.scrub,
            )
        if self.report_path is not None:
            self._write("mission report", self.report_path, json.dumps(document, ensure_ascii=False) + "\n")
        if self.html_path is not None:
            from pytest_rustchain import history, htmlreport

            page = htmlreport.render(document, history=history.missions_of(self.history))
            self._write("mission HTML report", self.html_path, page)
        if self.graph_dir is not None:
            self._write_graphs(self.graph_dir, document["missions"])
        if self.summary_path is not None:
            text = summary.markdown(result, threshold=self.threshold, scrub=self.scrub, statistic=self.statistic)
            text += graph.markdown_graphs(document["missions"])
            self._write("mission summary", self.summary_path, text)
            step_summary = os.environ.get("GITHUB_STEP_SUMMARY", "")
            if step_summary and not result.empty:
                try:
                    with Path(step_summary).open("a", encoding="utf-8") as stream:
                        stream.write(text + "\n")
                except OSError as exc:
                    self.problems.append(f"could not append to GITHUB_STEP_SUMMARY {step_summary}: {exc}")
        if self.junit_path is not None and self.names and self.junit_path.is_file():
            self._fix_junit(self.junit_path)
        if self.problems and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _writes_files(self) -> bool:
        return bool(
            self.report_path
            or self.summary_path
            or self.html_path
            or self.graph_dir
            or (self.active and self.config.getoption("mission_trajectories", None))
        )

    def _fix_junit(self, path: Path) -> None:
        """Make pytest's JUnit XML (written just before this hook, trylast) read right in JUnit readers.

        Subtests add a ``<skipped>`` element for every tolerated or skipped step, and readers such as
        junitparser call a testcase with any ``<skipped>`` child skipped, also a passed or failed
        mission. Those elements move into the testcase's ``<system-out>``; the step failures of a
        failed mission stay. A testcase's time becomes the mission's own (subtests add theirs again).
        """
        import xml.etree.ElementTree as ET

        try:
            tree = ET.parse(path)  # noqa: S314 - the file pytest wrote in this run
        except (OSError, ET.ParseError) as exc:
            self.problems.append(f"could not read the JUnit XML {path}: {exc}")
            return
        prefix = self.config.getoption("junitprefix", None)
        by_case: dict[tuple[str, str], str] = {}
        for nodeid in self.names:
            by_case[_junit_names(nodeid, prefix)] = nodeid
        duration_of = str(self.config.getini("junit_duration_report") or "total")
        changed = False
        for suite in tree.getroot().iter("testsuite"):
            for case in suite.iter("testcase"):
                found = by_case.get((case.get("classname", ""), case.get("name", "")))
                if found is None:
                    continue
                changed = True
                _fix_testcase(case, self.entries.get(found))
                times = self.durations.get(found, {})
                if times:
                    total = times.get("call", 0.0) if duration_of == "call" else sum(times.values())
                    case.set("time", f"{total:.3f}")
            _recount(suite)
        if changed:
            text = '<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(tree.getroot(), encoding="unicode")
            self._write("JUnit XML", path, text, announce=False)

    def _trajectory_index(self) -> None:
        """``DIR/index.json`` (and the chat-JSONL export), written here on the controller only."""
        raw = self.config.getoption("mission_trajectories", None)
        if not raw or not self.active:
            return
        from pytest_rustchain import trajectory

        directory = Path(os.path.abspath(Path(str(raw)).expanduser()))  # noqa: PTH100
        entries = sorted(self.trajectory_entries, key=lambda e: (str(e.get("nodeid")), int(e.get("repeat", 0))))
        try:
            path = trajectory.write_index(directory, entries)
        except OSError as exc:
            self.problems.append(f"could not write the trajectory index {directory / 'index.json'}: {exc}")
            return
        self.written.append(("trajectories", path))
        if self.config.getoption("mission_export", None) == "chat-jsonl" and entries:
            lines: list[str] = []
            try:
                for entry in entries:
                    events = list(trajectory.read_events(directory / str(entry["file"])))
                    for line in trajectory.chat_lines(events, reward=entry.get("reward")):
                        line["metadata"].update(mission=entry.get("mission"), repeat=entry.get("repeat"))
                        lines.append(json.dumps(line, ensure_ascii=False))
            except (OSError, ValueError) as exc:
                self.problems.append(f"could not build the chat-jsonl export: {exc}")
                return
            run_id = str(entries[0].get("run_id", "run"))
            self._write("chat-jsonl export", directory / f"{run_id}.chat.jsonl", "".join(x + "\n" for x in lines))

    def _keep_history(self, result: RunSummary) -> None:
        """Append this run to the history in pytest's cache (the controller is the only writer)."""
        cache = getattr(self.config, "cache", None)
        if cache is None or self.history_runs == 0:
            return  # -p no:cacheprovider, or turned off: no history, quietly
        if not self.active or result.empty:
            return  # nothing to add; the history table, when asked for, reads the history itself
        from pytest_rustchain import history

        previous = self._read_history(cache)
        when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        current = history.update(previous, result.missions, keep=self.history_runs, when=when)
        self._write_history(cache, current)
        self.history = current
        self.notices = history.notices(previous, current, [m["nodeid"] for m in result.missions])

    @staticmethod
    def _read_history(cache: pytest.Cache) -> Any:
        """The kept runs: a compact JSON file in pytest's cache directory (or, from older versions, the
        ``rustchain/history`` cache value); None when there is none or it cannot be read."""
        from pytest_rustchain import history

        try:
            with (cache.mkdir(history.CACHE_DIR) / history.CACHE_FILE).open(encoding="utf-8") as stream:
                return json.load(stream)
        except FileNotFoundError:
            return cache.get(history.CACHE_KEY, None)
        except (OSError, ValueError):
            return None

    def _write_history(self, cache: pytest.Cache, value: Any) -> None:
        """Compact JSON, written through a temporary file: pytest's own ``cache.set`` indents its JSON,
        which takes a noticeable part of a second for the history of a thousand missions."""
        from pytest_rustchain import history

        try:
            directory = cache.mkdir(history.CACHE_DIR)
        except OSError as exc:
            self.problems.append(f"could not keep the run history: {exc}")
            return
        self._write(
            "run history", directory / history.CACHE_FILE, json.dumps(value, separators=(",", ":")), announce=False
        )

    def _write_graphs(self, directory: Path, missions: list[dict[str, Any]]) -> None:
        from pytest_rustchain import graph

        try:
            written = graph.write_graphs(missions, directory)
        except OSError as exc:
            self.problems.append(f"could not write the mission graphs to {directory}: {exc}")
        else:
            if written:
                self.written.append((f"mission graphs ({len(written) // 2})", directory))

    def _write(self, what: str, path: Path, text: str, *, announce: bool = True) -> None:
        """Write through a temporary file renamed into place: a reader never sees half a report."""
        tmp: Path | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            tmp = Path(name)
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                stream.write(text)
            tmp.chmod(0o644)
            tmp.replace(path)
        except OSError as exc:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            self.problems.append(f"could not write the {what} {path}: {exc}")
        else:
            if announce:
                self.written.append((what, path))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> Generator[None, None, None]:
        # A wrapper that writes after pytest's own summary (failures, short test summary info), so
        # the success rates and the gate sit just above the final counts line.
        result = yield
        if not self.worker:
            self._terminal(terminalreporter)
        return result

    def _terminal(self, tr: pytest.TerminalReporter) -> None:
        result = self._summary() if self.entries or self.show_history else None
        quiet = tr.verbosity < 0
        if result is not None and not result.empty:
            from pytest_rustchain import summary

            if quiet:
                tr.write_line(summary.quiet_line(result))
            else:
                tr.write_sep("=", "mission success rates")
                width = min(self.config.get_terminal_writer().fullwidth, _MAX_WIDTH)
                for line in summary.terminal_lines(result, verbosity=tr.verbosity, width=width, scrub=self.scrub):
                    tr.write_line(line)
            for notice in self.notices:
                if notice.regression or not quiet:
                    text = self.scrub(f"{notice.nodeid}: {notice.text}")
                    tr.write_line(text, red=notice.regression, bold=notice.regression, yellow=not notice.regression)
            if self.gate is not None and (self.gate[0] or not quiet):
                below, line = self.gate
                tr.write_line(line, red=below, bold=below, green=not below)
        if self.show_history and result is not None:
            self._history_table(tr, result)
        if not quiet:
            for what, path in self.written:
                tr.write_line(f"{what}: {path}")
        for problem in self.problems:
            tr.write_line(problem, red=True, bold=True)
        if self.github_actions and self.summary_path is not None and result is not None and not result.empty:
            from pytest_rustchain import summary

            for line in summary.workflow_annotations(result, file_for=self._file_for, scrub=self.scrub):
                tr.write_line(line)

    def _history_table(self, tr: pytest.TerminalReporter, result: RunSummary) -> None:
        tr.write_sep("=", "mission history")
        if getattr(self.config, "cache", None) is None:
            tr.write_line("run history is off: pytest's cache provider is disabled (-p no:cacheprovider)")
            return
        if self.history_runs == 0:
            tr.write_line("run history is off: mission_history_runs = 0")
            return
        nodeids = [*self.selected, *(m["nodeid"] for m in result.missions)]
        if self.history is None:
            self.history = self._read_history(self.config.cache)
        if not nodeids:
            tr.write_line("no missions selected")
            return
        from pytest_rustchain import history

        for line in history.table_lines(self.history, nodeids, scrub=self.scrub):
            tr.write_line(line)

    def _file_for(self, path: str) -> str:
        """A mission path as GitHub wants it: relative to the checkout (``GITHUB_WORKSPACE``)."""
        full = Path(self.config.rootpath, path)
        base = os.environ.get("GITHUB_WORKSPACE", "")
        if base:
            try:
                return full.resolve().relative_to(Path(base).resolve()).as_posix()
            except ValueError:
                pass
        return path


def _junit_names(nodeid: str, prefix: str | None) -> tuple[str, str]:
    """The ``classname`` and ``name`` pytest's JUnit XML gives the item ``nodeid``."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = names[0].replace("/", ".").removesuffix(".py")
    names[-1] += bracket + params
    classnames = names[:-1]
    if prefix:
        classnames.insert(0, prefix)
    return ".".join(classnames), names[-1]


def _step_notes(entry: Mapping[str, Any] | None) -> list[str]:
    """One paragraph per step that neither passed nor failed the mission: tolerated or skipped."""
    notes: list[str] = []
    for step in (entry or {}).get("steps", ()):
        status = step.get("status")
        reason = str(step.get("reason", "")).strip()
        if status == "tolerated":
            notes.append(reason)
        elif status == "skipped":
            counted = "" if step.get("counted") else " (not counted)"
            notes.append(f"step '{step.get('id')}' ({step.get('type')}) skipped{counted}: {reason}")
    return notes


def _fix_testcase(case: ET.Element, entry: Mapping[str, Any] | None) -> None:
    """Move the step elements that are not the testcase's result into ``<system-out>``."""
    status = next((p.get("value") for p in case.iter("property") if p.get("name") == "mission_status"), None)
    results = [e for e in case if e.tag in ("skipped", "failure", "error")]
    for element in results:
        # A step's failure text is the element's text; its message is the headline, not a second copy.
        message = element.get("message")
        if element.tag == "failure" and message and "\n" in message:
            element.set("message", message.split("\n", 1)[0].removeprefix("Failed: "))
    if status == "xfailed":
        # The mission's own expected failure comes last; what its steps added before it is not the result.
        own = [e for e in results if e.tag == "skipped" and e.get("type") == "pytest.xfail"]
        moving = [e for e in results if e.tag != "error" and (not own or e is not own[-1])]
    else:
        moving = [e for e in results if e.tag == "skipped"]
    if not moving:
        return
    for element in moving:
        case.remove(element)
    notes = _step_notes(entry) or [(e.get("message") or e.text or "").strip() for e in moving]
    out = case.find("system-out")
    if out is None:
        import xml.etree.ElementTree as ET

        out = ET.SubElement(case, "system-out")
    out.text = "\n\n".join(p for p in ("\n\n".join(notes), out.text or "") if p)


def _recount(suite: ET.Element) -> None:
    """The suite's counts are of testcases, each counted once by its result, as JUnit readers count."""
    failures = errors = skipped = tests = 0
    for case in suite.iter("testcase"):
        tests += 1
        tags = {e.tag for e in case}
        if "error" in tags:
            errors += 1
        elif "failure" in tags:
            failures += 1
        elif "skipped" in tags:
            skipped += 1
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))


def _stem(nodeid: str) -> str:
    return nodeid.rsplit("::", 1)[-1]


def _versions() -> dict[str, str]:
    try:
        own = metadata.version("pytest-rustchain")
    except metadata.PackageNotFoundError:
        own = "unknown"
    return {"pytest": pytest.__version__, "pytest-rustchain": own}
