"""In-process scoring: a bounded asyncio queue drained by a few worker tasks of the app's event loop.

The default when no Redis is configured. Bounded on purpose: when scoring falls behind (a slow judge, a
burst of traffic), sampled requests beyond ``maxsize`` are counted as skipped (``queue_full``) rather than
held in memory. Scorers never run on the event loop itself (sync ones run in threads, see
:mod:`runtime.evaluation.execution`), so scoring competes with requests only for CPU.

On shutdown the queue is drained for at most ``drain_timeout`` seconds; what is left is counted as skipped
(``shutdown``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from runtime.evaluation.counters import ScoringCounters
from runtime.evaluation.engine import ScoringEngine, StoreFailed
from runtime.evaluation.job import ScoringJob

__all__ = ["LocalQueue"]

log = logging.getLogger("runtime.evaluation")


class LocalQueue:
    def __init__(
        self, engine: ScoringEngine, counters: ScoringCounters, *, maxsize: int = 1000, workers: int = 4
    ) -> None:
        self.engine = engine
        self.counters = counters
        self.workers = max(1, workers)
        self._queue: asyncio.Queue[ScoringJob] = asyncio.Queue(maxsize=max(1, maxsize))
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        counters.watch_depth(self._queue.qsize)

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
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self.counters.count_skipped("queue_full")
            return False
        return True

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._tasks = [
            asyncio.create_task(self._work(), name=f"scoring-worker-{i}") for i in range(self.workers)
        ]

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self.engine.process(job)
            except StoreFailed as exc:
                log.warning("%s; the scores of this request are lost", exc)
            except Exception:
                self.counters.count_job_failed()
                log.exception("scoring %s failed", job.trace_id)
            finally:
                self._queue.task_done()

    async def stop(self, drain_timeout: float = 10.0) -> None:
        self._loop = None  # no new jobs from here on
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_timeout):
                await self._queue.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        left = self._queue.qsize()
        if left:
            self.counters.count_skipped("shutdown", left)
            log.warning("%d sampled requests were not scored before shutdown", left)
        while not self._queue.empty():
            self._queue.get_nowait()
