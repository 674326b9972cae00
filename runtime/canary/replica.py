"""What one server does for canaries: watch Redis, load the challenger, route, record, and act on the policy.

Every ``poll_interval`` (0.5 s by default) the replica reads the running canary of the model it serves. A
new one has its challenger loaded (in the background, by the ``load`` callback the composition root gives,
which also makes it answer its input example) and a :class:`Router` installed in the serving layer; an ended
one has its router removed, after the ``promoted`` callback has put the challenger in the champion's place
when it won. A challenger that cannot be loaded rolls the canary back, with the reason in the audit log.

Redis being down never fails a request: routing needs no Redis, and after ``stale_after`` seconds without an
answer the router sends everything to the champion; statistics wait in memory (see
:class:`~runtime.canary.recorder.StatsRecorder`); :meth:`problem` tells ``/ready`` the feature is degraded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Generic, TypeVar

from runtime.canary.control import CanaryControl
from runtime.canary.model import CanaryDefinition, CanaryState, Status, now_ms
from runtime.canary.operator import read_report
from runtime.canary.policy import decide
from runtime.canary.recorder import StatsRecorder
from runtime.canary.router import Mirror, Router
from runtime.canary.state import CanaryStore
from runtime.errors import Conflict, RuntimeErrorBase, Unavailable

__all__ = ["CanaryReplica"]

log = logging.getLogger("runtime.canary")

A = TypeVar("A")

PROMOTION_RETRY_S = (
    30.0  # after a refused promotion (the alias moved by hand), before this replica tries again
)


class CanaryReplica(Generic[A]):
    def __init__(
        self,
        *,
        control: CanaryControl,
        model: str,
        champion: Callable[[], A],
        load: Callable[[str], Awaitable[A]],
        install: Callable[[Router[A] | None], None],
        promoted: Callable[[CanaryDefinition, A], None],
        replica_id: str,
        poll_interval: float = 0.5,
        stale_after: float = 2.0,
        allow_force: bool = False,
        buffer_limit: int = 100_000,
        decide_interval: float = 1.0,
        expected_scores: Callable[[], Collection[str]] = tuple,
    ) -> None:
        self.control = control
        self.store: CanaryStore = control.store
        self.model = model
        self.expected_scores = expected_scores  # the scores this replica's scorers report (see build_report)
        self._published: tuple[str, frozenset[str]] | None = None  # the expected scores last added to Redis
        self.champion = champion
        self.load = load
        self.install = install
        self.promoted = promoted
        self.replica_id = replica_id
        self.poll_interval = poll_interval
        self.stale_after = stale_after
        self.allow_force = allow_force
        self.decide_interval = decide_interval
        self.recorder = StatsRecorder(self.store, replica_id=replica_id, limit=buffer_limit)
        self.mirror = Mirror()
        self.router: Router[A] | None = None
        self.last_ok: float | None = None
        self.last_error: str | None = None
        self.load_error: str | None = None
        self._loading: tuple[str, asyncio.Task[None]] | None = None
        self._given_up: set[str] = set()
        self._decided_at = 0.0
        self._promotion_held: dict[str, float] = {}  # canary id -> monotonic time before which not to promote

    def fresh(self) -> bool:
        return self.last_ok is not None and time.monotonic() - self.last_ok < self.stale_after

    def problem(self) -> str | None:
        """Why canaries are degraded on this replica (for ``/ready``), or None."""
        if not self.fresh():
            held, dropped = self.recorder.held, self.recorder.dropped
            return (
                f"Redis unreachable ({self.last_error or 'no answer yet'}): serving the champion only, "
                f"{held} canary statistics held in memory, {dropped} dropped"
            )
        if self.recorder.last_error:
            return f"canary statistics not written: {self.recorder.last_error}"
        return self.load_error

    async def run(self) -> None:
        """Run for the app's lifetime: the poll loop and the statistics writer."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.recorder.run(), name="canary-stats")
            while True:
                try:
                    await self.poll()
                except Exception:  # a bug or a malformed record must not stop the watch
                    log.exception("canary: poll failed")
                await asyncio.sleep(self.poll_interval)

    async def close(self) -> None:
        """Write what statistics can be written (bounded by the Redis timeout), stop shadows, disconnect."""
        if self._loading is not None:
            self._loading[1].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loading[1]
        await self.mirror.close()
        await self.recorder.flush()
        await self.store.close()

    async def poll(self) -> None:
        try:
            state = await self.store.current(self.model)
        except Unavailable as exc:
            if self.fresh() or self.last_error is None:
                log.warning("canary: %s; the champion serves alone while this lasts", exc.message)
            self.last_error = exc.message
            return
        self.last_ok, self.last_error = time.monotonic(), None
        try:
            await self._follow(state)
        except Unavailable as exc:
            self.last_error = exc.message

    async def _follow(self, state: CanaryState | None) -> None:
        router = self.router
        if router is not None and (state is None or state.canary_id != router.definition.canary_id):
            await self._ended(router)
            router = None
        if self.load_error is not None and (state is None or state.canary_id not in self._given_up):
            self.load_error = None  # the canary whose challenger failed here is over
        if state is None:
            return
        if state.status is Status.PROMOTING:  # a claim abandoned by its holder is settled by whoever sees it
            state = await self.control.settle_claim(state, self.replica_id)
            if state.status.ended:
                return  # finished: the next poll finds no canary running and ends the router
        if router is not None:
            await self._publish_expected(state.canary_id)
            await self._apply_policy(state)
        elif state.canary_id not in self._given_up and (
            self._loading is None or self._loading[0] != state.canary_id
        ):
            task = asyncio.create_task(self._load(state.definition), name=f"canary-load-{state.canary_id}")
            self._loading = (state.canary_id, task)

    async def _ended(self, router: Router[A]) -> None:
        final = await self.store.get(router.definition.canary_id)
        if final is not None and final.status is Status.PROMOTED:
            self.promoted(final.definition, router.challenger)
        self.router = None
        self.install(None)
        log.info("canary %s ended (%s)", router.definition.canary_id, final.status.value if final else "gone")

    async def _load(self, d: CanaryDefinition) -> None:
        try:
            challenger = await self.load(d.challenger_uri)
        except RuntimeErrorBase as exc:
            await self._load_failed(d, exc.message)
            return
        finally:
            self._loading = None
        self.load_error = None
        self.router = Router(
            d, self.champion, challenger, fresh=self.fresh, mirror=self.mirror, allow_force=self.allow_force
        )
        self.install(self.router)
        log.info(
            "canary %s: routing %g%% of %s to version %s (%s)",
            d.canary_id,
            d.weight,
            d.model,
            d.challenger_version,
            d.mode.value,
        )

    async def _load_failed(self, d: CanaryDefinition, message: str) -> None:
        self._given_up.add(d.canary_id)
        self.load_error = f"challenger {d.challenger_uri} of canary {d.canary_id} failed to load: {message}"
        log.error("%s; rolling the canary back", self.load_error)
        reason = f"challenger {d.challenger_uri} failed to load on {self.replica_id}: {message}"
        with contextlib.suppress(Conflict, Unavailable):
            await self.control.rollback(d.canary_id, self.replica_id, reason)

    async def _publish_expected(self, canary_id: str) -> None:
        """Add this replica's scorers to the canary's expected scores, which every view and replica reads
        (see :func:`~runtime.canary.operator.read_report`); only when they changed."""
        names = frozenset(self.expected_scores())
        if self._published is not None and self._published[0] == canary_id and names <= self._published[1]:
            return
        await self.store.add_expected(canary_id, names)
        known = self._published[1] if self._published and self._published[0] == canary_id else frozenset()
        self._published = (canary_id, names | known)

    async def _apply_policy(self, state: CanaryState) -> None:
        d = state.definition
        if not (d.auto or d.max_duration_s) or time.monotonic() - self._decided_at < self.decide_interval:
            return
        self._decided_at = time.monotonic()
        report = await read_report(self.store, state)
        decision = decide(state, report, now_ms())
        if decision is None:
            return
        promote = decision.action == "promote"
        if promote and time.monotonic() < self._promotion_held.get(d.canary_id, 0.0):
            return
        act = self.control.promote if promote else self.control.rollback
        try:
            await act(d.canary_id, self.replica_id, decision.reason, decision.numbers)
        except Conflict:
            # Another replica or an operator decided first, or the promotion was refused (the champion
            # alias moved by hand): not again for a while; a rollback still may.
            if promote:
                self._promotion_held[d.canary_id] = time.monotonic() + PROMOTION_RETRY_S
            return
        log.info("canary %s: %s (%s)", d.canary_id, decision.action, decision.reason)
