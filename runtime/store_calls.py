"""Calls to the store from the event loop: in a thread, with a deadline, never holding the process.

A store that stops answering without closing its connections (a frozen PostgreSQL, a stalled proxy) blocks
a SQL call until the operating system gives up, which may be never. So each call runs in its own daemon
thread (a hung call cannot keep the process from exiting after SIGTERM, as a pool's thread, joined at
exit, would), its caller waits at most a deadline and then gets ``StoreUnavailable`` (503
``store_unavailable`` in the API), and at most a fixed number of calls wait at once: past that a new one
is refused at once rather than piling up threads behind a store that does not answer. The thread pools of
the event loop (``/metrics``, sync agents) are never taken by the store.

Two budgets, one mechanism: :data:`api_calls` for calls made on behalf of a client (the API, an agent's
prompt load, canary control) and :data:`background_calls` for scoring and other work nobody waits on. A
burst of background work stuck behind a slow store fills only its own budget, so API calls still run (or
fail on their own deadline) instead of being refused. Background calls may wait longer (60 s, not 30 s):
nobody is waiting for a score, and a slow write is better than a lost one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from registry.errors import StoreUnavailable

__all__ = ["StoreCalls", "api_calls", "background_calls", "store_call"]

T = TypeVar("T")


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # its caller gave up waiting
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class StoreCalls:
    """A budget of store calls: at most ``limit`` running at once, each waited for ``timeout`` seconds.

    A call counts against the budget until its thread returns, not until its caller gives up: a store that
    hangs keeps the slots it holds, which is what stops threads from piling up.
    """

    def __init__(self, limit: int, timeout: float) -> None:
        self.limit = limit
        self.timeout = timeout
        self._waiting = 0
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        return self._waiting

    async def call(self, fn: Callable[[], T], *, within: float | None = None, what: str = "store") -> T:
        """``fn()`` in a daemon thread; StoreUnavailable after ``within`` seconds (default ``timeout``) or
        at once with ``limit`` calls waiting."""
        within = self.timeout if within is None else within
        with self._lock:
            if self._waiting >= self.limit:
                raise StoreUnavailable(
                    f"the {what} is not answering: {self._waiting} calls are waiting for it"
                )
            self._waiting += 1
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def run() -> None:
            result: Any = None
            error: BaseException | None = None
            try:
                result = fn()
            except BaseException as exc:  # handed to the caller, whatever it is
                error = exc
            finally:
                with self._lock:
                    self._waiting -= 1
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                return

        threading.Thread(target=run, name="runtime-store-call", daemon=True).start()
        try:
            return await asyncio.wait_for(asyncio.shield(future), within)
        except TimeoutError:
            raise StoreUnavailable(f"the {what} did not answer within {within:g} s") from None


api_calls = StoreCalls(limit=32, timeout=30.0)
background_calls = StoreCalls(limit=32, timeout=60.0)


async def store_call(fn: Callable[[], T], *, within: float | None = None, what: str = "store") -> T:
    """An API call to the store (see :data:`api_calls`)."""
    return await api_calls.call(fn, within=within, what=what)
