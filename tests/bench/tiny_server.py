"""A tiny HTTP/1.1 server on loopback for the load generator's tests: real sockets, canned answers.

Paths: ``/json`` (Content-Length body), ``/sse`` (chunked SSE, frames split at awkward places, CRLF lines,
a ping comment, then ``[DONE]``), ``/sse-cut`` (a stream that stops before its terminal event), ``/error``
(500), ``/close`` (answers then closes the connection), ``/hang`` (reads the request and never answers).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

SSE_EVENTS = 5
_MAX_REQUESTS_PER_CONNECTION = 100_000

# Five delta events then [DONE], cut into chunks that split a CRLF, a field name and a frame boundary.
_SSE_BODY = b"".join(
    [b": ping\r\n\r\n"]
    + [
        b"event: response.output_text.delta\r\n"
        b'data: {"type":"response.output_text.delta","delta":"w%d"}\r\n\r\n' % i
        for i in range(SSE_EVENTS)
    ]
    + [b"data: [DONE]\r\n\r\n"]
)
_SSE_CHUNKS = [_SSE_BODY[i : i + 7] for i in range(0, len(_SSE_BODY), 7)]


def _chunked(chunks: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


def _fixed(status: str, body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Length: %d\r\n%s\r\n%s" % (status.encode(), len(body), extra, body)


_SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
ANSWERS = {
    b"/json": _fixed("200 OK", b'{"ok":true}'),
    b"/error": _fixed("500 Internal Server Error", b'{"error":"boom"}'),
    b"/close": _fixed("200 OK", b"{}", b"Connection: close\r\n"),
    b"/sse": _SSE_HEAD + _chunked(_SSE_CHUNKS),
    b"/sse-cut": _SSE_HEAD + _chunked(_SSE_CHUNKS[:-3]),
}


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return head.split(b" ", 2)[1]


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        for _ in range(_MAX_REQUESTS_PER_CONNECTION):
            path = await _read_request(reader)
            if path == b"/hang":
                await reader.read()  # until the client goes away
                return
            writer.write(ANSWERS[path])
            await writer.drain()
            if path == b"/close":
                return
    except (asyncio.IncompleteReadError, ConnectionError):
        return
    finally:
        writer.close()


@asynccontextmanager
async def tiny_server() -> AsyncIterator[int]:
    """Serve on a free loopback port for the duration of the block; yields the port."""
    handlers: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await _serve(reader, writer)
        finally:
            handlers.discard(task)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()
