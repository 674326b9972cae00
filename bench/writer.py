"""``python -m bench.writer``: what the trace writer process spends per request, rows and insert apart.

The writer turns the server's span batches into rows (:func:`~runtime.observability.records.to_rows`) and
writes them in one transaction per batch (``SqlStore.log_trace_rows``), on a core the load generator and
the server share in the benchmark. Here the batches the server really sends are captured (the async echo
agent served in process, as in :mod:`bench.callgrind`, with the writer client's framing hooked), then
replayed into a fresh store with new time-ordered trace ids, in a loop: CPU time per request for building
the rows and for writing them, and the store file's size per request.

    .venv/bin/python -m bench.writer                      # SQLite in a temporary folder
    .venv/bin/python -m bench.writer --store postgresql+psycopg://127.0.0.1:5432/test --requests 20000

Run it before and after a change to the writer's rows or the trace table.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import callgrind
from runtime.observability.records import ROOT_RECORD_LENGTH

__all__ = ["capture", "main", "replay"]


def capture(requests: int) -> list[tuple[Any, int]]:
    """The (batch, spans) the server hands its trace writer while serving ``requests`` echo requests."""
    from runtime.observability import writer_client

    captured: list[tuple[Any, int]] = []
    cls = writer_client.ProcessWriter
    originals = {"write": cls.write, "send_now": cls.send_now}  # the two ways a batch is handed over

    def hook(name: str) -> Any:
        def hooked(self: writer_client.ProcessWriter, batch: Any, count: int) -> Any:
            captured.append((batch, count))
            return originals[name](self, batch, count)

        return hooked

    for name in originals:
        setattr(cls, name, hook(name))
    try:
        asyncio.run(callgrind.drive("on", requests, 0, False))
    finally:
        for name, method in originals.items():
            setattr(cls, name, method)
    return captured


def _rekeyed(batch: Any) -> Any:
    """``batch`` as if its requests were served now: fresh trace ids that grow with time, as the service's
    own do, and start and end times moved to the present (the trace table's indexes are time-ordered)."""
    spans = batch
    now = time.time_ns()
    shift = now - min(_times(span)[0] for span in spans) if spans else 0
    out = []
    for span in spans:
        trace_id = (now // 1_000_000 & 0xFFFFFFFFFFFF) << 80 | random.getrandbits(80)
        start, end = _times(span)
        moved = (start + shift, end + shift if end is not None else None)
        if len(span) == ROOT_RECORD_LENGTH:  # (trace id, span id, name, start, end, ...)
            out.append((trace_id, span[1], span[2], *moved, *span[5:]))
        else:  # (trace id, span id, parent id, name, start, end, ...)
            out.append((trace_id, *span[1:4], *moved, *span[6:]))
    return out


def _times(span: Any) -> tuple[int, int | None]:
    return (span[3], span[4]) if len(span) == ROOT_RECORD_LENGTH else (span[4], span[5])


def replay(url: str, batches: list[tuple[Any, int]], requests: int) -> dict[str, float]:
    """Write ``batches`` over and over into the store at ``url`` until ``requests`` roots are written."""
    from runtime.observability.lazy_store import LazyStore
    from runtime.observability.records import to_rows

    store = LazyStore(url)
    sink = store.get()
    rows_s = insert_s = 0.0
    written = 0
    try:
        while written < requests:
            for batch, _count in batches:
                fresh = _rekeyed(batch)
                started = time.process_time()
                trace_rows, span_rows = to_rows(fresh)
                built = time.process_time()
                sink.log_trace_rows(trace_rows, span_rows)
                insert_s += time.process_time() - built
                rows_s += built - started
                written += len(trace_rows)
                if written >= requests:
                    break
    finally:
        store.close()
    return {"requests": written, "rows_us": rows_s / written * 1e6, "insert_us": insert_s / written * 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.writer", description=__doc__.split("\n")[0])
    parser.add_argument("--store", help="store URL (default: SQLite in a temporary folder)")
    parser.add_argument("--capture", type=int, default=2000, help="requests served to capture batches")
    parser.add_argument("--requests", type=int, default=50_000, help="requests written (default 50000)")
    args = parser.parse_args(argv)
    batches = capture(args.capture)
    sizes = sorted(count for _, count in batches)
    print(f"captured {len(batches)} batches, spans per batch median {sizes[len(sizes) // 2]}")
    with tempfile.TemporaryDirectory() as folder:
        url = args.store or f"sqlite:///{folder}/bench-writer.db"
        result = replay(url, batches, args.requests)
        size = sum(p.stat().st_size for p in Path(folder).glob("bench-writer.db*"))
    line = (
        f"{int(result['requests']):,} requests: rows {result['rows_us']:.1f} us, "
        f"insert {result['insert_us']:.1f} us CPU per request"
    )
    if not args.store:
        line += f"; SQLite files {size / result['requests']:.0f} bytes per request"
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
