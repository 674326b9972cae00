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

from runtime.evaluation.counters import ScoringCounters
from runtime.evaluation.engine import ScoringEngine, StoreFailed
from runtime.evaluation.intake import Intake

__all__ = ["LocalQueue"]

log = logging.getLogger("runtime.evaluation")


class LocalQueue(Intake):
    def __init__(
        self, engine: ScoringEngine, counters: ScoringCounters, *, maxsize: int = 1000, workers: int = 4
    ) -> None:
        super().__init__(counters, maxsize)
        self.engine = engine
        self.workers = max(1, workers)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.open()
        self._tasks = [
            asyncio.create_task(self._work(), name=f"scoring-worker-{i}") for i in range(self.workers)
        ]

    async def _work(self) -> None:
        while True:
            job = await self.jobs.get()
            try:
                await self.engine.process(job)
            except StoreFailed as exc:
                log.warning("%s; the scores of this request are lost", exc)
            except Exception:
                self.counters.count_job_failed()
                log.exception("scoring %s failed", job.trace_id)
            finally:
                self.jobs.task_done()

    async def stop(self, drain_timeout: float = 10.0) -> None:
        self._loop = None  # no new jobs from here on
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_timeout):
                await self.jobs.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        left = self.jobs.qsize()
        if left:
            self.counters.count_skipped("shutdown", left)
            log.warning("%d sampled requests were not scored before shutdown", left)
        while not self.jobs.empty():
            self.jobs.get_nowait()
