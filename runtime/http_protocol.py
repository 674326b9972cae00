"""uvicorn's httptools protocol with the two limits it lacks: the size of a request's head and the time a
client may take to send it.

httptools keeps a request line and headers in memory however long they get, and uvicorn waits for them
however slowly they come (its keep-alive timeout covers only the wait between requests): one unauthenticated
client could grow the server by a megabyte per megabyte of header it sends, or hold connections open
forever by never finishing its headers, before any key is checked. Here a head over
``RUNTIME_MAX_HEADER_BYTES`` is answered 431 and a head not finished within ``RUNTIME_HEADER_TIMEOUT``
seconds (from the first read that did not complete it; for a connection that sends nothing, from its
start) 408, and the connection closed, as nginx and Node do. ``runtime serve`` passes the class to
uvicorn (``http=``); its workers import it by name and read the limits from their environment, as they
read every setting.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from runtime.config import Settings

__all__ = ["LimitedHttpToolsProtocol"]

_TOO_LARGE = b"431 Request Header Fields Too Large"
_TIMEOUT = b"408 Request Timeout"


@functools.cache
def _limits() -> tuple[int, float]:
    settings = Settings.from_env()
    return settings.max_header_bytes, settings.header_timeout


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """A request's head (line and headers) is at most ``max_header_bytes`` and arrives within
    ``header_timeout`` seconds; past either, the client gets 431 or 408 and the connection closes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_head, self._head_timeout = _limits()
        self._in_head = True  # waiting for (the rest of) a request's head
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()  # a connection that never sends anything is not kept either

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # Bytes counted and no head completed with them: a head is under way. (The usual request arrives
        # whole in one read: its head completes in it, and no timer is ever set for it.)
        if self._in_head and self._head_bytes and not self.transport.is_closing():
            if self._head_bytes > self._max_head:
                self._refuse(_TOO_LARGE)
            elif self._head_timer is None:
                self._start_head_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        if self._head_timer is not None:
            self._stop_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # the next request's head: counted and timed from its first bytes
        self._head_bytes = 0

    def _start_head_timer(self) -> None:
        self._stop_head_timer()
        self._head_timer = asyncio.get_running_loop().call_later(self._head_timeout, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            # Quietly for a connection that sent nothing (a client's spare pooled connection).
            self._refuse(_TIMEOUT if self._head_bytes else None)

    def _refuse(self, status: bytes | None) -> None:
        self._stop_head_timer()
        if status is not None:
            self.transport.write(
                b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
        self.transport.close()
