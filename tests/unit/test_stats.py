"""The reliability numbers: Wilson intervals, pass@k, pass^k, flakiness and the rustchain reward."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_rustchain import stats


@pytest.mark.parametrize(
    ("passed", "total", "low", "high"),
    [(5, 5, 0.566, 1.000), (17, 20, 0.640, 0.948), (0, 5, 0.000, 0.434), (1, 2, 0.095, 0.905), (10, 10, 0.722, 1.0)],
)
def test_wilson_known_values(passed: int, total: int, low: float, high: float) -> None:
    """Wilson 95% intervals match published values (five green runs show only >= 57%)."""
    bounds = stats.wilson(passed, total)
    assert bounds is not None
    assert round(bounds[0], 3) == low
    assert round(bounds[1], 3) == high


def test_wilson_without_runs_is_none() -> None:
    """No runs give no interval, never a made-up one."""
    assert stats.wilson(0, 0) is None


@pytest.mark.parametrize(("passed", "total"), [(-1, 3), (4, 3), (0, -1)])
def test_counts_that_are_not_counts_are_refused(passed: int, total: int) -> None:
    """Impossible counts raise a clear error instead of producing a number."""
    with pytest.raises(ValueError, match="not a count"):
        stats.wilson(passed, total)


def test_pass_at_k_and_pass_hat_k_known_values() -> None:
    """6 passes of 10 give pass@2 0.867 and pass^2 0.333 (the unbiased estimators)."""
    at = stats.pass_at_k(6, 10, 2)
    hat = stats.pass_hat_k(6, 10, 2)
    assert at is not None
    assert hat is not None
    assert round(at, 3) == 0.867
    assert round(hat, 3) == 0.333
    assert stats.pass_at_k(6, 10, 1) == pytest.approx(0.6)
    assert stats.pass_hat_k(6, 10, 1) == pytest.approx(0.6)
    assert stats.pass_at_k(6, 10, 5) == 1.0  # only 4 failures: any 5 runs include a pass


def test_pass_at_k_beyond_the_runs_is_unknown() -> None:
    """Asking for more runs than were measured gives no estimate, and k < 1 is an error."""
    assert stats.pass_at_k(3, 3, 4) is None
    assert stats.pass_hat_k(3, 3, 4) is None
    with pytest.raises(ValueError, match="k >= 1"):
        stats.pass_at_k(1, 3, 0)


def test_reliability_summary_of_outcomes() -> None:
    """A list of outcomes gives k/n, its interval, pass@k and pass^k at k = repeats, and flakiness."""
    rel = stats.reliability([True, False, True, True, True])
    data = rel.to_dict()
    assert data["passed"] == 4
    assert data["total"] == 5
    assert data["rate"] == pytest.approx(0.8)
    assert data["k"] == 5
    assert data["pass_at_k"] == 1.0
    assert data["pass_hat_k"] == 0.0
    assert data["flaky"] is True
    interval = data["interval"]
    assert isinstance(interval, list)
    assert round(interval[0], 3) == 0.376
    assert not stats.reliability([True, True]).flaky
    assert not stats.reliability([False, False]).flaky
    empty = stats.reliability([]).to_dict()
    assert empty["rate"] is None
    assert empty["interval"] is None
    assert empty["pass_at_k"] is None


def test_reward_weights() -> None:
    """The rustchain reward is 0.5 success + 0.3 efficiency + 0.2 quality and refuses terms outside [0, 1]."""
    assert stats.rustchain_reward(success=1, efficiency=1, quality=1) == pytest.approx(1.0)
    assert stats.rustchain_reward(success=0.8, efficiency=0.5, quality=0.25) == pytest.approx(0.4 + 0.15 + 0.05)
    with pytest.raises(ValueError, match="quality"):
        stats.rustchain_reward(success=1, efficiency=1, quality=7)


def test_efficiency_against_the_median() -> None:
    """Efficiency is median tool calls over the repeats / this run's, capped at 1; 1 without tool calls."""
    assert stats.efficiency(8, [4, 4, 8, 12, 6]) == pytest.approx(0.75)
    assert stats.efficiency(2, [4, 4, 8]) == 1.0
    assert stats.efficiency(0, [0, 0]) == 1.0


counts = st.integers(min_value=1, max_value=400).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


@given(counts)
def test_interval_is_within_unit_range_and_contains_the_rate(pair: tuple[int, int]) -> None:
    """Every interval lies in [0, 1] and contains the observed rate."""
    passed, total = pair
    bounds = stats.wilson(passed, total)
    assert bounds is not None
    low, high = bounds
    assert 0.0 <= low <= passed / total <= high <= 1.0


@given(counts, st.integers(min_value=2, max_value=6))
def test_interval_narrows_as_runs_grow(pair: tuple[int, int], factor: int) -> None:
    """The same rate measured over more runs gives a narrower interval."""
    passed, total = pair
    small = stats.wilson(passed, total)
    large = stats.wilson(passed * factor, total * factor)
    assert small is not None
    assert large is not None
    assert large[1] - large[0] < small[1] - small[0]


@given(counts)
def test_pass_at_k_grows_and_pass_hat_k_shrinks_with_k(pair: tuple[int, int]) -> None:
    """pass@k never falls as k grows, pass^k never rises, and both stay in [0, 1]."""
    passed, total = pair
    ks = range(1, min(total, 30) + 1)
    at = [stats.pass_at_k(passed, total, k) or 0.0 for k in ks]
    hat = [stats.pass_hat_k(passed, total, k) or 0.0 for k in ks]
    assert all(0 <= v <= 1 for v in at + hat)
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(at))
    assert all(a + 1e-12 >= b for a, b in itertools.pairwise(hat))
    assert at[0] == pytest.approx(passed / total)
