"""The trace store, opened on first use and reopened after a failure.

The server must start and answer while the store is down (DESIGN: the store being down degrades traces,
never requests), so nothing opens it at startup. The first export or trace query opens it; a failed open
is remembered for ``retry_after`` seconds so a dead database costs one attempt per interval, not one per
batch or per query.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from registry.entities import SpanRecord, TraceRecord
from runtime.errors import Unavailable

if TYPE_CHECKING:
    from registry.store import SqlStore

__all__ = ["LazyStore"]


class LazyStore:
    def __init__(self, url: str, *, retry_after: float = 1.0, what: str = "trace store") -> None:
        self.url = url
        self.what = what  # in its error messages
        self._retry_after = retry_after
        self._store: SqlStore | None = None
        self._failed_at: float | None = None
        self._failure = ""
        self._lock = threading.Lock()
        self._closed = False

    def get(self) -> SqlStore:
        """The open store; raises :class:`~runtime.errors.Unavailable` while it cannot be opened."""
        store = self._store
        if store is not None:
            return store
        with self._lock:
            if self._store is not None:
                return self._store
            if self._closed:
                raise Unavailable(f"the {self.what} is closed")
            now = time.monotonic()
            if self._failed_at is not None and now - self._failed_at < self._retry_after:
                raise Unavailable(f"the {self.what} is unavailable: {self._failure}", retry_after=1)
            try:
                from registry.store import SqlStore

                self._store = SqlStore(self.url)
            except Exception as exc:
                self._failed_at = now
                self._failure = getattr(exc, "message", None) or type(exc).__name__
                raise Unavailable(f"the {self.what} is unavailable: {self._failure}", retry_after=1) from exc
            self._failed_at = None
            return self._store

    def log_traces(self, traces: Sequence[TraceRecord], spans: Sequence[SpanRecord]) -> None:
        self.get().log_traces(traces, spans)

    def log_trace_rows(
        self, trace_rows: Sequence[Mapping[str, Any]], span_rows: Sequence[Mapping[str, Any]]
    ) -> None:
        self.get().log_trace_rows(trace_rows, span_rows)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            store, self._store = self._store, None
        if store is not None:
            store.close()
