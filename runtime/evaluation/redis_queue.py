"""The producer side of distributed scoring: sampled requests -> a Redis Stream, never on the request path.

``offer`` puts the job in a small in-memory buffer (bounded, full -> skipped ``queue_full``); one task
forwards buffered jobs to the stream in pipelined ``XADD`` batches. Redis being slow or down therefore costs
requests nothing: jobs that cannot be written are counted (``redis_error``) and dropped, as DESIGN asks of
every feature that depends on Redis. The stream is bounded too: while it holds ``max_len`` entries (workers
delete what they acknowledge, so that is the backlog) new jobs are skipped as ``stream_full`` rather than
trimming jobs that are already waiting.

redis-py is imported when the queue starts, not with this module: every server imports online evaluation,
most run without Redis, and the import takes a tenth of a cold start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from runtime.evaluation.counters import ScoringCounters
from runtime.evaluation.intake import Intake
from runtime.evaluation.job import ScoringJob

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["JOB_FIELD", "RedisQueue"]

log = logging.getLogger("runtime.evaluation")

JOB_FIELD = "job"
_BATCH = 100
_WARN_EVERY = 60.0


class RedisQueue(Intake):
    def __init__(
        self,
        url: str,
        stream: str,
        counters: ScoringCounters,
        *,
        buffer: int = 1000,
        max_len: int = 100_000,
    ) -> None:
        super().__init__(counters, buffer)
        self.url = url
        self.stream = stream
        self.max_len = max_len
        self._redis: aioredis.Redis | None = None
        self._failures: tuple[type[BaseException], ...] = (OSError,)
        self._task: asyncio.Task[None] | None = None
        self._warned = 0.0

    async def start(self) -> None:
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        self.open()
        self._failures = (RedisError, OSError)
        self._redis = aioredis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=2)
        self._task = asyncio.create_task(self._forward(), name="scoring-stream-producer")

    async def _forward(self) -> None:
        while True:
            batch = [await self.jobs.get()]
            while len(batch) < _BATCH and not self.jobs.empty():
                batch.append(self.jobs.get_nowait())
            await self._send(batch)
            for _ in batch:
                self.jobs.task_done()

    async def _send(self, batch: list[ScoringJob]) -> None:
        assert self._redis is not None
        try:
            backlog = await self._redis.xlen(self.stream)
            room = max(0, self.max_len - int(backlog))
            if room < len(batch):
                self.counters.count_skipped("stream_full", len(batch) - room)
                batch = batch[:room]
            if not batch:
                return
            async with self._redis.pipeline(transaction=False) as pipe:
                for job in batch:
                    pipe.xadd(self.stream, {JOB_FIELD: job.model_dump_json()})
                await pipe.execute()
        except self._failures as exc:
            self.counters.count_skipped("redis_error", len(batch))
            now = time.monotonic()
            if now - self._warned > _WARN_EVERY:
                self._warned = now
                log.warning("cannot queue %d scoring jobs in Redis: %s", len(batch), exc)

    async def stop(self, drain_timeout: float = 5.0) -> None:
        self._loop = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_timeout):
                await self.jobs.join()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        left = self.jobs.qsize()
        if left:
            self.counters.count_skipped("shutdown", left)
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
