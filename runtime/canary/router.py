"""Per-request routing for one running canary, and the bounded background runner of shadow requests.

The serving layer holds a router only while a canary runs on its model (``AgentService.router``), so a
request outside any canary pays one attribute check. :meth:`Router.choose` does no I/O: the definition was
read from Redis by the replica's watcher, assignment is a hash. When the watcher has not heard from Redis
for ``stale_after`` seconds, ``choose`` answers None and the champion serves: the challenger is unproven,
and an operator's rollback could not reach this replica.

The router is generic in the agent type so that this package never imports the agents or the serving layer.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from runtime.canary.assignment import assign, sticky_key
from runtime.canary.model import CHALLENGER, CHAMPION, CanaryDefinition, Mode
from runtime.protocol.call import Call, ModelInfo

__all__ = ["FORCE_HEADER", "ROUTE_KEY", "Assignment", "Mirror", "Router", "shadow_call"]

log = logging.getLogger("runtime.canary")

A = TypeVar("A")

ROUTE_KEY = "canary.route"  # the Assignment, in Call.extra, for the serving layer and the stats tap
FORCE_HEADER = "x-runtime-variant"


@dataclass(frozen=True, slots=True)
class Assignment(Generic[A]):
    """Who answers this request. In shadow mode ``shadow`` is the challenger to mirror it to afterwards."""

    canary_id: str
    variant: str
    agent: A
    shadow: A | None = None
    mirror: Mirror | None = None
    forced: bool = False
    version: int | None = None  # the canary's version of this variant: another one answering is not counted


class Mirror:
    """Runs shadow requests as background tasks: at most ``limit`` at once, the rest dropped and counted.

    Tasks start in an empty context (nothing of the champion's request, its span included, leaks into the
    shadow's) and are kept referenced until done; :meth:`close` cancels what is left at shutdown.
    """

    def __init__(self, limit: int = 64) -> None:
        self.limit = limit
        self.dropped = 0
        self.started = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, run: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        if len(self._tasks) >= self.limit:
            self.dropped += 1
            return False
        task = asyncio.get_running_loop().create_task(run(), context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._done)
        self.started += 1
        return True

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a shadow request failed outside the agent", exc_info=task.exception())

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Router(Generic[A]):
    def __init__(
        self,
        definition: CanaryDefinition,
        champion: Callable[[], A],
        challenger: A,
        *,
        fresh: Callable[[], bool],
        mirror: Mirror,
        allow_force: bool = False,
    ) -> None:
        self.definition = definition
        self.champion = champion
        self.challenger = challenger
        self.fresh = fresh
        self.mirror = mirror
        self.allow_force = allow_force

    def choose(self, call: Call, headers: Mapping[str, str]) -> Assignment[A] | None:
        """The variant for this request, or None for "the champion, outside the canary"."""
        if not self.fresh():
            return None
        d = self.definition
        forced = headers.get(FORCE_HEADER) if self.allow_force else None
        if forced is not None:  # a value names a variant whatever its case and spaces: "Challenger " too
            forced = forced.strip().lower()
        if forced in (CHAMPION, CHALLENGER):
            agent = self.challenger if forced == CHALLENGER else self.champion()
            return Assignment(d.canary_id, forced, agent, forced=True, version=self._version(forced))
        key = sticky_key(d.sticky_by, call.user_id, call.session_id, headers)
        variant = assign(d.canary_id, key, d.weight)
        if d.mode is Mode.SHADOW:
            shadow = self.challenger if variant == CHALLENGER else None
            version = d.champion_version
            return Assignment(d.canary_id, CHAMPION, self.champion(), shadow, self.mirror, version=version)
        agent = self.challenger if variant == CHALLENGER else self.champion()
        return Assignment(d.canary_id, variant, agent, version=self._version(variant))

    def _version(self, variant: str) -> int | None:
        d = self.definition
        return d.challenger_version if variant == CHALLENGER else d.champion_version


def shadow_call(call: Call, route: Assignment[Any], model: ModelInfo, trace_id: str) -> Call:
    """The Call of the shadow request mirrored from ``call``: the challenger's own trace, never returned."""
    shadow = Call(
        request_id=f"{call.request_id}-shadow",
        endpoint=call.endpoint,
        stream=call.stream,
        model=model,
        trace_id=trace_id,
        variant=CHALLENGER,
        session_id=call.session_id,
        user_id=call.user_id,
        input_preview=call.input_preview,
    )
    shadow.extra[ROUTE_KEY] = Assignment(route.canary_id, CHALLENGER, route.shadow)
    shadow.extra["shadow"] = True
    return shadow
