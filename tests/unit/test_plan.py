"""Unit tests of the planner: run order and cycles."""

from __future__ import annotations

from pytest_rustchain.model import Step
from pytest_rustchain.plan import find_cycle, order


def _step(sid: str, *deps: str) -> Step:
    return Step(id=sid, name=sid, step_type="noop", parameters={}, depends_on=deps)


def test_file_order_among_ready_steps() -> None:
    """Steps without dependencies run in file order."""
    steps = [_step("c"), _step("a"), _step("b")]
    assert [s.id for s in order(steps)] == ["c", "a", "b"]


def test_dependency_moves_step_after_its_dependency() -> None:
    """A step declared first but depending on a later one runs after it, and no later than needed."""
    steps = [_step("deploy", "build"), _step("build"), _step("docs")]
    assert [s.id for s in order(steps)] == ["build", "deploy", "docs"]


def test_order_is_stable_across_runs() -> None:
    """The same mission gives the same order every time."""
    steps = [_step(f"s{i}", *([f"s{i - 3}"] if i >= 3 else [])) for i in range(30)]
    first = [s.id for s in order(steps)]
    assert all([s.id for s in order(steps)] == first for _ in range(5))


def test_cycle_is_printed_as_chain() -> None:
    """A cycle is reported as a -> b -> c -> a."""
    steps = [_step("a", "c"), _step("b", "a"), _step("c", "b"), _step("d")]
    cycle = find_cycle(steps)
    assert cycle is not None
    assert cycle[0] == cycle[-1]
    assert set(cycle) == {"a", "b", "c"}


def test_self_dependency_is_a_cycle() -> None:
    """depends_on: [self] is a cycle of one."""
    assert find_cycle([_step("a", "a")]) == ["a", "a"]


def test_no_cycle() -> None:
    """A diamond is not a cycle."""
    assert find_cycle([_step("a"), _step("b", "a"), _step("c", "a"), _step("d", "b", "c")]) is None
