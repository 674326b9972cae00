"""Cancel a non-streaming agent call when its client goes away.

Starlette watches for disconnects only while streaming. For plain responses we arm a timer instead of a
watcher: calls that finish within ``_ARM_AFTER`` seconds (most of them) pay for one timer handle and no
task; a longer call gets a task listening for ``http.disconnect`` that cancels the handler's task, so the
agent (and any upstream LLM call it awaits) stops, and the trace says CANCELLED.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.types import Receive

from runtime.errors import ClientClosedRequest, RuntimeErrorBase

__all__ = ["until_disconnect"]

T = TypeVar("T")
_ARM_AFTER = 0.2


async def until_disconnect(receive: Receive, work: Awaitable[T], headers: dict[str, str]) -> T:
    """``work``'s result; its error carries ``headers`` (trace id, model) into the error response."""
    try:
        return await _cancel_on_disconnect(receive, work)
    except RuntimeErrorBase as exc:
        exc.headers = {**headers, **exc.headers}
        raise


async def _cancel_on_disconnect(receive: Receive, work: Awaitable[T]) -> T:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    gone = asyncio.Event()
    watcher: asyncio.Task[None] | None = None

    async def watch() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
                task.cancel()
                return

    def arm() -> None:
        nonlocal watcher
        watcher = loop.create_task(watch())

    timer = loop.call_later(_ARM_AFTER, arm)
    try:
        return await work
    except asyncio.CancelledError:
        if not gone.is_set():
            raise
        task.uncancel()
        raise ClientClosedRequest("the client closed the connection before the answer was ready") from None
    finally:
        timer.cancel()
        if watcher is not None:
            watcher.cancel()
