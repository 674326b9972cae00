"""The producer side of distributed scoring: sampled requests -> a Redis Stream, never on the request path.

``offer`` puts the job in a small in-memory buffer (bounded, full -> skipped ``queue_full``); one task
forwards buffered jobs to the stream in pipelined ``XADD`` batches. Redis being slow or down therefore costs
requests nothing: jobs that cannot be written are counted (``redis_error``) and dropped, as DESIGN asks of
every feature that depends on Redis. The stream is bounded too: while it holds ``max_len`` entries (workers
delete what they acknowledge, so that is the backlog) new jobs are skipped as ``stream_full`` rather than
trimming jobs that are already waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from runtime.evaluation.counters import ScoringCounters
from runtime.evaluation.job import ScoringJob

__all__ = ["JOB_FIELD", "RedisQueue"]

log = logging.getLogger("runtime.evaluation")

JOB_FIELD = "job"
_BATCH = 100
_WARN_EVERY = 60.0


class RedisQueue:
    def __init__(
        self,
        url: str,
        stream: str,
        counters: ScoringCounters,
        *,
        buffer: int = 1000,
        max_len: int = 100_000,
    ) -> None:
        self.url = url
        self.stream = stream
        self.counters = counters
        self.max_len = max_len
        self._buffer: asyncio.Queue[ScoringJob] = asyncio.Queue(maxsize=max(1, buffer))
        self._redis: aioredis.Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._warned = 0.0
        counters.watch_depth(self._buffer.qsize)

    def offer(self, job: ScoringJob) -> bool:
        loop = self._loop
        if loop is None:
            self.counters.count_skipped("shutdown")
            return False
        if threading.get_ident() != self._thread:
            loop.call_soon_threadsafe(self._put, job)
            return True
        return self._put(job)

    def _put(self, job: ScoringJob) -> bool:
        try:
            self._buffer.put_nowait(job)
        except asyncio.QueueFull:
            self.counters.count_skipped("queue_full")
            return False
        return True

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._redis = aioredis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=2)
        self._task = asyncio.create_task(self._forward(), name="scoring-stream-producer")

    async def _forward(self) -> None:
        while True:
            batch = [await self._buffer.get()]
            while len(batch) < _BATCH and not self._buffer.empty():
                batch.append(self._buffer.get_nowait())
            await self._send(batch)
            for _ in batch:
                self._buffer.task_done()

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
        except (RedisError, OSError) as exc:
            self.counters.count_skipped("redis_error", len(batch))
            now = time.monotonic()
            if now - self._warned > _WARN_EVERY:
                self._warned = now
                log.warning("cannot queue %d scoring jobs in Redis: %s", len(batch), exc)

    async def stop(self, drain_timeout: float = 5.0) -> None:
        self._loop = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_timeout):
                await self._buffer.join()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        left = self._buffer.qsize()
        if left:
            self.counters.count_skipped("shutdown", left)
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
