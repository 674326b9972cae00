"""``StoreSpanProcessor``: finished spans -> the registry's store, off the request path.

Modelled on OpenTelemetry's ``BatchSpanProcessor`` (bounded queue, one worker thread, batches by size or
delay) but with what the runtime needs and the SDK's processor does not expose: drops are counted by reason
(queue full, store error, invalid) for ``/metrics``, the queue depth is readable, every store write is
timed, and spans are converted to records in the worker thread, so ``on_end`` (run by whatever thread ends
a span, often the event loop) is an append and a length check. The store is written in bulk, one
transaction per batch; a failed batch is dropped and counted, never retried into a growing backlog, and
never raised into anything. ``force_flush`` and ``shutdown`` drain the queue: that is what makes SIGTERM
lose no trace of a request that completed before it.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from registry.entities import SpanRecord, TraceRecord
from runtime.observability.records import to_records

__all__ = ["DROP_REASONS", "StoreSpanProcessor", "TraceSink"]

log = logging.getLogger("runtime.observability.export")

DROP_REASONS = ("queue_full", "store_error", "invalid")
_LOG_EVERY = 60.0  # seconds between two warnings about the same failure


class TraceSink(Protocol):
    def log_traces(self, traces: Sequence[TraceRecord], spans: Sequence[SpanRecord]) -> None: ...


class StoreSpanProcessor(SpanProcessor):
    def __init__(
        self,
        sink: TraceSink,
        *,
        max_queue_size: int = 2048,
        max_batch_size: int = 512,
        schedule_delay: float = 1.0,
        on_write: Callable[[float], None] | None = None,
    ) -> None:
        self._sink = sink
        self._max_queue = max(1, max_queue_size)
        self._max_batch = max(1, min(max_batch_size, self._max_queue))
        self._delay = max(0.001, schedule_delay)
        self._on_write = on_write
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._flushes: list[threading.Event] = []
        self._dropped = dict.fromkeys(DROP_REASONS, 0)
        self._exported = 0
        self._stopping = False
        self._last_warning = 0.0
        self._worker = threading.Thread(target=self._run, name="runtime-store-exporter", daemon=True)
        self._worker.start()

    # -- request path ------------------------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if self._stopping or not span.context.trace_flags.sampled:
            return
        queue = self._queue
        if len(queue) >= self._max_queue:
            self._drop("queue_full", 1)
            return
        queue.append(span)
        if len(queue) >= self._max_batch:
            self._wake.set()

    # -- observability of the exporter itself ---------------------------------------------------------------

    def stats(self) -> tuple[int, dict[str, int], int]:
        """(spans exported, spans dropped by reason, spans queued): what ``/metrics`` reads at scrape time."""
        with self._lock:
            return self._exported, dict(self._dropped), len(self._queue)

    # -- lifecycle ---------------------------------------------------------------------------------------

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Write everything queued now; False if the worker did not finish within the timeout."""
        if not self._worker.is_alive():
            return not self._queue
        done = threading.Event()
        with self._lock:
            self._flushes.append(done)
        self._wake.set()
        return done.wait(timeout_millis / 1000)

    def shutdown(self, timeout: float = 30.0) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        self._worker.join(timeout)
        if self._worker.is_alive():
            log.warning("span exporter still writing after %.0f s; %d spans left", timeout, len(self._queue))

    # -- worker --------------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self._delay)
            self._wake.clear()
            self._drain()
            with self._lock:
                flushes, self._flushes = self._flushes, []
            if flushes:
                self._drain()  # whatever was queued just before the flush was asked for
            for done in flushes:
                done.set()
            if self._stopping:
                self._drain()
                return

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            batch: list[ReadableSpan] = []
            while queue and len(batch) < self._max_batch:
                batch.append(queue.popleft())
            self._export(batch)

    def _export(self, batch: list[ReadableSpan]) -> None:
        try:
            traces, spans = to_records(batch)
        except Exception:
            self._drop("invalid", len(batch))
            self._warn("could not convert %d spans to records", len(batch), exc_info=True)
            return
        started = time.perf_counter()
        try:
            self._sink.log_traces(traces, spans)
        except Exception as exc:
            self._drop("store_error", len(batch))
            self._warn("dropped %d spans: the store failed (%s)", len(batch), exc)
            return
        if self._on_write is not None:
            self._on_write(time.perf_counter() - started)
        with self._lock:
            self._exported += len(batch)

    def _drop(self, reason: str, count: int) -> None:
        with self._lock:
            self._dropped[reason] += count

    def _warn(self, message: str, *args: object, exc_info: bool = False) -> None:
        now = time.monotonic()
        if now - self._last_warning >= _LOG_EVERY:
            self._last_warning = now
            log.warning(message, *args, exc_info=exc_info)
