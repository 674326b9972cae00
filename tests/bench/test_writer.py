"""bench.writer captures the batches a real server hands its trace writer, and replays them into a store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bench import writer


def test_captured_batches_replay_as_new_traces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_CALLGRIND", raising=False)
    batches = writer.capture(30)
    assert sum(count for _, count in batches) >= 30  # every request's root span was handed over

    db = tmp_path / "replay.db"
    result = writer.replay(f"sqlite:///{db}", batches, 75)

    assert result["requests"] >= 75
    assert result["rows_us"] > 0 and result["insert_us"] > 0
    with sqlite3.connect(db) as conn:
        (rows, distinct, latest), *_ = conn.execute(
            "SELECT count(*), count(DISTINCT trace_id), max(start_time_ns) FROM traces"
        )
    assert rows == distinct == result["requests"]  # fresh ids each round: no upsert over an earlier one
    first_start = min(writer._times(span)[0] for batch, _ in batches for span in batch)
    assert latest > first_start  # moved to the time of the replay
