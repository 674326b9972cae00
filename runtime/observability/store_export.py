"""``StoreSpanProcessor``: finished spans -> the registry's store, off the request path.

Modelled on OpenTelemetry's ``BatchSpanProcessor`` (bounded queue, one worker thread, batches by size or
delay) but with what the runtime needs and the SDK's processor does not expose: drops are counted by reason
(queue full, store error, invalid) for ``/metrics``, the queue depth is readable, every store write is
timed, and ``on_end`` (run by whatever thread ends a span, often the event loop) is an append and a length
check, except once per full batch: then that thread compacts the batch
(:func:`~runtime.observability.records.compact`) and hands it to the writer process itself when that cannot
wait for anything (see :meth:`StoreSpanProcessor._hand_off`). Everything that may wait (the timed flush of a
partial batch, the writer's start-up and flow control, flushes, shutdown, the fallback) is the worker
thread's, which compacts what it drains and hands it to a writer:

- by default the trace writer process (:class:`~runtime.observability.writer_client.ProcessWriter`), which
  converts and writes on another core, so the work no longer competes with the event loop for the GIL;
- in the in-thread mode (``RUNTIME_TRACE_WRITER=thread``, an in-memory store, or when the writer process
  cannot start or dies), :class:`ThreadWriter`, which converts and writes right here.

With ``on_metrics`` (the server has metrics on), whichever writer takes a batch also counts the request
metrics of its root records (:mod:`~runtime.observability.root_metrics`), and ``on_end_root`` says so, so
the telemetry leaves them to it; ``settle_metrics`` waits until everything queued so far is counted.

Either way the store is written in bulk, one transaction per batch; a failed batch is dropped and counted,
never retried into a growing backlog, and never raised into anything. ``force_flush`` and ``shutdown``
drain the queue and wait until the writer has written everything: that is what makes SIGTERM lose no trace
of a request that completed before it.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Protocol

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from runtime.observability.prometheus import Snapshot
from runtime.observability.records import RootRecord, SpanBatch, compact
from runtime.observability.root_metrics import fold_into
from runtime.observability.writer_client import ProcessWriter
from runtime.observability.writer_sink import Outcome, TraceSink, write_batch

__all__ = ["DROP_REASONS", "BatchWriter", "StoreSpanProcessor", "ThreadWriter", "TraceSink"]

log = logging.getLogger("runtime.observability.export")

DROP_REASONS = ("queue_full", "store_error", "invalid", "writer_lost")


class BatchWriter(Protocol):
    """Where the worker thread hands compacted batches; every method is called from that thread only."""

    def start(self) -> None: ...
    def poll(self) -> None: ...
    def write(self, batch: SpanBatch, count: int) -> None: ...
    def can_take(self, count: int) -> bool: ...
    def send_now(self, batch: SpanBatch, count: int) -> bool: ...
    def wait(self, timeout: float) -> bool: ...
    def wait_folded(self, timeout: float) -> bool: ...
    def pending(self) -> int: ...
    def close(self, timeout: float) -> None: ...


class ThreadWriter:
    """Converts and writes each batch in the calling thread: the in-thread mode, and the fallback."""

    def __init__(
        self,
        sink: TraceSink,
        report: Callable[[Outcome], None],
        on_metrics: Callable[[Snapshot], None] | None = None,
    ) -> None:
        self._sink = sink
        self._report = report
        self._on_metrics = on_metrics

    def start(self) -> None:
        return None

    def poll(self) -> None:
        return None

    def write(self, batch: SpanBatch, count: int) -> None:
        if self._on_metrics is not None:
            fold_into(self._on_metrics, batch)
        self._report(write_batch(self._sink, batch, count))

    def can_take(self, count: int) -> bool:
        return False  # writing blocks: only the worker thread writes

    def send_now(self, batch: SpanBatch, count: int) -> bool:
        raise NotImplementedError("the in-thread writer never takes a batch from another thread")

    def wait(self, timeout: float) -> bool:
        return True

    def wait_folded(self, timeout: float) -> bool:
        return True

    def pending(self) -> int:
        return 0

    def close(self, timeout: float) -> None:
        return None


class _Flush:
    __slots__ = ("done", "metrics_only", "ok", "timeout")

    def __init__(self, timeout: float, metrics_only: bool) -> None:
        self.done = threading.Event()
        self.timeout = timeout
        self.metrics_only = metrics_only  # done once the metrics of what was queued are counted
        self.ok = False


class StoreSpanProcessor(SpanProcessor):
    """``store_url`` set: write through a writer process for that store, ``sink`` being the fallback."""

    def __init__(
        self,
        sink: TraceSink,
        *,
        max_queue_size: int = 2048,
        max_batch_size: int = 512,
        schedule_delay: float = 1.0,
        on_write: Callable[[float], None] | None = None,
        store_url: str | None = None,
        flush_timeout: float = 30.0,
        on_metrics: Callable[[Snapshot], None] | None = None,
    ) -> None:
        self._max_queue = max(1, max_queue_size)
        self._max_batch = max(1, min(max_batch_size, self._max_queue))
        self._delay = max(0.001, schedule_delay)
        self._flush_timeout = flush_timeout
        self._on_write = on_write
        self._queue: collections.deque[ReadableSpan | RootRecord] = collections.deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # the counters and the flush requests
        self._io = threading.Lock()  # the writer and taking batches off the queue
        self._flushes: list[_Flush] = []
        self._dropped = dict.fromkeys(DROP_REASONS, 0)
        self._exported = 0
        self._in_hand = 0  # spans the worker took off the queue and is handing to the writer
        self._stopping = False
        self._on_metrics = on_metrics
        # Whether a root record queued here has its request metrics counted by the writer (see root_metrics).
        self._folds = on_metrics is not None
        fallback = ThreadWriter(sink, self._report, on_metrics)
        self._writer: BatchWriter = (
            ProcessWriter(
                store_url,
                self._report,
                fallback,
                window=4 * self._max_queue,
                startup_buffer=4 * self._max_queue,
                on_metrics=on_metrics,
                orphan_grace=flush_timeout,  # as long as this server would wait for it at shutdown
            )
            if store_url
            else fallback
        )
        self._worker = threading.Thread(target=self._run, name="runtime-store-exporter", daemon=True)
        self._worker.start()

    # -- request path ------------------------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if span.context.trace_flags.sampled:
            self._enqueue(span)

    def _enqueue(self, item: ReadableSpan | RootRecord) -> bool:
        """Queue ``item``; True if a writer will count its request metrics (it is queued, and they are on)."""
        if self._stopping:
            return False
        queue = self._queue
        if len(queue) >= self._max_queue:
            self._drop("queue_full", 1)
            return False
        queue.append(item)
        if len(queue) % self._max_batch == 0:  # a batch is full
            self._hand_off()
        return self._folds

    # A request's root span as a plain record, when this exporter is the only one that wants roots: queued
    # as it is (the same method, not a call to it: one Python call fewer per request). It returns whether
    # the request's metrics are counted from the record; if not, the telemetry records them itself.
    on_end_root = _enqueue

    def _hand_off(self) -> None:
        """Hand a full batch to the writer process from this thread when that cannot wait for anything (the
        writer is ready and has room, and the worker thread is not using it); else wake the worker thread.

        Why not always the worker: it needs the GIL back after each blocking call it makes, and while the
        event loop is busy, a thread waiting for the GIL is woken at every release of it by the loop and
        mostly waits a switch interval anyway. Measured with the echo agent: ~13,000 futex calls a second,
        15-20 µs of CPU per request in the worker, and every request slower; handed over here, one batch
        costs what compacting and encoding it costs (which the worker spent under the same GIL) and one
        non-blocking send."""
        if not self._io.acquire(blocking=False):
            self._wake.set()  # the worker is at it: it drains the whole queue
            return
        try:
            if self._writer.can_take(self._max_batch):
                batch = self._take(self._max_batch)
                compacted = self._compact(batch)
                if compacted is None or self._writer.send_now(compacted, len(batch)):
                    return
        except Exception:
            log.debug("could not hand over a batch of spans", exc_info=True)
        finally:
            self._io.release()
        self._wake.set()

    # -- observability of the exporter itself ---------------------------------------------------------------

    def stats(self) -> tuple[int, dict[str, int], int]:
        """(spans exported, spans dropped by reason, spans queued or being written): read at scrape time."""
        with self._lock:
            return self._exported, dict(self._dropped), len(self._queue) + self._writer.pending()

    # -- lifecycle ---------------------------------------------------------------------------------------

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Write everything queued now; False if it was not all written within the timeout."""
        return self._flush(timeout_millis / 1000, metrics_only=False)

    def settle_metrics(self, timeout: float) -> bool:
        """Hand everything queued to the writer and wait until its request metrics are counted (not until
        it is written): what ``/metrics`` does before rendering. False if that took over ``timeout``."""
        if not self._folds:
            return True
        return self._flush(timeout, metrics_only=True)

    def _flush(self, timeout: float, *, metrics_only: bool) -> bool:
        if not self._worker.is_alive():
            return not self._queue
        flush = _Flush(timeout, metrics_only)
        with self._lock:
            self._flushes.append(flush)
        self._wake.set()
        return flush.done.wait(timeout) and flush.ok

    def shutdown(self, timeout: float = 30.0) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        self._worker.join(timeout)
        if self._worker.is_alive():
            left = len(self._queue) + self._in_hand + self._writer.pending()
            log.warning("span exporter still writing after %.0f s; %d spans not written yet", timeout, left)

    # -- worker --------------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self._delay)
            self._wake.clear()
            with self._io:
                if self._serve():
                    return

    def _serve(self) -> bool:
        """One round of the worker, holding the writer: True once it has stopped."""
        with self._lock:
            flushes, self._flushes = self._flushes, []
        if self._queue and not flushes and not self._stopping:
            self._writer.start()  # serving: worth a process; a flush or shutdown alone is not
        self._writer.poll()
        self._drain()
        if flushes:
            self._drain()  # whatever was queued just before the flush was asked for
            if all(flush.metrics_only for flush in flushes):  # no longer than its callers wait
                ok = self._writer.wait_folded(max(flush.timeout for flush in flushes))
            else:
                ok = self._writer.wait(self._flush_timeout)
            for flush in flushes:
                flush.ok = ok
                flush.done.set()
        if self._stopping:
            self._drain()
            self._writer.close(self._flush_timeout)
            return True
        return False

    def _take(self, count: int) -> list[ReadableSpan | RootRecord]:
        queue = self._queue
        batch: list[ReadableSpan | RootRecord] = []
        while queue and len(batch) < count:
            batch.append(queue.popleft())
        return batch

    def _drain(self) -> None:
        while self._queue:
            batch = self._take(self._max_batch)
            self._in_hand = len(batch)  # neither queued nor the writer's yet: counted at a stuck shutdown
            compacted = self._compact(batch)
            if compacted is not None:
                self._writer.write(compacted, len(batch))
            self._in_hand = 0

    def _compact(self, batch: list[ReadableSpan | RootRecord]) -> SpanBatch | None:
        try:
            return compact(batch)
        except Exception:
            if self._on_metrics is not None:  # the requests were served: their metrics still count
                fold_into(self._on_metrics, batch)
            self._report(Outcome(0, 0, len(batch), None))
            log.debug("could not compact %d spans", len(batch), exc_info=True)
            return None

    def _report(self, outcome: Outcome) -> None:
        """What a writer did with a batch; called in the worker thread."""
        with self._lock:
            self._exported += outcome.exported
            self._dropped["store_error"] += outcome.store_errors
            self._dropped["writer_lost"] += outcome.writer_lost
            self._dropped["invalid"] += outcome.invalid
        if outcome.seconds is not None and self._on_write is not None:
            self._on_write(outcome.seconds)

    def _drop(self, reason: str, count: int) -> None:
        with self._lock:
            self._dropped[reason] += count
