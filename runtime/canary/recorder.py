"""The telemetry tap that feeds canary counters: record in memory on the request path, write to Redis off it.

``end(call)`` runs at the end of every request (it implements the serving layer's ``Telemetry`` protocol):
for a request outside any canary it is one attribute check; inside one it appends a small observation to a
deque. :meth:`StatsRecorder.run` drains the deque every ``interval`` into an :class:`Accumulator` and writes
it as one atomic, idempotent batch (see :meth:`CanaryStore.add_counters`). Online-evaluation scores come in
through :meth:`StatsRecorder.score` (see :mod:`runtime.canary.scores`) and are attributed to the canary
running on their model when they are written.

When Redis is down the sums keep growing in memory, and a batch whose write failed is retried unchanged
under the same id (so a write that did land but whose reply was lost is not counted twice). At most
``limit`` observations are held; beyond that they are dropped and the drops are counted, then written to
the ``dropped`` counter of their variant once Redis answers again, so a gap in the data is visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
from collections import deque
from dataclasses import dataclass

from runtime.canary.counters import Accumulator, Key, Observation, ScoreObservation
from runtime.canary.model import CHALLENGER, CHAMPION, CanaryState
from runtime.canary.router import ROUTE_KEY, Assignment
from runtime.canary.state import CanaryStore, CounterDelta
from runtime.errors import Unavailable
from runtime.protocol.call import Call

__all__ = ["StatsRecorder"]

log = logging.getLogger("runtime.canary")


@dataclass(frozen=True, slots=True)
class _Batch:
    batch_id: str
    deltas: dict[Key, CounterDelta]
    events: int


def _attribute(score: ScoreObservation, state: CanaryState | None) -> ScoreObservation | None:
    """The score tagged with its canary, or None when no canary compares the version it scored."""
    if state is None or score.variant not in (CHAMPION, CHALLENGER):
        return None
    d = state.definition
    version = d.challenger_version if score.variant == CHALLENGER else d.champion_version
    if score.model_version is not None and version is not None and score.model_version != str(version):
        return None
    return dataclasses.replace(score, canary_id=d.canary_id)


class StatsRecorder:
    def __init__(self, store: CanaryStore, *, replica_id: str, limit: int, interval: float = 0.25) -> None:
        self.store = store
        self.replica_id = replica_id
        self.limit = limit
        self.interval = interval
        self.dropped = 0
        self.last_error: str | None = None
        self._queue: deque[Observation | ScoreObservation] = deque()
        self._open = Accumulator()
        self._unsent: _Batch | None = None
        self._seq = itertools.count()
        self._wake = asyncio.Event()

    @property
    def held(self) -> int:
        """Observations in memory, not yet known to be in Redis."""
        unsent = self._unsent.events if self._unsent else 0
        return len(self._queue) + self._open.events + unsent

    # -- the Telemetry protocol ------------------------------------------------------------------------

    def begin(self, call: Call) -> object:
        return None

    def settle(self, call: Call, handle: object) -> None:
        return None

    def end(self, call: Call, handle: object) -> None:
        if call.variant is None:
            return
        route = call.extra.get(ROUTE_KEY)
        if not isinstance(route, Assignment) or route.forced:
            return  # a forced variant is someone debugging, not a sample of traffic
        if self._full((route.canary_id, call.variant)):
            return
        cost = call.extra.get("cost")
        self._queue.append(
            Observation(
                canary_id=route.canary_id,
                variant=call.variant,
                status=call.status,
                error_code=call.error_code,
                latency=call.latency_s,
                ttft=call.ttft_s if call.stream else None,
                input_tokens=call.input_tokens,
                output_tokens=call.output_tokens,
                cost=float(cost) if isinstance(cost, int | float) else None,
            )
        )

    def score(self, score: ScoreObservation) -> None:
        """One online-evaluation score; never blocks, never raises."""
        if not self._full((score.canary_id, score.variant) if score.canary_id else None):
            self._queue.append(score)

    def _full(self, key: Key | None) -> bool:
        if self.held < self.limit:
            return False
        self.dropped += 1
        if key is not None:
            self._open.dropped(key, 1)
        return True

    # -- off the request path --------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> bool:
        """Write what is held; False (and everything kept) when Redis does not answer."""
        try:
            await self._drain()
            if self._unsent is not None:
                await self._send(self._unsent)
            if self._open.ints or self._open.floats:
                batch = _Batch(f"{self.replica_id}-{next(self._seq)}", self._open.deltas(), self._open.events)
                self._open, self._unsent = Accumulator(), batch
                await self._send(batch)
        except Unavailable as exc:
            if self.last_error is None:
                log.warning("canary statistics held in memory: %s", exc.message)
            self.last_error = exc.message
            return False
        if self.last_error is not None:
            log.info("canary statistics written again after an outage")
        self.last_error = None
        return True

    async def _drain(self) -> None:
        """Move the queue into the open batch, attributing scores first (which may need Redis)."""
        models = {
            item.model
            for item in self._queue
            if isinstance(item, ScoreObservation) and item.canary_id is None
        }
        running = {model: await self.store.current(model) for model in models}
        while self._queue:
            item = self._queue.popleft()
            if isinstance(item, ScoreObservation) and item.canary_id is None:
                attributed = _attribute(item, running.get(item.model))
                if attributed is None:
                    continue
                item = attributed
            self._open.add(item)

    async def _send(self, batch: _Batch) -> None:
        await self.store.add_counters(batch.batch_id, batch.deltas)
        self._unsent = None
