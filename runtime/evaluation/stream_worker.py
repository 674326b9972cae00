"""``StreamWorker``: the consumer of the scoring stream, what ``runtime worker`` runs.

Any number of workers on any machines share one consumer group, so each job goes to one of them. A job is
acknowledged (and deleted, keeping the stream's length equal to its backlog) only once its assessments are
stored. If a worker dies mid-job the entry stays in the group's pending list; every worker periodically
runs ``XAUTOCLAIM`` and takes over entries idle for longer than ``claim_idle`` seconds, so the job is
scored by someone else. ``claim_idle`` must therefore exceed the longest a healthy job takes (scorer
timeout x attempts, plus the wait for the trace), or a slow job is scored twice (harmlessly, but twice).
Because assessment ids are deterministic, whatever the dead worker had already written is not written
again: each score is stored exactly once.

Retries: a scorer that raises is retried with backoff inside the job (:class:`ScorerRunner`); a job whose
results cannot be stored stays pending and is retried after ``claim_idle`` (the backoff of the job level).
A job delivered more than ``max_deliveries`` times, or that cannot be parsed, is a poison job: it moves
to the dead-letter stream ``<stream>:dead`` with the reason, and is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from typing import Any

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import RedisError, ResponseError

from runtime.evaluation.engine import ScoringEngine, StoreFailed
from runtime.evaluation.job import ScoringJob
from runtime.evaluation.redis_queue import JOB_FIELD

__all__ = ["StreamWorker", "default_consumer_name"]

log = logging.getLogger("runtime.evaluation.worker")

Entry = tuple[str, dict[str, str]]


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class StreamWorker:
    def __init__(
        self,
        engine: ScoringEngine,
        url: str,
        stream: str,
        *,
        group: str = "scorers",
        consumer: str | None = None,
        concurrency: int = 4,
        claim_idle: float = 120.0,
        max_deliveries: int = 5,
        block: float = 1.0,
    ) -> None:
        self.engine = engine
        self.url = url
        self.stream = stream
        self.dead_letter = f"{stream}:dead"
        self.group = group
        self.consumer = consumer or default_consumer_name()
        self.concurrency = max(1, concurrency)
        self.claim_idle = claim_idle
        self.max_deliveries = max_deliveries
        self.block = block
        self.processed = 0
        self._redis: aioredis.Redis | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._handling: set[str] = set()  # entry ids in hand: a slow job of ours must not be claimed by us
        self._last_claim = 0.0

    async def run(self, stop: asyncio.Event, drain_timeout: float = 30.0) -> None:
        """Consume until ``stop`` is set, then finish the jobs in hand (bounded) and return."""
        self._redis = aioredis.Redis.from_url(self.url, decode_responses=True, socket_connect_timeout=5)
        try:
            await self._ensure_group()
            log.info("worker %s consuming %s (group %s)", self.consumer, self.stream, self.group)
            while not stop.is_set():
                try:
                    await self._step()
                except (RedisError, OSError) as exc:
                    if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                        # Redis came back empty (restarted without persistence): stream and group are gone.
                        log.warning(
                            "consumer group %s is gone (Redis restarted empty?): creating it", self.group
                        )
                        try:
                            await self._ensure_group()
                            continue
                        except (RedisError, OSError) as again:
                            exc = again
                    log.warning("Redis error, retrying in 1 s: %s", exc)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=1.0)
            if self._inflight:
                await asyncio.wait(self._inflight, timeout=drain_timeout)
        finally:
            for task in self._inflight:
                task.cancel()
            await asyncio.gather(*self._inflight, return_exceptions=True)
            await self._redis.aclose()
            await self.engine.aclose()

    async def _ensure_group(self) -> None:
        assert self._redis is not None
        try:
            await self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _step(self) -> None:
        free = self.concurrency - len(self._inflight)
        if free <= 0:
            await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
            return
        entries: list[tuple[Entry, int]] = []
        now = time.monotonic()
        if now - self._last_claim >= min(self.claim_idle / 2, 5.0):
            self._last_claim = now
            entries = await self._claim(free)
        if not entries:
            entries = [(entry, 1) for entry in await self._read(free)]
        for entry, deliveries in entries:
            self._handling.add(entry[0])
            task = asyncio.create_task(self._handle(entry, deliveries))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _read(self, count: int) -> list[Entry]:
        assert self._redis is not None
        reply: Any = await self._redis.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=count, block=int(self.block * 1000)
        )
        return [(entry_id, fields) for _, items in reply or [] for entry_id, fields in items if fields]

    async def _claim(self, count: int) -> list[tuple[Entry, int]]:
        """Take over entries another (probably dead) consumer has held for too long, with delivery counts."""
        assert self._redis is not None
        reply: Any = await self._redis.xautoclaim(
            self.stream, self.group, self.consumer, int(self.claim_idle * 1000), "0-0", count=count
        )
        claimed: list[tuple[Entry, int]] = []
        for entry_id, fields in reply[1]:
            if not fields or entry_id in self._handling:
                continue
            info: Any = await self._redis.xpending_range(self.stream, self.group, entry_id, entry_id, 1)
            deliveries = int(info[0]["times_delivered"]) if info else 1
            log.info("reclaimed job %s (delivery %d)", entry_id, deliveries)
            claimed.append(((entry_id, fields), deliveries))
        return claimed

    async def _handle(self, entry: Entry, deliveries: int) -> None:
        try:
            await self._handle_entry(entry, deliveries)
        finally:
            self._handling.discard(entry[0])

    async def _handle_entry(self, entry: Entry, deliveries: int) -> None:
        entry_id, fields = entry
        raw = fields.get(JOB_FIELD, "")
        try:
            job = ScoringJob.model_validate_json(raw)
        except ValidationError as exc:
            await self._dead(entry_id, raw, f"malformed job: {exc.errors()[0]['msg']}")
            return
        if deliveries > self.max_deliveries:
            await self._dead(entry_id, raw, f"delivered {deliveries} times without success")
            return
        try:
            await self.engine.process(job)
        except StoreFailed as exc:
            log.warning("%s; job %s stays pending for a retry", exc, entry_id)
            return
        except Exception:
            log.exception("scoring job %s failed; it stays pending for a retry", entry_id)
            return
        await self._ack(entry_id)
        self.processed += 1

    async def _ack(self, entry_id: str) -> None:
        assert self._redis is not None
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xack(self.stream, self.group, entry_id)
                pipe.xdel(self.stream, entry_id)
                await pipe.execute()
        except (
            RedisError,
            OSError,
        ) as exc:  # the results are stored; a redelivery would only find them there
            log.warning("cannot acknowledge job %s: %s", entry_id, exc)

    async def _dead(self, entry_id: str, raw: str, reason: str) -> None:
        assert self._redis is not None
        log.error("job %s moved to %s: %s", entry_id, self.dead_letter, reason)
        await self._redis.xadd(
            self.dead_letter,
            {JOB_FIELD: raw, "reason": reason, "entry_id": entry_id, "consumer": self.consumer},
        )
        await self._ack(entry_id)
