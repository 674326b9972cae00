"""Confidence intervals and the paired t-test, in the standard library only.

Student's t comes from :mod:`runtime.distributions` (shared with the canary statistics); the normal quantile
from :class:`statistics.NormalDist`. The tests check every function against ``scipy.stats``.

Intervals: a pass rate gets the Wilson score interval (sensible at 0 % and 100 % and for small counts,
where the normal approximation gives impossible bounds); a mean gets the t interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist, fmean, stdev

from runtime.distributions import t_cdf, t_ppf

__all__ = ["Interval", "PairedTest", "mean_interval", "paired_t_test", "t_cdf", "t_ppf", "wilson_interval"]


@dataclass(frozen=True, slots=True)
class Interval:
    estimate: float
    low: float | None
    high: float | None


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval:
    if n <= 0:
        raise ValueError("a pass rate needs at least one observation")
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the edges, not 1e-17 off
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(p, low, high)


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """The mean with its t interval; no interval from a single value."""
    if not values:
        raise ValueError("a mean needs at least one value")
    mean = fmean(values)
    if len(values) < 2:
        return Interval(mean, None, None)
    half = t_ppf(0.5 + confidence / 2.0, len(values) - 1) * stdev(values) / math.sqrt(len(values))
    return Interval(mean, mean - half, mean + half)


@dataclass(frozen=True, slots=True)
class PairedTest:
    """B minus A on the same rows: mean difference with its interval, t statistic and two-sided p-value."""

    n: int
    mean_difference: float
    low: float | None
    high: float | None
    t: float
    p_value: float


def paired_t_test(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> PairedTest:
    if len(a) != len(b):
        raise ValueError("a paired test needs the same number of values on both sides")
    if len(a) < 2:
        raise ValueError("a paired test needs at least two pairs")
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    n = len(diffs)
    mean = fmean(diffs)
    spread = stdev(diffs)
    if spread == 0.0:  # every pair moved by the same amount: no variance to test against
        t = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
        return PairedTest(n, mean, mean, mean, t, 1.0 if mean == 0.0 else 0.0)
    error = spread / math.sqrt(n)
    t = mean / error
    p = 2.0 * (1.0 - t_cdf(abs(t), n - 1))
    half = t_ppf(0.5 + confidence / 2.0, n - 1) * error
    return PairedTest(n, mean, mean - half, mean + half, t, min(1.0, max(0.0, p)))
