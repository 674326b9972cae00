"""One compacted span batch -> the store, and what became of it: shared by the writer process and the thread.

:func:`write_batch` never raises: a batch that cannot be converted is dropped as ``invalid``, one the store
refuses as ``store_error``, and the :class:`Outcome` says so, so whoever wrote it (the trace writer process,
or the exporter thread in the in-thread mode) reports the same counts to ``/metrics``. Failed batches are
not retried: a retry would grow a backlog exactly when the store is slow. Warnings are rate-limited, so a
dead store costs one log line a minute, not one per batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from runtime.observability.records import SpanBatch, to_rows

__all__ = ["Outcome", "TraceSink", "write_batch"]

log = logging.getLogger("runtime.observability.export")

_LOG_EVERY = 60.0  # seconds between two warnings about failed writes


class TraceSink(Protocol):
    """Where rows go: ``SqlStore`` or the runtime's ``LazyStore`` in front of it."""

    def log_trace_rows(
        self, trace_rows: Sequence[Mapping[str, Any]], span_rows: Sequence[Mapping[str, Any]]
    ) -> None: ...


class Outcome(NamedTuple):
    """Spans written, dropped because the store failed, dropped as invalid; the write's duration if any;
    spans lost with a trace writer process that died."""

    exported: int
    store_errors: int
    invalid: int
    seconds: float | None
    writer_lost: int = 0  # sent to a trace writer process that died before writing them (server side only)


_last_warning = 0.0


def _warn(message: str, *args: object, exc_info: bool = False) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= _LOG_EVERY:
        _last_warning = now
        log.warning(message, *args, exc_info=exc_info)


def write_batch(sink: TraceSink, batch: SpanBatch, count: int) -> Outcome:
    """Convert and write one batch of ``count`` spans in one transaction; never raises."""
    try:
        trace_rows, span_rows = to_rows(batch)
    except Exception:
        _warn("could not convert %d spans to rows", count, exc_info=True)
        return Outcome(0, 0, count, None)
    started = time.perf_counter()
    try:
        sink.log_trace_rows(trace_rows, span_rows)
    except Exception as exc:
        _warn("dropped %d spans: the store failed (%s)", count, exc)
        return Outcome(0, count, 0, None)
    return Outcome(count, 0, 0, time.perf_counter() - started)
