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

A request forced to a variant with the debug header (``x-runtime-variant``) is someone debugging, not a
sample of traffic: it is not counted, and neither are its scores. Those may be computed by another process
(``runtime worker``), so the trace ids of forced requests are written to Redis as the request begins
(:meth:`CanaryStore.mark_forced`), long before its score can exist, and every recorder checks the scores it
attributes against them.
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
        self._forced: dict[str, set[str]] = {}  # canary id -> trace ids of forced requests, not yet in Redis

    @property
    def held(self) -> int:
        """Observations in memory, not yet known to be in Redis."""
        unsent = self._unsent.events if self._unsent else 0
        return len(self._queue) + self._open.events + unsent

    # -- the Telemetry protocol ------------------------------------------------------------------------

    def begin(self, call: Call) -> object:
        route = call.extra.get(ROUTE_KEY)
        if not isinstance(route, Assignment) or not route.forced or not call.trace_id:
            return None
        if sum(map(len, self._forced.values())) < self.limit:  # debugging traffic: bounded all the same
            self._forced.setdefault(route.canary_id, set()).add(f"tr-{call.trace_id}")
            self._wake.set()
        return None

    def settle(self, call: Call, handle: object) -> None:
        return None

    def end(self, call: Call, handle: object) -> None:
        if call.variant is None:
            return
        route = call.extra.get(ROUTE_KEY)
        if not isinstance(route, Assignment) or route.forced:
            return  # a forced variant is someone debugging, not a sample of traffic
        if route.version is not None and call.model.version not in (None, str(route.version)):
            return  # the champion alias was moved by hand: another version is outside this comparison
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
            await self._mark_forced()
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

    async def _mark_forced(self) -> None:
        marks, self._forced = self._forced, {}
        try:
            if marks:
                await self.store.mark_forced(marks)
        except Unavailable:
            for canary_id, trace_ids in marks.items():  # kept, with what came in meanwhile
                self._forced.setdefault(canary_id, set()).update(trace_ids)
            raise

    async def _drain(self) -> None:
        """Move the queue into the open batch, attributing scores first (which needs Redis). Only what was
        queued when it started: what arrives meanwhile waits for the next round."""
        queued = list(self._queue)
        scores = [i for i in queued if isinstance(i, ScoreObservation) and i.canary_id is None]
        running = {model: await self.store.current(model) for model in {s.model for s in scores}}
        attributed = [_attribute(s, running.get(s.model)) for s in scores]
        forced = await self._forced_traces([s for s in attributed if s is not None])
        kept = [s if s is not None and (s.canary_id, s.trace_id) not in forced else None for s in attributed]
        first = await self._first_scores([s for s in kept if s is not None])
        found = iter(kept)
        for _ in queued:
            item = self._queue.popleft()
            if isinstance(item, ScoreObservation) and item.canary_id is None:
                score = next(found)
                if score is None:
                    continue
                if score.trace_id is not None:
                    marker = (score.canary_id, _scored(score))
                    if marker not in first:
                        continue  # counted before (or forced)
                    first.discard(marker)  # a second copy in this same round is not first either
                item = score
            self._open.add(item)

    async def _first_scores(self, scores: list[ScoreObservation]) -> set[tuple[str | None, str]]:
        """(canary id, trace and score name) of the scores their canary has not counted before."""
        keys: dict[str, list[str]] = {}
        for s in scores:
            if s.canary_id is not None and s.trace_id is not None:
                keys.setdefault(s.canary_id, []).append(_scored(s))
        first: set[tuple[str | None, str]] = set()
        for canary_id, members in keys.items():
            first |= {(canary_id, m) for m in await self.store.first_scores(canary_id, members)}
        return first

    async def _forced_traces(self, scores: list[ScoreObservation]) -> set[tuple[str | None, str | None]]:
        """(canary id, trace id) of the scores whose request was forced to its variant."""
        traces: dict[str, list[str]] = {}
        for s in scores:
            if s.canary_id is not None and s.trace_id is not None:
                traces.setdefault(s.canary_id, []).append(s.trace_id)
        forced: set[tuple[str | None, str | None]] = set()
        for canary_id, trace_ids in traces.items():
            forced |= {(canary_id, t) for t in await self.store.forced(canary_id, trace_ids)}
        return forced

    async def _send(self, batch: _Batch) -> None:
        await self.store.add_counters(batch.batch_id, batch.deltas)
        self._unsent = None


def _scored(score: ScoreObservation) -> str:
    """What makes a score one observation of a canary: its request (trace) and its name."""
    return f"{score.trace_id} {score.name}"
