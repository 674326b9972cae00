"""The statistics behind a canary verdict, in plain Python (scipy is only a test dependency).

Two kinds of answer for the same data:

- **Fixed-sample** tests, for reading: the two-proportion z-test (pooled standard error for the test,
  unpooled Wald interval for the difference; its p-value equals a 2x2 chi-square test without continuity
  correction) and Welch's t-test (Welch-Satterthwaite degrees of freedom). They are what a statistician
  expects to see, but their error rates only hold if you look once.
- An **always-valid** test, for deciding: the normal-mixture sequential probability ratio test (Robbins'
  mixture martingale, the "mSPRT" of Johari et al., *Always valid inference*, 2017), applied to the
  difference of the two means with its estimated variance ``V``. Its likelihood ratio
  ``sqrt(V / (V + tau2)) * exp(tau2 * d**2 / (2 * V * (V + tau2)))`` is a martingale under "no
  difference", so the chance that it *ever* crosses ``1/alpha`` is at most ``alpha`` (Ville's inequality):
  operators and the auto policy may look every second without inflating false alarms. The price is a wider
  interval than the fixed one. Validity is asymptotic: ``V`` is a plug-in estimate (the CLT), as in every
  practical A/B sequential test.

The mixing variance ``tau2`` sets where the boundary is tightest; :func:`mixing_variance` puts that at a
planned sample size (the canary's ``--min-requests``).

A difference of two rates lies between -1 and 1, and both of its intervals are cut to that range: the Wald
interval and the mixture's normal approximation overshoot it on small samples (one request each gave
``[-230, +230]`` points). Cutting never changes an outcome (an interval excludes 0 or not either way). Tiny
samples do not decide: the sequential test's variance comes from rates shrunk by one pseudo-observation each
way, so one or two requests per variant leave 0 inside the interval whatever they show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from runtime.distributions import normal_sf, t_ppf, t_sf

__all__ = [
    "Comparison",
    "Interval",
    "Moments",
    "mean_interval",
    "mixing_variance",
    "mixture_test",
    "normal_sf",
    "student_t_ppf",
    "student_t_sf",
    "two_proportions",
    "welch",
    "wilson_interval",
]

Z_975 = 1.959963984540054  # the standard normal's 97.5% quantile: 95% two-sided intervals
_BOUNDARY_RATIO = 10.0  # tau2 / V at the planned sample size: where the mixture boundary is about tightest


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float

    def as_list(self) -> list[float]:
        return [self.low, self.high]

    def within(self, low: float, high: float) -> Interval:
        """This interval cut to the values the quantity can take (a difference of two rates: -1 to 1)."""
        return Interval(max(low, min(self.low, high)), min(high, max(self.high, low)))


@dataclass(frozen=True, slots=True)
class Moments:
    """What the counters keep for a mean: count, sum and sum of squares."""

    n: int
    total: float
    total_sq: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """Sample variance (n - 1), never negative despite float cancellation."""
        if self.n < 2:
            return 0.0
        return max(0.0, (self.total_sq - self.n * self.mean**2) / (self.n - 1))


@dataclass(frozen=True, slots=True)
class Comparison:
    """Challenger minus champion, with the fixed-sample and the always-valid answers side by side."""

    difference: float
    interval: Interval
    p_value: float
    statistic: float
    df: float | None
    always_valid_interval: Interval
    always_valid_p: float


# -- distributions ---------------------------------------------------------------------------------------


def student_t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom (any positive real df)."""
    return t_sf(t, df)


def student_t_ppf(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t."""
    return t_ppf(q, df)


# -- one variant -----------------------------------------------------------------------------------------


def wilson_interval(successes: int, n: int) -> Interval:
    """95% Wilson interval of a rate: sensible at 0 and n, unlike the Wald interval."""
    if n == 0:
        return Interval(0.0, 1.0)
    p = successes / n
    z2 = Z_975**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z_975 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(m: Moments) -> Interval:
    """95% Student t interval of a mean; a point when fewer than two values are known."""
    if m.n < 2:
        return Interval(m.mean, m.mean)
    half = student_t_ppf(0.975, m.n - 1) * math.sqrt(m.variance / m.n)
    return Interval(m.mean - half, m.mean + half)


# -- two variants ----------------------------------------------------------------------------------------


def mixing_variance(variance: float, n_small: int, planned_n: int) -> float:
    """``tau2`` that makes the mixture boundary tightest when the smaller arm reaches ``planned_n``.

    ``variance`` is the current variance of the difference, ``n_small`` the current size of the smaller arm;
    the variance at the planned size is extrapolated as ``variance * n_small / planned_n``.
    """
    return _BOUNDARY_RATIO * variance * max(n_small, 1) / max(planned_n, 1)


def mixture_test(difference: float, variance: float, tau2: float, alpha: float) -> tuple[Interval, float]:
    """The mSPRT's always-valid (1 - alpha) interval for the difference, and its p-value for "none"."""
    if variance <= 0.0 or tau2 <= 0.0:
        return Interval(difference, difference), (1.0 if difference == 0.0 else 0.0)
    total = variance + tau2
    log_ratio = 0.5 * math.log(variance / total) + tau2 * difference**2 / (2.0 * variance * total)
    p_value = 1.0 if log_ratio <= 0.0 else math.exp(-log_ratio)
    half = math.sqrt(
        2.0 * variance * total / tau2 * (math.log(1.0 / alpha) + 0.5 * math.log(total / variance))
    )
    return Interval(difference - half, difference + half), min(1.0, p_value)


def two_proportions(
    x_champion: int, n_champion: int, x_challenger: int, n_challenger: int, *, alpha: float, planned_n: int
) -> Comparison | None:
    """Compare two rates (errors, passes). None until both variants have at least one observation."""
    if n_champion == 0 or n_challenger == 0:
        return None
    p1, p2 = x_champion / n_champion, x_challenger / n_challenger
    diff = p2 - p1
    pooled = (x_champion + x_challenger) / (n_champion + n_challenger)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_champion + 1 / n_challenger))
    z = diff / se_pooled if se_pooled > 0 else 0.0
    p_value = 2.0 * normal_sf(abs(z)) if se_pooled > 0 else 1.0
    se = math.sqrt(p1 * (1 - p1) / n_champion + p2 * (1 - p2) / n_challenger)
    fixed = Interval(diff - Z_975 * se, diff + Z_975 * se).within(-1.0, 1.0)
    # The sequential test plugs in rates shrunk towards 1/2 by one pseudo-observation each way, so that
    # "no errors yet" on both sides is uncertainty, not a variance of zero.
    s1 = (x_champion + 1) / (n_champion + 2)
    s2 = (x_challenger + 1) / (n_challenger + 2)
    variance = s1 * (1 - s1) / n_champion + s2 * (1 - s2) / n_challenger
    tau2 = mixing_variance(variance, min(n_champion, n_challenger), planned_n)
    seq_interval, seq_p = mixture_test(diff, variance, tau2, alpha)
    return Comparison(diff, fixed, p_value, z, None, seq_interval.within(-1.0, 1.0), seq_p)


def welch(champion: Moments, challenger: Moments, *, alpha: float, planned_n: int) -> Comparison | None:
    """Compare two means with Welch's t-test. None until both variants have two observations."""
    if champion.n < 2 or challenger.n < 2:
        return None
    diff = challenger.mean - champion.mean
    v1, v2 = champion.variance / champion.n, challenger.variance / challenger.n
    variance = v1 + v2
    if variance <= 0.0:
        interval = Interval(diff, diff)
        p_value = 1.0 if diff == 0.0 else 0.0
        return Comparison(diff, interval, p_value, 0.0, None, interval, p_value)
    t = diff / math.sqrt(variance)
    df = variance**2 / (v1**2 / (champion.n - 1) + v2**2 / (challenger.n - 1))
    p_value = min(1.0, 2.0 * student_t_sf(abs(t), df))
    half = student_t_ppf(0.975, df) * math.sqrt(variance)
    tau2 = mixing_variance(variance, min(champion.n, challenger.n), planned_n)
    seq_interval, seq_p = mixture_test(diff, variance, tau2, alpha)
    return Comparison(diff, Interval(diff - half, diff + half), p_value, t, df, seq_interval, seq_p)
