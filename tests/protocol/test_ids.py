"""Trace ids: time first (the store's trace index grows at its end), random below."""

from __future__ import annotations

import time

from runtime.ids import hex_id, trace_hex


def test_trace_ids_are_32_hex_and_grow_with_time() -> None:
    earlier = [trace_hex() for _ in range(50)]
    time.sleep(0.003)
    later = trace_hex()
    assert all(len(t) == 32 and int(t, 16) > 0 for t in [*earlier, later])
    assert all(t < later for t in earlier)
    # The leading 48 bits are the time in milliseconds.
    assert abs(int(later[:12], 16) - time.time_ns() // 1_000_000) < 5_000


def test_trace_ids_are_random_below_the_time() -> None:
    ids = {trace_hex()[12:] for _ in range(1000)}
    assert len(ids) == 1000
    # The right-most 7 bytes (W3C's random part) take many values in every position.
    assert all(len({i[-14:][p] for i in ids}) == 16 for p in range(14))


def test_hex_id_has_the_length_asked_for() -> None:
    assert len(hex_id(8)) == 16
    assert int(hex_id(16), 16) >= 0
