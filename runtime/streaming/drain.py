"""Graceful drain of open SSE streams: one task per event loop waits for the server to stop.

sse-starlette gives every stream its own task waiting for the library's shutdown signal (its watcher sees
uvicorn's ``should_exit``, or the ``AppStatus`` flag its patch of uvicorn sets). That is one more task and
event per open stream. Here one task per event loop waits for that same signal, through the library's own
``EventSourceResponse._listen_for_exit_signal``, and tells every stream registered with it; a stream
opened once the signal has come is told at once, as the stock listener would return at once.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Protocol

__all__ = ["Drain", "Drainable", "drain_of"]


class Drainable(Protocol):
    def shutdown(self) -> None:
        """The server is stopping: finish within the grace period. Must not raise."""


class Drain:
    """The open streams of one event loop and the one task that waits, for all of them, for the exit."""

    __slots__ = ("_stopping", "_streams", "_wait_for_exit", "_watcher")

    def __init__(self, wait_for_exit: Callable[[], Awaitable[None]]) -> None:
        self._wait_for_exit = wait_for_exit
        self._streams: set[Drainable] = set()
        self._stopping = False
        self._watcher: asyncio.Task[None] | None = None

    def join(self, stream: Drainable) -> None:
        if self._stopping:
            stream.shutdown()
            return
        self._streams.add(stream)
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    def leave(self, stream: Drainable) -> None:
        self._streams.discard(stream)

    async def _watch(self) -> None:
        await self._wait_for_exit()
        self._stopping = True
        streams, self._streams = self._streams, set()
        for stream in streams:
            stream.shutdown()


_drains: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Drain] = weakref.WeakKeyDictionary()


def drain_of(wait_for_exit: Callable[[], Awaitable[None]]) -> Drain:
    """The running loop's drain, made on first use; ``wait_for_exit`` returns when the server stops."""
    loop = asyncio.get_running_loop()
    drain = _drains.get(loop)
    if drain is None:
        drain = _drains[loop] = Drain(wait_for_exit)
    return drain
