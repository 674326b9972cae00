"""sse-starlette's EventSourceResponse, run with one helper task per stream instead of five.

The stock response runs an anyio task group per stream: the sender, a ping loop, a disconnect listener and
a shutdown listener (and here a send watchdog), each an anyio task with its own cancel scope and event.
That is some 25 KB per open stream, most of what a slow stream costs the server. This subclass keeps the
library's headers, HEAD answer, ping comments, ``SendTimeoutError`` and its detection of the server's
shutdown, and runs them with less:

- frames are sent from the request's own task, and one task listens for the client's disconnect;
- pings and the send timeout are event loop timers. A ping goes out (in a short-lived task) only while no
  write is under way, and the next frame waits for it; a write stuck for longer than ``send_timeout`` (a
  client that stopped reading) stops the stream, found by a check a few times per timeout period, so a
  write costs no timer of its own;
- one task per event loop waits for the server to stop (:mod:`runtime.streaming.drain`); each stream then
  gets ``shutdown_grace_period`` seconds to finish before it is stopped.

Stopping (client gone, write stuck, grace over) cancels the request's task. The cancellation reaches the
frame generator wherever it waits, so its ``finally`` runs and the agent stops; it is then absorbed here,
as the stock task group absorbs it, and a stuck write ends in ``SendTimeoutError`` as it does there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.types import Message, Receive, Scope, Send

from runtime.streaming.drain import drain_of

__all__ = ["EXIT_SEEN_WITHIN", "EventStream", "server_exit"]

log = logging.getLogger("runtime.streaming")

_CHECKS_PER_PERIOD = 4
_GONE = "client disconnected"
_STUCK = "send timed out"
_SHUTDOWN = "server stopping"


EXIT_SEEN_WITHIN = 0.5  # seconds: sse-starlette looks for the server's exit signal twice a second


async def server_exit() -> None:
    """Return once the server has been told to stop (SIGTERM), within :data:`EXIT_SEEN_WITHIN` seconds
    of the signal: the signal open streams drain on."""
    await EventSourceResponse._listen_for_exit_signal()


class EventStream(EventSourceResponse):
    def __init__(
        self,
        frames: AsyncIterator[bytes],
        *,
        headers: Mapping[str, str],
        ping: float,
        send_timeout: float,
        shutdown_grace_period: float,
    ) -> None:
        super().__init__(
            frames,
            headers=dict(headers),
            ping=ping,
            send_timeout=None,
            shutdown_grace_period=shutdown_grace_period,
        )
        self.frames = frames
        self.stuck_after = send_timeout
        self.grace = shutdown_grace_period
        self._task: asyncio.Task[Any] | None = None  # the request's, while it streams
        self._asgi_send: Send | None = None
        self._stopped: str | None = None
        self._sending_since: float | None = None
        self._pinging: asyncio.Task[None] | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._check_timer: asyncio.TimerHandle | None = None
        self._grace_timer: asyncio.TimerHandle | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"].upper() == "HEAD":
            await super().__call__(scope, receive, send)  # the library's own answers (no stream opens)
            return
        task = self._task = asyncio.current_task()
        assert task is not None
        self._asgi_send = send
        await self._stream(task, receive)
        if self.background is not None:
            await self.background()

    async def _stream(self, task: asyncio.Task[Any], receive: Receive) -> None:
        listener = asyncio.get_running_loop().create_task(self._listen(receive))
        drain = drain_of(server_exit)
        drain.join(self)
        self._arm()
        try:
            await self._write(
                {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            )
            async for chunk in self.frames:
                await self._send_frame(chunk)
            self.active = False
            await self._write({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if self._stopped is None or task.uncancel() > 0:
                raise  # somebody else's cancellation
            if self._stopped == _STUCK:
                raise SendTimeoutError() from None
        finally:
            self._task = None
            self.active = False
            drain.leave(self)
            listener.cancel()
            self._disarm()
            await self._close_frames()

    async def _send_frame(self, chunk: bytes) -> None:
        if self._stopped is not None:
            raise asyncio.CancelledError  # the generator swallowed our cancellation: deliver it again
        pinging = self._pinging
        if pinging is not None:
            await pinging
        await self._write({"type": "http.response.body", "body": chunk, "more_body": True})

    async def _write(self, message: Message) -> None:
        assert self._asgi_send is not None
        self._sending_since = time.monotonic()
        try:
            await self._asgi_send(message)
        finally:
            self._sending_since = None

    async def _listen(self, receive: Receive) -> None:
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        except Exception:  # a server whose receive fails has lost its client as surely
            log.debug("receive failed while streaming", exc_info=True)
        self._stop(_GONE)

    def _stop(self, reason: str) -> None:
        task = self._task
        if task is not None and self._stopped is None:
            self._stopped = reason
            task.cancel()

    def shutdown(self) -> None:
        """The server is stopping (see :class:`~runtime.streaming.drain.Drain`): finish within the grace."""
        if self.grace > 0:
            self._grace_timer = asyncio.get_running_loop().call_later(self.grace, self._stop, _SHUTDOWN)
        else:
            self._stop(_SHUTDOWN)

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        if self.ping_interval > 0:
            self._ping_timer = loop.call_later(self.ping_interval, self._ping_due)
        if self.stuck_after > 0:
            self._check_timer = loop.call_later(self.stuck_after / _CHECKS_PER_PERIOD, self._check_sends)

    def _disarm(self) -> None:
        for timer in (self._ping_timer, self._check_timer, self._grace_timer):
            if timer is not None:
                timer.cancel()
        if self._pinging is not None:
            self._pinging.cancel()

    def _ping_due(self) -> None:
        loop = asyncio.get_running_loop()
        self._ping_timer = loop.call_later(self.ping_interval, self._ping_due)
        if self._sending_since is None and self._pinging is None and self.active:
            self._pinging = loop.create_task(self._send_ping())

    async def _send_ping(self) -> None:
        comment = ServerSentEvent(comment=f"ping - {datetime.now(UTC)}", sep=self.sep).encode()
        try:
            await self._write({"type": "http.response.body", "body": comment, "more_body": True})
        except Exception:  # a server that reports a gone client by raising (ASGI 2.4): as a disconnect
            self._stop(_GONE)
        finally:
            self._pinging = None

    def _check_sends(self) -> None:
        since = self._sending_since
        if since is not None and time.monotonic() - since > self.stuck_after:
            self._stop(_STUCK)
            return
        period = self.stuck_after / _CHECKS_PER_PERIOD
        self._check_timer = asyncio.get_running_loop().call_later(period, self._check_sends)

    async def _close_frames(self) -> None:
        """Run the generator's ``finally`` when it was stopped at a ``yield`` (a write failed or stuck)."""
        aclose = getattr(self.frames, "aclose", None)
        if aclose is None:
            return
        try:
            await aclose()
        except Exception:
            log.exception("closing the frames of a stopped stream failed")

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"EventStream(send_timeout={self.stuck_after}, stopped={self._stopped})"
