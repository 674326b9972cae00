"""Cancel a non-streaming agent call when its client goes away.

Starlette watches for disconnects only while streaming. For plain responses we arm a timer instead of a
watcher: calls that finish within ``_ARM_AFTER`` seconds (most of them) pay for a timer (one entry in a
queue all calls share, see :mod:`runtime.timers`) and no task; a longer call gets a task listening for
``http.disconnect`` that cancels the handler's task, so the agent (and any upstream LLM call it awaits)
stops, and the trace says CANCELLED.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.types import Receive

from runtime.errors import ClientClosedRequest, RuntimeErrorBase
from runtime.timers import FifoTimers

__all__ = ["until_disconnect"]

T = TypeVar("T")
_ARM_AFTER = 0.2
_ARMING = FifoTimers(_ARM_AFTER)


async def until_disconnect(receive: Receive, work: Awaitable[T], headers: dict[str, str]) -> T:
    """``work``'s result; its error carries ``headers`` (trace id, model) into the error response."""
    try:
        return await _cancel_on_disconnect(receive, work)
    except RuntimeErrorBase as exc:
        exc.headers = {**headers, **exc.headers}
        raise


class _Watch:
    """The timer's callback and, once armed, the watcher; one object per call instead of an event and two
    closures (this runs on every non-streaming request)."""

    __slots__ = ("gone", "receive", "task", "watcher")

    def __init__(self, receive: Receive, task: asyncio.Task[object]) -> None:
        self.receive = receive
        self.task = task
        self.gone = False
        self.watcher: asyncio.Task[None] | None = None

    def expire(self) -> None:
        """The call is still running: start watching."""
        self.watcher = self.task.get_loop().create_task(self.watch())

    async def watch(self) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.gone = True
                self.task.cancel()
                return


async def _cancel_on_disconnect(receive: Receive, work: Awaitable[T]) -> T:
    task = asyncio.current_task()
    assert task is not None
    watch = _Watch(receive, task)
    loop = task.get_loop()  # not asyncio.get_running_loop() twice more: a getpid system call each on 3.11
    _ARMING.add(watch, loop)
    try:
        return await work
    except asyncio.CancelledError:
        if not watch.gone:
            raise
        task.uncancel()
        raise ClientClosedRequest("the client closed the connection before the answer was ready") from None
    finally:
        _ARMING.discard(watch, loop)
        if watch.watcher is not None:
            watch.watcher.cancel()
