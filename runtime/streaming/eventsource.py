"""sse-starlette's EventSourceResponse with a send timeout that costs nothing per event.

The stock response wraps every ``send`` in its own cancel scope and timer (``anyio.move_on_after``): at 50
deltas a stream that is a large share of the per-event cost. Here a send only records when it started, and
one watchdog task per stream checks a few times per timeout period whether a send has been stuck for longer
than ``send_timeout`` (a client that stopped reading); if so it raises ``SendTimeoutError`` inside the
response's task group, which tears the stream down exactly as the stock timeout does. The watchdog rides on
``data_sender_callable``, the response's public hook for an extra task.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping

import anyio
from sse_starlette import EventSourceResponse
from sse_starlette.sse import SendTimeoutError
from starlette.types import Message, Send

__all__ = ["EventStream"]

_CHECKS_PER_PERIOD = 4


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
            data_sender_callable=self._watch_sends if send_timeout > 0 else None,
        )
        self.stuck_after = send_timeout
        self._sending_since: float | None = None

    async def _send_with_timeout(self, send: Send, message: Message) -> None:
        self._sending_since = time.monotonic()
        try:
            await send(message)
        finally:
            self._sending_since = None

    async def _watch_sends(self) -> None:
        period = self.stuck_after / _CHECKS_PER_PERIOD
        while True:
            await anyio.sleep(period)
            since = self._sending_since
            if since is not None and time.monotonic() - since > self.stuck_after:
                raise SendTimeoutError()

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"EventStream(send_timeout={self.stuck_after})"
