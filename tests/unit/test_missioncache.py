"""Unit tests: loaded missions kept between runs, read back only as the plugin's own data."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import pytest

from pytest_rustchain.errors import MissionError
from pytest_rustchain.loader import load_mission, load_self_contained
from pytest_rustchain.missioncache import MissionCache
from pytest_rustchain.model import Limits, LoadOptions, Mission

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "tests" / "fixtures" / "rustchain"


def _mission_files() -> list[tuple[Path, Path, bool]]:
    """(file, rootdir, compat) of every shipped mission and of the RustChain examples kept as fixtures."""
    found = [(p, ROOT, False) for p in sorted((ROOT / "missions").rglob("*.mission.yaml"))]
    found += [(p, EXAMPLES, True) for p in sorted(EXAMPLES.rglob("*.yaml"))]
    return found


def test_every_self_contained_shipped_mission_reads_back_equal(tmp_path: Path) -> None:
    """Each shipped mission and RustChain example that depends on its file alone is kept and read back
    equal to a fresh load; the ones that name other files are never kept."""
    cache = MissionCache(tmp_path)
    kept = others = 0
    for path, root, compat in _mission_files():
        options = LoadOptions(compat=compat, rootdir=root)
        display = str(path.relative_to(root))
        try:
            mission, self_contained = load_self_contained(path, display_path=display, options=options)
        except MissionError:
            continue  # an example that is not a mission: the loader explains it every time
        if not self_contained:
            others += 1
            continue
        key = cache.key(path, display, options)
        assert key is not None
        cache.put(key, mission)
        assert cache.get(key) == mission, path
        kept += 1
    assert kept >= 20
    assert others >= 1  # the project example seeds its workspace from a directory
    assert len(list(tmp_path.glob("*.pickle"))) == kept


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_other_files_make_a_mission_not_self_contained(tmp_path: Path) -> None:
    """extends, include, setup files, next missions and workspace copies depend on other files."""
    _write(tmp_path / "base.mission.yaml", "name: base\nsteps: [{id: a, step_type: noop}]\n")
    _write(tmp_path / "more.steps.yaml", "- {id: b, step_type: noop}\n")
    (tmp_path / "seed").mkdir()
    texts = {
        "extends": "name: c\nextends: base.mission.yaml\nsteps: [{id: b, step_type: noop}]\n",
        "include": "name: c\nsteps: [{include: more.steps.yaml}]\n",
        "next": "name: c\nsteps: [{id: b, step_type: noop}]\nnext_missions: [base.mission.yaml]\n",
        "copy": "name: c\nconfig: {workspace: {copy: seed}}\nsteps: [{id: b, step_type: noop}]\n",
        "alone": "name: c\nsteps: [{id: b, step_type: noop}]\n",
    }
    options = LoadOptions(rootdir=tmp_path)
    verdicts = {}
    for name, text in texts.items():
        path = _write(tmp_path / f"{name}.mission.yaml", text)
        verdicts[name] = load_self_contained(path, display_path=path.name, options=options)[1]
    assert verdicts == {"extends": False, "include": False, "next": False, "copy": False, "alone": True}


def test_key_follows_bytes_path_and_options(tmp_path: Path) -> None:
    """Changing one byte, the path or the options names another entry; the same file names the same one."""
    cache = MissionCache(tmp_path / "cache")
    path = _write(tmp_path / "a.mission.yaml", "name: a\nsteps: [{id: a, step_type: noop}]\n")
    options = LoadOptions(rootdir=tmp_path)
    first = cache.key(path, "a.mission.yaml", options)
    assert first is not None and first == cache.key(path, "a.mission.yaml", options)
    assert cache.key(path, "b.mission.yaml", options) != first
    assert cache.key(path, "a.mission.yaml", LoadOptions(rootdir=tmp_path, compat=True)) != first
    _write(path, "name: b\nsteps: [{id: a, step_type: noop}]\n")
    assert cache.key(path, "a.mission.yaml", options) != first


def test_no_key_for_what_the_loader_must_explain(tmp_path: Path) -> None:
    """A named pipe, a directory, a missing file and a file over the size limit get no entry: the
    loader reads them and says what is wrong (a pipe is never opened for a blocking read)."""
    cache = MissionCache(tmp_path / "cache")
    options = LoadOptions(rootdir=tmp_path, limits=Limits(max_file_bytes=64))
    fifo = tmp_path / "pipe.mission.yaml"
    os.mkfifo(fifo)
    folder = tmp_path / "dir.mission.yaml"
    folder.mkdir()
    big = _write(tmp_path / "big.mission.yaml", "name: big\n" + "# padding\n" * 20)
    for path in (fifo, folder, tmp_path / "missing.mission.yaml", big):
        assert cache.key(path, path.name, options) is None


class _Exploit:
    """A pickle that would run a shell command when loaded."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.canary}",)


def test_an_entry_that_would_run_code_is_refused(tmp_path: Path) -> None:
    """An entry planted in the cache that calls a function when unpickled is not run: the canary file
    stays absent and the entry counts as missing (the mission is loaded from its file)."""
    cache = MissionCache(tmp_path)
    canary = tmp_path / "canary"
    (tmp_path / "planted.pickle").write_bytes(pickle.dumps(_Exploit(canary)))
    (tmp_path / "builtin.pickle").write_bytes(pickle.dumps(print))
    assert cache.get("planted") is None
    assert cache.get("builtin") is None
    assert not canary.exists()


def test_damaged_or_foreign_entries_are_misses(tmp_path: Path) -> None:
    """A truncated entry, random bytes or a pickle of something other than a mission are misses."""
    path = _write(tmp_path / "a.mission.yaml", "name: a\nsteps: [{id: a, step_type: noop}]\n")
    mission = load_mission(path, options=LoadOptions(rootdir=tmp_path))
    cache = MissionCache(tmp_path)
    cache.put("good", mission)
    data = (tmp_path / "good.pickle").read_bytes()
    (tmp_path / "cut.pickle").write_bytes(data[: len(data) // 2])
    (tmp_path / "noise.pickle").write_bytes(os.urandom(200))
    (tmp_path / "list.pickle").write_bytes(pickle.dumps([1, 2]))
    assert isinstance(cache.get("good"), Mission)
    assert [cache.get(k) for k in ("cut", "noise", "list", "absent")] == [None, None, None, None]


def test_prune_removes_week_old_entries_and_stale_partial_files(tmp_path: Path) -> None:
    """Entries not read for a week and partial files of a killed run go; fresh entries stay."""
    old = time.time() - 8 * 24 * 3600
    for name in ("old.pickle", ".old.123.tmp"):
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (old, old))
    (tmp_path / "fresh.pickle").write_bytes(b"x")
    (tmp_path / ".fresh.456.tmp").write_bytes(b"x")
    MissionCache(tmp_path).prune()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".fresh.456.tmp", ".pruned", "fresh.pickle"]


def test_prune_reads_the_entries_at_most_once_a_day(tmp_path: Path) -> None:
    """A prune within a day of the last one removes nothing; one a day later removes the old entries."""
    cache = MissionCache(tmp_path)
    cache.prune()
    old = time.time() - 8 * 24 * 3600
    (tmp_path / "old.pickle").write_bytes(b"x")
    os.utime(tmp_path / "old.pickle", (old, old))
    cache.prune()
    assert (tmp_path / "old.pickle").exists()
    yesterday = time.time() - 25 * 3600
    os.utime(tmp_path / ".pruned", (yesterday, yesterday))
    cache.prune()
    assert not (tmp_path / "old.pickle").exists()


def test_reading_an_entry_keeps_it_alive(tmp_path: Path) -> None:
    """An entry read today survives the next prune even if it was written long ago."""
    path = _write(tmp_path / "a.mission.yaml", "name: a\nsteps: [{id: a, step_type: noop}]\n")
    cache = MissionCache(tmp_path / "c")
    (tmp_path / "c").mkdir()
    cache.put("k", load_mission(path, options=LoadOptions(rootdir=tmp_path)))
    old = time.time() - 8 * 24 * 3600
    os.utime(tmp_path / "c" / "k.pickle", (old, old))
    assert cache.get("k") is not None
    cache.prune()
    assert (tmp_path / "c" / "k.pickle").exists()


@pytest.mark.parametrize(
    "name", ["os.system", "pytest_rustchain.procs.run_process", "pytest_rustchain.model.mission_stem"]
)
def test_functions_are_not_found_even_in_the_plugin(tmp_path: Path, name: str) -> None:
    """Only classes of the mission model are built: a function, even one of the plugin's, is refused."""
    module, _, attr = name.rpartition(".")
    payload = f"c{module}\n{attr}\n.".encode()  # protocol 0: GLOBAL module attr, STOP
    (tmp_path / "fn.pickle").write_bytes(payload)
    assert MissionCache(tmp_path).get("fn") is None
