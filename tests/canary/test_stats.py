"""The canary's statistics against scipy.stats on the same samples, and the sequential test's guarantee."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy import stats as sp

from runtime.canary import stats
from runtime.canary.counters import LATENCY_BOUNDS, Accumulator, Observation, histogram, quantile


def moments(values: list[float]) -> stats.Moments:
    return stats.Moments(len(values), sum(values), sum(v * v for v in values))


@pytest.mark.parametrize("df", [1, 2.5, 7, 30.3, 300, 5000])
@pytest.mark.parametrize("t", [0.0, 0.1, 1.0, 2.5, 6.0, 40.0])
def test_student_t_tail_and_quantile_match_scipy(t: float, df: float) -> None:
    assert stats.student_t_sf(t, df) == pytest.approx(sp.t.sf(t, df), rel=1e-9, abs=1e-14)
    assert stats.student_t_sf(-t, df) == pytest.approx(sp.t.sf(-t, df), rel=1e-9)
    assert stats.student_t_ppf(0.975, df) == pytest.approx(sp.t.ppf(0.975, df), rel=1e-9)


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"), [(10, 200, 25, 210), (0, 50, 7, 40), (480, 500, 470, 500), (3, 1000, 3, 90)]
)
def test_two_proportion_test_matches_scipy_chi_square_and_normal(x1: int, n1: int, x2: int, n2: int) -> None:
    result = stats.two_proportions(x1, n1, x2, n2, alpha=0.05, planned_n=100)
    assert result is not None
    table = np.array([[x1, n1 - x1], [x2, n2 - x2]])
    chi2, p_chi2, _, _ = sp.chi2_contingency(table, correction=False)
    assert result.p_value == pytest.approx(p_chi2, rel=1e-9)
    assert result.statistic**2 == pytest.approx(chi2, rel=1e-9)
    p1, p2 = x1 / n1, x2 / n2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    low, high = sp.norm.interval(0.95, loc=p2 - p1, scale=se)
    assert result.interval.low == pytest.approx(low, abs=1e-12)
    assert result.interval.high == pytest.approx(high, abs=1e-12)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_welch_test_matches_scipy_ttest_ind_on_the_same_samples(seed: int) -> None:
    rng = random.Random(seed)
    champion = [rng.gauss(1.0, 2.0) for _ in range(rng.randint(5, 80))]
    challenger = [rng.gauss(1.6, 3.0) for _ in range(rng.randint(5, 120))]
    result = stats.welch(moments(champion), moments(challenger), alpha=0.05, planned_n=100)
    assert result is not None
    expected = sp.ttest_ind(challenger, champion, equal_var=False)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-7)
    assert result.df == pytest.approx(expected.df, rel=1e-9)
    interval = expected.confidence_interval(0.95)
    assert result.interval.low == pytest.approx(interval.low, rel=1e-7)
    assert result.interval.high == pytest.approx(interval.high, rel=1e-7)


def test_single_variant_intervals_match_scipy() -> None:
    values = [0.2, 0.9, 0.4, 0.7, 0.5, 0.8]
    low, high = sp.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=sp.sem(values))
    interval = stats.mean_interval(moments(values))
    assert (interval.low, interval.high) == (pytest.approx(low), pytest.approx(high))
    wilson = sp.binomtest(7, 40).proportion_ci(0.95, method="wilson")
    assert stats.wilson_interval(7, 40).as_list() == [pytest.approx(wilson.low), pytest.approx(wilson.high)]


def test_the_always_valid_interval_is_wider_than_the_fixed_one_and_contains_it() -> None:
    result = stats.two_proportions(20, 400, 35, 380, alpha=0.05, planned_n=200)
    assert result is not None
    assert result.always_valid_interval.low < result.interval.low
    assert result.always_valid_interval.high > result.interval.high
    assert result.always_valid_p >= result.p_value


def test_no_data_or_no_variance_gives_no_test_or_a_point() -> None:
    assert stats.two_proportions(0, 0, 1, 10, alpha=0.05, planned_n=10) is None
    assert stats.welch(moments([1.0]), moments([1.0, 2.0]), alpha=0.05, planned_n=10) is None
    flat = stats.welch(moments([1.0, 1.0]), moments([1.0, 1.0]), alpha=0.05, planned_n=10)
    assert flat is not None and flat.p_value == 1.0


def test_peeking_at_the_sequential_test_keeps_false_alarms_under_alpha_unlike_the_fixed_test() -> None:
    """A/A experiments looked at 40 times each: the mixture SPRT stays near or under 5 % false alarms, the
    fixed-sample z-test read at every look does not (the reason the auto policy uses the former)."""
    rng = np.random.default_rng(7)
    runs, looks, step, rate = 300, 40, 50, 0.1
    sequential = fixed = 0
    for _ in range(runs):
        a = rng.random((looks * step,)) < rate
        b = rng.random((looks * step,)) < rate
        seq_alarm = fixed_alarm = False
        for look in range(1, looks + 1):
            n = look * step
            result = stats.two_proportions(
                int(a[:n].sum()), n, int(b[:n].sum()), n, alpha=0.05, planned_n=500
            )
            assert result is not None
            seq_alarm |= result.always_valid_p <= 0.05
            fixed_alarm |= result.p_value <= 0.05
        sequential += seq_alarm
        fixed += fixed_alarm
    assert sequential / runs <= 0.07  # 0.05 plus sampling error of 300 runs
    assert fixed / runs >= 0.15


def test_a_real_difference_is_detected_by_the_sequential_test() -> None:
    result = stats.two_proportions(2, 300, 60, 300, alpha=0.05, planned_n=300)
    assert result is not None and result.always_valid_p < 0.001 and result.always_valid_interval.low > 0


def test_quantiles_interpolate_inside_their_bucket() -> None:
    counts = [0] * (len(LATENCY_BOUNDS) + 1)
    counts[6] = 10  # ten requests in (0.008, 0.016]
    assert quantile(0.5, LATENCY_BOUNDS, counts) == pytest.approx(0.012)
    counts[-1] = 10  # ten beyond the last bound: reported at the last bound
    assert quantile(0.99, LATENCY_BOUNDS, counts) == LATENCY_BOUNDS[-1]
    assert quantile(0.5, LATENCY_BOUNDS, [0] * len(counts)) is None


def test_a_fast_agents_latency_is_reported_at_its_scale() -> None:
    """0.1 ms requests were reported at 5 ms (the middle of a first bucket of 10 ms)."""
    accumulator = Accumulator()
    for _ in range(20):
        accumulator.add(Observation("c-1", "champion", "OK", None, 0.0001, None, None, None, None))
    ints, _ = accumulator.deltas()[("c-1", "champion")]
    p50 = quantile(0.5, LATENCY_BOUNDS, histogram(ints, "latency", LATENCY_BOUNDS))
    assert p50 is not None and p50 <= 0.00025


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"), [(0, 1, 1, 1), (1, 1, 0, 1), (0, 6, 6, 6), (0, 12, 12, 12), (3, 4, 0, 2)]
)
def test_intervals_of_a_rate_difference_stay_within_100_points(x1: int, n1: int, x2: int, n2: int) -> None:
    """One request per variant printed ``[-229.96 pts, +229.96 pts]``; all failing ``[+73.92, +126.08]``."""
    result = stats.two_proportions(x1, n1, x2, n2, alpha=0.05, planned_n=500)
    assert result is not None
    for interval in (result.interval, result.always_valid_interval):
        assert -1.0 <= interval.low <= result.difference <= interval.high <= 1.0


def test_one_or_two_requests_per_variant_never_decide_however_different() -> None:
    for n in (1, 2):
        worst = stats.two_proportions(0, n, n, n, alpha=0.05, planned_n=20)
        assert (
            worst is not None and worst.always_valid_interval.low <= 0.0 <= worst.always_valid_interval.high
        )
    six = stats.two_proportions(0, 6, 6, 6, alpha=0.05, planned_n=20)  # Fisher's exact test: p = 0.002
    assert six is not None and six.always_valid_interval.low > 0.0 and six.always_valid_interval.high == 1.0
