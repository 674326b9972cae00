"""The load generator against a tiny real server on loopback: counts, parsed events, errors, bounded stops.

No timing is asserted: the durations only bound how long each test runs.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from tiny_server import SSE_EVENTS, tiny_server

from bench.loadgen import LoadSpec, run_load


def _run(path: str, **overrides: Any) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with tiny_server() as port:
            fields: dict[str, Any] = {"concurrency": 2, "duration": 0.3, "warmup": 0.0, "grace": 2.0}
            spec = LoadSpec(host="127.0.0.1", port=port, path=path, body="{}", **{**fields, **overrides})
            return await run_load(spec)

    return asyncio.run(go())


def test_json_requests_are_counted_with_latencies() -> None:
    result = _run("/json", max_requests=40)
    assert result["issued"] == 40
    assert result["requests"] == 40
    assert result["errors"] == 0
    assert result["latency_ms"]["p50"] > 0
    assert result["body_bytes"] == 40 * len(b'{"ok":true}')
    assert result["events"] == 0


def test_sse_frames_are_parsed_and_counted_per_request() -> None:
    result = _run("/sse", stream=True, max_requests=10)
    assert result["requests"] == 10
    assert result["errors"] == 0
    assert result["events"] == 10 * (SSE_EVENTS + 1)  # deltas and [DONE]; the ping comment is not an event
    assert result["deltas"] == 10 * SSE_EVENTS
    assert result["ttfe_ms"] is not None


def test_gaps_between_deltas_are_recorded_when_an_interval_is_given() -> None:
    result = _run("/sse", stream=True, max_requests=4, delta_interval=0.0)
    assert result["gap_extra_ms"] is not None
    assert result["errors"] == 0


def test_stream_without_terminal_event_is_an_error() -> None:
    result = _run("/sse-cut", stream=True, max_requests=6)
    assert result["requests"] == 0
    assert result["error_kinds"] == {"stream_incomplete": 6}


def test_http_errors_are_counted_by_status_and_not_measured() -> None:
    result = _run("/error", max_requests=8)
    assert result["requests"] == 0
    assert result["error_kinds"] == {"status_500": 8}


def test_connection_close_reconnects_and_keeps_counting() -> None:
    result = _run("/close", max_requests=12)
    assert result["requests"] == 12
    assert result["errors"] == 0


def test_requests_finishing_during_warmup_are_not_measured() -> None:
    result = _run("/json", max_requests=5, warmup=30.0, duration=0.1)
    assert result["issued"] == 5
    assert result["requests"] == 0
    assert result["errors"] == 0


def test_a_server_that_never_answers_is_stopped_by_the_deadline() -> None:
    result = _run("/hang", concurrency=3, duration=0.1, grace=0.2)
    assert result["issued"] == 3
    assert result["requests"] == 0
    assert result["error_kinds"] == {"unfinished": 3}


def test_nothing_listening_counts_connect_errors_and_stops() -> None:
    async def go() -> dict[str, Any]:
        async with tiny_server() as port:
            pass  # closed again: nothing listens on the port any more
        spec = LoadSpec(
            host="127.0.0.1", port=port, path="/json", body="{}", concurrency=2, duration=0.2, warmup=0.0
        )
        return await run_load(spec)

    result = asyncio.run(go())
    assert result["issued"] == 0
    assert result["error_kinds"]["connect"] >= 2


def _arrivals_before(rate: float, seed: int, seconds: float) -> int:
    """How many of the open loop's Poisson arrivals fall within ``seconds`` of its start."""
    schedule, due, count = random.Random(seed), 0.0, 0
    while (due := due + schedule.expovariate(rate)) < seconds:
        count += 1
    return count


def test_open_loop_sends_its_seeded_poisson_schedule_and_measures_every_request() -> None:
    result = _run("/json", rate=400.0, seed=7, duration=0.5, concurrency=4)
    expected = _arrivals_before(400.0, 7, 0.5)
    # The schedule is the seed's; only the instant the schedule starts differs from the window's by a hair.
    assert expected - 1 <= result["issued"] <= expected
    assert result["requests"] == result["issued"]  # all dispatched inside the window, all measured
    assert result["errors"] == 0
    assert result["offered_rps"] == 400.0
    assert result["served_rps"] > 0  # answered inside the window, as counted apart from the latencies
    assert result["dispatch_late_ms"]["p50"] >= 0
    assert result["latency_ms"]["p50"] > 0


def test_open_loop_queues_requests_behind_busy_connections_and_bounds_them() -> None:
    # One connection, a server that never answers: the first request holds it, the rest queue; at the
    # deadline every dispatched request is counted unfinished, queued ones included.
    result = _run("/hang", rate=200.0, seed=3, concurrency=1, duration=0.2, grace=0.2)
    assert result["issued"] > 1
    assert result["requests"] == 0
    assert result["error_kinds"] == {"unfinished": result["issued"]}


def test_closed_loop_does_not_report_open_loop_figures() -> None:
    result = _run("/json", max_requests=5)
    assert result["offered_rps"] is None
    assert result["served_rps"] == result["rps"]  # a closed loop measures what ends in its window
    assert result["dispatch_late_ms"] is None
