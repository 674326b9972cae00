"""The bounded, thread-safe front door of every scoring queue: ``offer`` never blocks a request.

Jobs are offered at the end of a request, sometimes from a thread other than the event loop's (sync agents,
shutdown paths). An asyncio queue belongs to its loop, so offers from elsewhere are handed over with
``call_soon_threadsafe``; a full queue counts the job as skipped (``queue_full``) instead of waiting.
"""

from __future__ import annotations

import asyncio
import threading

from runtime.evaluation.counters import ScoringCounters
from runtime.evaluation.job import ScoringJob

__all__ = ["Intake"]


class Intake:
    def __init__(self, counters: ScoringCounters, maxsize: int) -> None:
        self.counters = counters
        self.jobs: asyncio.Queue[ScoringJob] = asyncio.Queue(maxsize=max(1, maxsize))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        counters.watch_depth(self.jobs.qsize)

    def open(self) -> None:
        """Bind to the running loop: offers are accepted from now on."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()

    def offer(self, job: ScoringJob) -> bool:
        loop = self._loop
        if loop is None:
            self.counters.count_skipped("shutdown")
            return False
        if threading.get_ident() != self._thread:  # asyncio queues belong to their loop's thread
            loop.call_soon_threadsafe(self._put, job)
            return True
        return self._put(job)

    def _put(self, job: ScoringJob) -> bool:
        try:
            self.jobs.put_nowait(job)
        except asyncio.QueueFull:
            self.counters.count_skipped("queue_full")
            return False
        return True
