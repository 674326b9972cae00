"""Confidence intervals and the paired t-test, in the standard library only.

The runtime must not depend on SciPy for three formulas, so Student's t distribution is computed here from
the regularized incomplete beta function (continued fraction, modified Lentz method) and its quantile by
bisection; the normal quantile comes from :class:`statistics.NormalDist`. The tests check every function
against ``scipy.stats``.

Intervals: a pass rate gets the Wilson score interval (sensible at 0 % and 100 % and for small counts,
where the normal approximation gives impossible bounds); a mean gets the t interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist, fmean, stdev

__all__ = ["Interval", "PairedTest", "mean_interval", "paired_t_test", "t_cdf", "t_ppf", "wilson_interval"]

_EPS = 1e-15
_TINY = 1e-300


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (converges for x < (a + 1) / (a + b + 2))."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    result = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            result *= c * d
        if abs(c * d - 1.0) < _EPS:
            break
    return result


def betainc(a: float, b: float, x: float, y: float | None = None) -> float:
    """The regularized incomplete beta function I_x(a, b); ``y`` is 1 - x when the caller has it exactly."""
    y = 1.0 - x if y is None else y
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, y) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t), t * t / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_ppf(p: float, df: float) -> float:
    """The t value with P(T <= t) = p, by bisection (the cdf is monotonic)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be strictly between 0 and 1")
    low, high = -1.0, 1.0
    while t_cdf(low, df) > p:
        low *= 2.0
    while t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        mid = (low + high) / 2.0
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low < 1e-12 * max(1.0, abs(mid)):
            break
    return (low + high) / 2.0


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
