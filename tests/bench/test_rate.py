"""The open-loop comparison's arithmetic: offered rates from the measured capacity, differences within a
round, medians over rounds."""

from __future__ import annotations

from bench.rate import offered_rates, round_differences, summarize_rate


def test_rates_are_fractions_of_the_measured_capacity_rounded_to_ten() -> None:
    assert offered_rates(7_059.0, [0.25, 0.5, 0.75]) == [1_760.0, 3_530.0, 5_290.0]
    assert offered_rates(12.0, [0.25]) == [10.0]  # never below 10 requests/s


def test_differences_are_taken_within_each_round_then_their_median() -> None:
    # The machine is slower in the second round: every server's p50 rose, the differences did not.
    rounds = [
        {"bare": {"p50": 0.5}, "runtime-async": {"p50": 0.8}, "runtime-async-obs-off": {"p50": 0.7}},
        {"bare": {"p50": 1.5}, "runtime-async": {"p50": 1.9}, "runtime-async-obs-off": {"p50": 1.7}},
        {"bare": {"p50": 0.6}, "runtime-async": {"p50": 0.8}, "runtime-async-obs-off": {"p50": 0.8}},
    ]
    assert [round(d, 2) for d in round_differences(rounds, "runtime-async", "bare")] == [0.3, 0.4, 0.2]
    summary = summarize_rate(rounds)
    assert round(summary["differences"]["p50 runtime - bare"], 2) == 0.3
    assert round(summary["differences"]["p50 tracing+metrics on - off"], 2) == 0.1
    assert summary["servers"]["bare"]["p50"] == 0.6


def test_a_server_missing_from_a_round_is_left_out_of_its_differences() -> None:
    rounds = [{"bare": {"p50": 0.5}, "runtime-async": {"p50": 0.9}}, {"runtime-async": {"p50": 1.0}}]
    assert round_differences(rounds, "runtime-async", "bare") == [0.4]
    summary = summarize_rate(rounds)
    assert summary["differences"]["p50 tracing+metrics on - off"] is None
    assert summary["servers"]["runtime-async"]["p50"] == 0.95
