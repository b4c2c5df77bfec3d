"""Unit tests of matrix expansion: order, ids, exclude, include, limits and the errors of each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_rustchain.errors import MissionFormatError
from pytest_rustchain.loader import load_mission
from pytest_rustchain.matrix import MAX_COMBINATIONS, MatrixError, expand, item_id, value_text
from pytest_rustchain.yamlload import load_yaml_text


def _ids(raw: dict[str, Any]) -> list[str]:
    return [c.id for c in expand(raw)]


def test_product_in_stable_order_first_axis_slowest() -> None:
    """Combinations come in the order GitHub runs them: the first axis varies slowest."""
    assert _ids({"os": ["linux", "mac"], "python": ["3.11", "3.12"]}) == [
        "os=linux-python=3.11",
        "os=linux-python=3.12",
        "os=mac-python=3.11",
        "os=mac-python=3.12",
    ]


def test_values_keep_their_types_and_ids_show_yaml_spelling() -> None:
    """A number stays a number and a boolean a boolean in the values; ids write booleans as YAML does."""
    (one, two) = expand({"debug": [True, False], "n": [3]})
    assert dict(one.values) == {"debug": True, "n": 3}
    assert (one.id, two.id) == ("debug=true-n=3", "debug=false-n=3")
    assert value_text(False) == "false"


def test_ids_replace_characters_that_node_ids_and_file_names_cannot_hold() -> None:
    """Spaces, slashes, brackets and '::' in a value become '_' in the id; '.', '+', '-' stay."""
    assert item_id({"t": "nightly/2024 [x]::y", "c": "c++-1.0"}, ["t", "c"]) == "t=nightly_2024__x___y-c=c++-1.0"


def test_exclude_removes_partial_matches() -> None:
    """An exclude entry naming some axes removes every combination with those values."""
    raw = {"os": ["linux", "mac"], "python": ["3.11", "3.12"], "exclude": [{"os": "mac"}]}
    assert _ids(raw) == ["os=linux-python=3.11", "os=linux-python=3.12"]


def test_exclude_compares_values_as_text() -> None:
    """exclude: {n: "1"} removes the combination n=1 written as a number (values compare as text)."""
    assert _ids({"n": [1, 2], "exclude": [{"n": "1"}]}) == ["n=2"]


def test_include_extends_matching_combinations_and_adds_new_ones() -> None:
    """GitHub's include: extra keys join the combinations whose axis values match; an entry that
    matches none (or would change an axis value) becomes a combination of its own."""
    raw = {
        "python": ["3.11", "3.12"],
        "include": [
            {"python": "3.12", "experimental": True},
            {"python": "3.13", "os": "windows"},
            {"note": "all"},
        ],
    }
    combos = expand(raw)
    assert [c.id for c in combos] == ["python=3.11", "python=3.12", "python=3.13-os=windows"]
    assert dict(combos[0].values) == {"python": "3.11", "note": "all"}
    assert dict(combos[1].values) == {"python": "3.12", "experimental": True, "note": "all"}
    assert dict(combos[2].values) == {"python": "3.13", "os": "windows"}


def test_include_only_matrix() -> None:
    """A matrix of include entries alone makes one combination per entry."""
    assert _ids({"include": [{"os": "linux"}, {"os": "mac", "arch": "arm64"}]}) == ["os=linux", "os=mac-arch=arm64"]


@pytest.mark.parametrize(
    ("raw", "what", "hint"),
    [
        ({"include": []}, "the matrix has no axes", "give at least one axis"),
        ({"a": [1], "exclude": [{"b": 1}]}, "names 'b', which is not an axis", "axes: a"),
        ({"python": [1], "exclude": [{"pyton": 1}]}, "not an axis", "did you mean 'python'?"),
        ({"a": [1, 2], "exclude": [{"a": 3}]}, "a: 3 is not a value of the axis a", "the values of a are: 1, 2"),
        ({"a": [1], "exclude": [{"a": 1}]}, "removes every combination", "remove an exclude entry"),
        ({"a": ["x y", "x_y"]}, "the same id 'a=x_y'", "other characters become '_'"),
        ({"a": [1], "include": [{"a": 2}, {"a": 2}]}, "include entry 2 repeats an earlier include entry", "remove"),
        ({"a": list(range(17)), "b": list(range(16))}, "272 combinations (17 a x 16 b)", "drop values or axes"),
        ({"a": list(range(256)), "b": list(range(256))}, "65,536 combinations", "exclude"),
    ],
)
def test_expansion_errors(raw: dict[str, Any], what: str, hint: str) -> None:
    """Each matrix that cannot be expanded says what is wrong, where, and how to fix it."""
    with pytest.raises(MatrixError) as info:
        expand(raw)
    assert what in info.value.what
    assert hint in info.value.hint
    assert info.value.where[0] == "matrix"


def test_limit_is_256_combinations() -> None:
    """256 combinations are allowed, 257 are not."""
    assert MAX_COMBINATIONS == 256
    assert len(expand({"a": list(range(16)), "b": list(range(16))})) == 256
    with pytest.raises(MatrixError):
        expand({"a": list(range(16)), "b": list(range(16)), "include": [{"a": 99}]})


def test_yaml_float_with_trailing_zero_is_noted() -> None:
    """3.10 loads as 3.1: the loader notes it, so a matrix can refuse it with a quote-it hint."""
    loaded = load_yaml_text(b"v: [3.10, 3.11, 1.0]\n", path="m.yaml")
    assert loaded.data == {"v": [3.1, 3.11, 1.0]}
    assert loaded.yaml11_surprises == {("v", 0): "the number 3.1 ('3.10' loses its trailing zero)"}


def test_loader_points_at_the_matrix_value(tmp_path: Path) -> None:
    """A malformed matrix is a format error at its file:line:col with a HINT."""
    path = tmp_path / "m.mission.yaml"
    path.write_text("name: m\nmatrix:\n  python: [3.10]\nsteps:\n  - {id: a, step_type: noop}\n")
    with pytest.raises(MissionFormatError) as info:
        load_mission(path, display_path="m.mission.yaml")
    text = str(info.value)
    assert text.startswith("m.mission.yaml:3:12: matrix value read as the number 3.1")
    assert 'HINT: quote the value to keep it as text: python: ["3.10"]' in text


def test_loaded_mission_holds_its_combinations(tmp_path: Path) -> None:
    """load_mission returns the combinations; a mission without a matrix has none."""
    path = tmp_path / "m.mission.yaml"
    path.write_text('name: m\nmatrix: {python: ["3.11", "3.12"]}\nsteps:\n  - {id: a, step_type: noop}\n')
    assert [c.id for c in load_mission(path).matrix] == ["python=3.11", "python=3.12"]
    path.write_text("name: m\nsteps:\n  - {id: a, step_type: noop}\n")
    assert load_mission(path).matrix == ()


def test_rejudge_finds_the_stored_run_of_its_own_combination() -> None:
    """--mission-rejudge gives a matrix item the stored repeats of its own combination, never another's."""
    from pytest_rustchain.rejudge import find_run

    def entry(ident: str, repeat: int) -> dict[str, Any]:
        return {
            "nodeid": f"m/ci.mission.yaml::ci[{ident}]",
            "path": "m/ci.mission.yaml",
            "run_id": "r",
            "repeat": repeat,
        }

    entries = [entry("python=3.11", 1), entry("python=3.12", 1), entry("python=3.11", 2)]
    found = find_run(entries, nodeid="m/ci.mission.yaml::ci[python=3.11]", path="m/ci.mission.yaml")
    assert found is not None
    assert [(e["nodeid"], e["repeat"]) for e in found.entries] == [
        ("m/ci.mission.yaml::ci[python=3.11]", 1),
        ("m/ci.mission.yaml::ci[python=3.11]", 2),
    ]
    moved = find_run(entries, nodeid="ci.mission.yaml::ci[python=3.12]", path="m/ci.mission.yaml")
    assert moved is not None
    assert [e["nodeid"] for e in moved.entries] == ["m/ci.mission.yaml::ci[python=3.12]"]


def test_run_mission_runs_the_combination_it_is_given(tmp_path: Path) -> None:
    """run_mission(matrix={...}) runs that combination (matrix.x and vars.x); without one it says which exist."""
    from pytest_rustchain.api import run_mission

    path = tmp_path / "m.mission.yaml"
    path.write_text(
        'name: m\nmatrix: {python: ["3.11", "3.12"], os: [linux]}\nsteps:\n'
        '  - {id: a, step_type: noop, expect: {output: {message: "3.12"}},'
        ' parameters: {message: "{{ matrix.python }}"}}\n'
        '  - {id: b, step_type: noop, parameters: {message: "{{ vars.python }}"},'
        ' expect: {output: {message: "3.12"}}}\n'
    )
    result = run_mission(path, rootdir=tmp_path, matrix={"python": "3.12"})
    assert result.passed, result.message
    assert dict(result.matrix) == {"python": "3.12", "os": "linux"}
    with pytest.raises(MatrixError) as info:
        run_mission(path, rootdir=tmp_path)
    assert "the mission has a matrix; say which combination to run" in str(info.value)
    assert "HINT: pass matrix={'python': '3.11', 'os': 'linux'}" in str(info.value)
    with pytest.raises(MatrixError, match=r"matches no combination\n  HINT: combinations: python=3.11-os=linux"):
        run_mission(path, rootdir=tmp_path, matrix={"python": "3.9"})
