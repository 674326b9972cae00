"""The paired comparison's arithmetic: ratios within a round, medians over rounds."""

from __future__ import annotations

import pytest

from bench.paired import PAIRS, PART_PAIRS, PARTS, cpu_per_request_us, main, round_ratios, summarize
from bench.variants import load_variants, part_variants


def test_ratios_are_taken_within_each_round_then_their_median() -> None:
    # The machine slows down by half in the second round: within-round ratios do not see it.
    rounds = [
        {"bare": 20_000.0, "runtime-async": 10_000.0, "runtime-async-obs-off": 16_000.0},
        {"bare": 10_000.0, "runtime-async": 5_000.0, "runtime-async-obs-off": 8_000.0},
        {"bare": 18_000.0, "runtime-async": 9_900.0, "runtime-async-obs-off": 16_500.0},
    ]
    assert round_ratios(rounds, "runtime-async", "bare") == [0.5, 0.5, 0.55]
    summary = summarize(rounds)
    assert summary["ratios"]["tracing+metrics on/off"] == 0.625
    assert summary["ratios"]["runtime/bare (async agent)"] == 0.5
    assert summary["rps"]["bare"] == 18_000.0


def test_a_round_missing_a_server_is_left_out_of_its_ratios() -> None:
    rounds = [{"bare": 10.0, "runtime-async": 5.0}, {"runtime-async": 4.0}]
    assert round_ratios(rounds, "runtime-async", "bare") == [0.5]
    assert summarize(rounds)["ratios"]["tracing+metrics on/off"] is None


def test_the_parts_are_each_taken_against_both_off() -> None:
    rounds = [
        {
            "runtime-async-obs-off": 10_000.0,
            "runtime-async-tracing": 8_000.0,
            "runtime-async-metrics": 9_500.0,
            "runtime-async-sampled": 9_000.0,
        },
        {
            "runtime-async-obs-off": 5_000.0,
            "runtime-async-tracing": 4_100.0,
            "runtime-async-metrics": 4_800.0,
            "runtime-async-sampled": 4_700.0,
        },
    ]
    ratios = summarize(rounds, PAIRS + PART_PAIRS)["ratios"]
    assert ratios["tracing alone/off"] == pytest.approx(0.81)
    assert ratios["metrics alone/off"] == pytest.approx(0.955)
    assert ratios["10% kept/off"] == pytest.approx(0.92)
    assert ratios["tracing+metrics on/off"] is None  # both on was not measured here


def test_server_cpu_is_counted_per_request_issued() -> None:
    assert cpu_per_request_us({"server_cpu_s": 1.5, "issued": 10_000}) == 150.0
    assert cpu_per_request_us({"server_cpu_s": 1.5, "issued": 0}) is None  # nothing was served
    assert cpu_per_request_us({"issued": 10}) is None  # the server's CPU could not be read


def test_the_event_loop_thread_is_counted_apart() -> None:
    result = {"server_cpu_s": 1.5, "server_main_thread_cpu_s": 1.0, "issued": 10_000}
    assert cpu_per_request_us(result, "server_main_thread_cpu_s") == 100.0
    assert cpu_per_request_us({"server_cpu_s": 1.5, "issued": 10}, "server_main_thread_cpu_s") is None


def test_wrk_is_refused_for_streams_before_any_server_starts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--loadgen", "wrk", "--scenarios", "invocations,responses-stream"]) == 2
    assert "responses-stream" in capsys.readouterr().err


def test_the_parts_servers_stay_out_of_the_full_run() -> None:
    assert set(part_variants()) == set(PARTS)
    assert not set(PARTS) & set(load_variants())  # the full run measures what it always did
