"""Reliability arithmetic over repeated runs: Wilson intervals, pass@k and pass^k, flakiness, reward."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "CONFIDENCE",
    "Reliability",
    "efficiency",
    "flaky",
    "pass_at_k",
    "pass_hat_k",
    "reliability",
    "rustchain_reward",
    "wilson",
]

CONFIDENCE = 0.95
_Z: dict[float, float] = {}


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"a confidence level is between 0 and 1, not {confidence!r}")
    z = _Z.get(confidence)
    if z is None:
        import statistics  # loaded when a repeated mission is first scored, not in every run

        z = _Z[confidence] = statistics.NormalDist().inv_cdf(0.5 + confidence / 2)
    return z


def _check(passed: int, total: int) -> None:
    if total < 0 or not 0 <= passed <= total:
        raise ValueError(f"{passed} passes of {total} runs is not a count: need 0 <= passed <= total")


def wilson(passed: int, total: int, *, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The Wilson score interval of ``passed/total`` (None without runs).

    Unlike the normal approximation it never leaves [0, 1] and does not collapse to a point at 0/n or
    n/n: five passes of five give [0.566, 1.000], the honest statement of what five green runs show.
    """
    _check(passed, total)
    if total == 0:
        return None
    z = _z(confidence)
    z2 = z * z
    p = passed / total
    denominator = 1 + z2 / total
    centre = (p + z2 / (2 * total)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total))
    # At p = 0 or 1 the bound is exactly 0 or 1; rounding must not put it a hair outside or inside.
    low = 0.0 if passed == 0 else max(0.0, centre - half)
    high = 1.0 if passed == total else min(1.0, centre + half)
    return low, high


def pass_at_k(passed: int, total: int, k: int) -> float | None:
    """Chance that at least one of ``k`` runs drawn from these ``total`` passes: ``1 - C(n-c,k)/C(n,k)``.

    The unbiased estimator (Chen et al. 2021); None when ``k`` exceeds the runs measured.
    """
    _check(passed, total)
    if k < 1:
        raise ValueError(f"pass@k needs k >= 1, not {k}")
    if k > total:
        return None
    return 1 - math.comb(total - passed, k) / math.comb(total, k)


def pass_hat_k(passed: int, total: int, k: int) -> float | None:
    """Chance that all of ``k`` runs drawn from these ``total`` pass (pass^k): ``C(c,k)/C(n,k)``.

    None when ``k`` exceeds the runs measured.
    """
    _check(passed, total)
    if k < 1:
        raise ValueError(f"pass^k needs k >= 1, not {k}")
    if k > total:
        return None
    return math.comb(passed, k) / math.comb(total, k)


def flaky(passed: int, total: int) -> bool:
    """Both passed and failed among the runs."""
    _check(passed, total)
    return 0 < passed < total


@dataclass(frozen=True, slots=True, kw_only=True)
class Reliability:
    """What ``passed`` of ``total`` runs say: the rate, its 95% interval, pass@k, pass^k and flakiness."""

    passed: int
    total: int
    k: int
    """The k of the headline pass@k and pass^k (at most ``total``); ``to_dict`` also gives every k."""

    @property
    def rate(self) -> float | None:
        return None if self.total == 0 else self.passed / self.total

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.passed, self.total)

    @property
    def low(self) -> float | None:
        bounds = self.interval
        return None if bounds is None else bounds[0]

    @property
    def high(self) -> float | None:
        bounds = self.interval
        return None if bounds is None else bounds[1]

    @property
    def pass_at_k(self) -> float | None:
        return None if self.total == 0 else pass_at_k(self.passed, self.total, min(self.k, self.total))

    @property
    def pass_hat_k(self) -> float | None:
        return None if self.total == 0 else pass_hat_k(self.passed, self.total, min(self.k, self.total))

    @property
    def flaky(self) -> bool:
        return flaky(self.passed, self.total)

    def to_dict(self) -> dict[str, object]:
        """Plain data for reports: every number a report shows, computed once here."""
        bounds = self.interval
        return {
            "passed": self.passed,
            "total": self.total,
            "rate": self.rate,
            "interval": None if bounds is None else [bounds[0], bounds[1]],
            "confidence": CONFIDENCE,
            "k": min(self.k, self.total) if self.total else self.k,
            "pass_at_k": self.pass_at_k,
            "pass_hat_k": self.pass_hat_k,
            "pass_at": [pass_at_k(self.passed, self.total, k) for k in range(1, self.total + 1)],
            "pass_hat": [pass_hat_k(self.passed, self.total, k) for k in range(1, self.total + 1)],
            "flaky": self.flaky,
        }


def reliability(outcomes: Iterable[bool], *, k: int | None = None) -> Reliability:
    """The reliability of a sequence of pass/fail outcomes (one per repeat in which it counted)."""
    values = list(outcomes)
    return Reliability(passed=sum(values), total=len(values), k=len(values) if k is None else k)


def efficiency(tool_calls: int, all_runs: Sequence[int]) -> float:
    """``min(1, median tool calls over the repeats / this run's tool calls)``; 1 when no tool was called."""
    if tool_calls < 0 or any(n < 0 for n in all_runs):
        raise ValueError("tool call counts are never negative")
    if tool_calls == 0 or not all_runs:
        return 1.0
    import statistics

    return min(1.0, statistics.median(all_runs) / tool_calls)


def rustchain_reward(*, success: float, efficiency: float, quality: float) -> float:
    """The ``reward: rustchain`` score: ``0.5 * success + 0.3 * efficiency + 0.2 * quality``, in [0, 1]."""
    for name, value in (("success", success), ("efficiency", efficiency), ("quality", quality)):
        if not 0 <= value <= 1 or math.isnan(value):
            raise ValueError(f"the reward's {name} term must be in [0, 1], not {value!r}")
    return 0.5 * success + 0.3 * efficiency + 0.2 * quality
