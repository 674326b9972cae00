"""Trace ids chosen by the serving layer, not by the SDK.

The service picks a request's trace id before the response starts, so it can go into the
``x-runtime-trace-id`` header and the response metadata before any span exists. The SDK asks its
``IdGenerator`` for the trace id of every new root span; :class:`RequestIdGenerator` answers with the id
handed over by :meth:`force` when there is one. The hand-over is per thread (``begin`` runs on the event
loop thread while sync agents may start their own root spans in worker threads), and it is consumed by the
first root span that asks, so a stale id can never be reused.
"""

from __future__ import annotations

import random
import threading

from opentelemetry.sdk.trace.id_generator import IdGenerator

__all__ = ["RequestIdGenerator"]


class RequestIdGenerator(IdGenerator):
    def __init__(self) -> None:
        self._next = threading.local()

    def force(self, trace_id: int | None) -> None:
        """Use ``trace_id`` for the next root span started on this thread."""
        self._next.trace_id = trace_id

    def generate_trace_id(self) -> int:
        forced: int | None = getattr(self._next, "trace_id", None)
        if forced:
            self._next.trace_id = None
            return forced
        return random.getrandbits(128) or 1

    def generate_span_id(self) -> int:
        return random.getrandbits(64) or 1

    def is_trace_id_random(self) -> bool:
        return True  # the service draws its ids from the same 128 random bits
