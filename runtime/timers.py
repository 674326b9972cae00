"""Timers of one fixed delay, many per second, almost all cancelled: one loop timer for all of them.

Every request arms two timers (its deadline, and the moment a plain call starts watching for a client
disconnect) and cancels both a fraction of a millisecond later. ``loop.call_later`` costs a handle, a push
on the loop's heap (whose comparisons run in Python) and, once cancelled, a later pop or heap rebuild: a
few microseconds per request for timers that never fire. When every timer of a kind has the same delay,
they expire in the order they were armed, so an insertion-ordered dict is their queue: arming is a dict
insert, cancelling a dict delete, and one loop timer, set for the oldest entry, fires the due ones and is
set again for the next. A callback runs at its due time or later (to within a microsecond), as with
``call_later``.

Each event loop gets its own queue (tests run apps on several loops, one after another). Callbacks run
in an empty context, not in the context of whichever request set the loop timer.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Protocol

__all__ = ["Expiring", "FifoTimers"]

_SLACK = 1e-6  # the loop may run a timer up to its clock's resolution early: treat that as on time


class Expiring(Protocol):
    def expire(self) -> None: ...


class _Queue:
    __slots__ = ("delay", "due", "handle", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        self.loop = loop
        self.delay = delay
        self.due: dict[Expiring, float] = {}  # insertion order is due order: one delay for all
        self.handle: asyncio.TimerHandle | None = None

    def fire(self) -> None:
        self.handle = None
        loop, due = self.loop, self.due
        now = loop.time() + _SLACK
        while due:
            owner = next(iter(due))
            when = due.get(owner)
            if when is None:  # discarded meanwhile (from outside the loop)
                continue
            if when > now:
                self.handle = loop.call_at(when, self.fire, context=contextvars.Context())
                return
            due.pop(owner, None)
            try:
                owner.expire()
            except Exception as exc:  # as the loop treats a failing callback: report it, go on
                loop.call_exception_handler(
                    {"message": "timer callback failed", "exception": exc, "timer": owner}
                )


class FifoTimers:
    """Call ``owner.expire()`` ``delay`` seconds after :meth:`add`, unless :meth:`discard` came first."""

    __slots__ = ("_queues", "delay")

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._queues: dict[asyncio.AbstractEventLoop, _Queue] = {}

    def add(self, owner: Expiring, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Arm ``owner``'s timer on ``loop``, the running loop (given when known: on 3.11, asking for the
        running loop is a ``getpid`` system call); arming it again restarts it."""
        if loop is None:
            loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queue(loop)
        when = loop.time() + self.delay
        due = queue.due
        due.pop(owner, None)
        due[owner] = when
        if queue.handle is None:
            queue.handle = loop.call_at(when, queue.fire, context=contextvars.Context())

    def discard(self, owner: Expiring, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Cancel ``owner``'s timer if it is armed on ``loop`` (by default the running one; nothing
        happens if it is not armed)."""
        if loop is not None:
            queue = self._queues.get(loop)
            if queue is not None:
                queue.due.pop(owner, None)
            return
        try:
            queue = self._queues.get(asyncio.get_running_loop())
        except RuntimeError:  # outside any loop (a stream finalized after its loop): look in every queue
            for queue in list(self._queues.values()):
                queue.due.pop(owner, None)
            return
        if queue is not None:
            queue.due.pop(owner, None)

    def armed(self, loop: asyncio.AbstractEventLoop) -> list[Expiring]:
        """The owners whose timers are armed on ``loop``, oldest first."""
        queue = self._queues.get(loop)
        return list(queue.due) if queue is not None else []

    def pending(self) -> int:
        """Timers armed and not yet fired or discarded, over all loops."""
        return sum(len(queue.due) for queue in self._queues.values())

    def _queue(self, loop: asyncio.AbstractEventLoop) -> _Queue:
        for old in [old for old in self._queues if old.is_closed()]:  # loops gone: their timers with them
            del self._queues[old]
        queue = self._queues[loop] = _Queue(loop, self.delay)
        return queue
