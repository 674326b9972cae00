"""Calls to the store from the event loop: in a thread, with a deadline, never holding the process.

A store that stops answering without closing its connections (a frozen PostgreSQL, a stalled proxy) blocks
a SQL call until the operating system gives up, which may be never. So each call runs in its own daemon
thread (a hung call cannot keep the process from exiting after SIGTERM, as a pool's thread, joined at
exit, would), its caller waits at most ``within`` seconds and then answers 503 ``store_unavailable``, and
at most :data:`MAX_WAITING` calls wait at once: past that a new one is refused at once rather than piling
up threads behind a store that does not answer. The thread pools of the event loop (``/metrics``, sync
agents) are never taken by the store.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from registry.errors import StoreUnavailable

__all__ = ["MAX_WAITING", "STORE_TIMEOUT", "store_call"]

T = TypeVar("T")

STORE_TIMEOUT = 30.0  # seconds an API call waits for the store
MAX_WAITING = 32  # store calls waiting at once, per process
_waiting = 0
_lock = threading.Lock()


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # its caller gave up waiting
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


async def store_call(fn: Callable[[], T], *, within: float | None = None, what: str = "store") -> T:
    """``fn()`` in a daemon thread; StoreUnavailable after ``within`` seconds (default
    :data:`STORE_TIMEOUT`) or at once with too many calls waiting."""
    global _waiting
    within = STORE_TIMEOUT if within is None else within
    with _lock:
        if _waiting >= MAX_WAITING:
            raise StoreUnavailable(f"the {what} is not answering: {_waiting} calls are waiting for it")
        _waiting += 1
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def run() -> None:
        global _waiting
        result: Any = None
        error: BaseException | None = None
        try:
            result = fn()
        except BaseException as exc:  # handed to the caller, whatever it is
            error = exc
        finally:
            with _lock:
                _waiting -= 1
        try:
            loop.call_soon_threadsafe(_settle, future, result, error)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            return

    threading.Thread(target=run, name="runtime-store-call", daemon=True).start()
    try:
        return await asyncio.wait_for(asyncio.shield(future), within)
    except TimeoutError:
        raise StoreUnavailable(f"the {what} did not answer within {within:g} s") from None
