"""FifoTimers: the shared queue behind every request's deadline and disconnect watch."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from runtime.timers import FifoTimers

REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")


class Owner:
    def __init__(self, fired: list[tuple[str, float, str]], name: str, fail: bool = False) -> None:
        self.fired = fired
        self.name = name
        self.fail = fail

    def expire(self) -> None:
        self.fired.append((self.name, asyncio.get_running_loop().time(), REQUEST.get()))
        if self.fail:
            raise RuntimeError("boom")


def test_timers_fire_in_order_no_earlier_than_their_delay_in_an_empty_context() -> None:
    async def main() -> tuple[list[tuple[str, float, str]], dict[str, float], int]:
        timers = FifoTimers(0.05)
        fired: list[tuple[str, float, str]] = []
        armed: dict[str, float] = {}
        loop = asyncio.get_running_loop()
        for name in ("a", "b", "c"):
            REQUEST.set(f"request {name}")
            armed[name] = loop.time()
            timers.add(Owner(fired, name))
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.15)
        return fired, armed, timers.pending()

    fired, armed, pending = asyncio.run(main())
    assert [name for name, _, _ in fired] == ["a", "b", "c"]
    for name, at, context in fired:
        assert at >= armed[name] + 0.05 - 1e-6
        assert context == "none"  # not the context of the request that armed the loop timer
    assert pending == 0


def test_a_discarded_timer_never_fires_and_the_others_still_do() -> None:
    async def main() -> list[str]:
        timers = FifoTimers(0.02)
        fired: list[tuple[str, float, str]] = []
        first, second, third = Owner(fired, "first"), Owner(fired, "second"), Owner(fired, "third")
        for owner in (first, second, third):
            timers.add(owner)
        timers.discard(first)  # the one the loop timer was set for
        timers.discard(third)
        timers.discard(Owner(fired, "never armed"))  # nothing to do
        await asyncio.sleep(0.1)
        assert timers.pending() == 0
        return [name for name, _, _ in fired]

    assert asyncio.run(main()) == ["second"]


def test_arming_again_restarts_the_timer() -> None:
    async def main() -> tuple[list[str], float, float]:
        timers = FifoTimers(0.05)
        fired: list[tuple[str, float, str]] = []
        loop = asyncio.get_running_loop()
        early, late = Owner(fired, "early"), Owner(fired, "late")
        timers.add(early)
        timers.add(late)
        await asyncio.sleep(0.03)
        rearmed = loop.time()
        timers.add(early)  # now due after "late"
        await asyncio.sleep(0.12)
        return [name for name, _, _ in fired], fired[-1][1], rearmed

    order, early_at, rearmed = asyncio.run(main())
    assert order == ["late", "early"]
    assert early_at >= rearmed + 0.05 - 1e-6


def test_a_failing_callback_is_reported_to_the_loop_and_the_rest_still_fire() -> None:
    async def main() -> tuple[list[str], list[dict[str, Any]]]:
        reported: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: reported.append(context))
        timers = FifoTimers(0.01)
        fired: list[tuple[str, float, str]] = []
        timers.add(Owner(fired, "broken", fail=True))
        timers.add(Owner(fired, "fine"))
        await asyncio.sleep(0.08)
        return [name for name, _, _ in fired], reported

    order, reported = asyncio.run(main())
    assert order == ["broken", "fine"]
    assert len(reported) == 1
    assert isinstance(reported[0]["exception"], RuntimeError)


def test_discard_outside_any_loop_and_timers_on_successive_loops() -> None:
    timers = FifoTimers(0.02)
    fired: list[tuple[str, float, str]] = []
    left = Owner(fired, "left armed")

    async def arm_and_leave() -> None:
        timers.add(left)

    asyncio.run(arm_and_leave())  # the loop closes with the timer armed
    assert timers.pending() == 1
    timers.discard(left)  # a stream finalized after its loop: no running loop here
    assert timers.pending() == 0

    async def arm_and_wait(name: str) -> None:
        timers.add(Owner(fired, name))
        await asyncio.sleep(0.06)

    asyncio.run(arm_and_wait("second loop"))
    asyncio.run(arm_and_wait("third loop"))
    assert [name for name, _, _ in fired] == ["second loop", "third loop"]
    assert len(timers._queues) == 1  # the closed loops' queues went with them


def test_the_caller_may_name_the_loop_it_runs_on() -> None:
    timers = FifoTimers(0.02)
    fired: list[tuple[str, float, str]] = []
    kept, dropped = Owner(fired, "kept"), Owner(fired, "dropped")
    loops: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loops.append(loop)
        timers.add(kept, loop)
        timers.add(dropped, loop)
        timers.discard(dropped, loop)
        await asyncio.sleep(0.06)
        timers.add(dropped, loop)

    asyncio.run(main())
    assert [name for name, _, _ in fired] == ["kept"]
    assert timers.pending() == 1
    timers.discard(dropped, loops[0])  # after its loop closed, by naming it
    assert timers.pending() == 0


def test_the_owners_armed_on_a_loop_are_listed_oldest_first() -> None:
    timers = FifoTimers(60.0)
    fired: list[tuple[str, float, str]] = []
    first, second, gone = Owner(fired, "first"), Owner(fired, "second"), Owner(fired, "gone")

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        assert timers.armed(loop) == []
        for owner in (first, gone, second):
            timers.add(owner, loop)
        timers.discard(gone, loop)
        armed = timers.armed(loop)
        for owner in armed:
            timers.discard(owner, loop)
        return armed

    assert asyncio.run(main()) == [first, second]
    assert fired == []
