"""Just enough HTTP/1.1 client over asyncio streams for a load generator.

Keep-alive, ``Content-Length`` and ``chunked`` bodies, nothing else: no redirects, no compression, no TLS.
Bodies are handed to a sink chunk by chunk so a stream can be parsed while it arrives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["HttpError", "ResponseHead", "build_request", "read_body", "read_head"]

MAX_HEAD_BYTES = 64 * 1024
MAX_CHUNKS = 10_000_000  # bounds the chunk loop of one response


class HttpError(Exception):
    """The peer spoke something this client cannot read."""


@dataclass(frozen=True, slots=True)
class ResponseHead:
    status: int
    content_length: int | None
    chunked: bool
    keep_alive: bool


def build_request(method: str, path: str, host: str, body: bytes, accept: str = "*/*") -> bytes:
    """The bytes of one request; built once per scenario and reused for every request."""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bench-loadgen\r\nAccept: {accept}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def _header_value(lowered_head: bytes, name: bytes) -> bytes | None:
    start = lowered_head.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    end = lowered_head.find(b"\r\n", start)
    return lowered_head[start:end].strip()


async def read_head(reader: asyncio.StreamReader) -> ResponseHead:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as exc:
        raise HttpError("response head too large") from exc
    if len(head) > MAX_HEAD_BYTES or not head.startswith(b"HTTP/1."):
        raise HttpError("not an HTTP/1.x response")
    status = int(head[9:12])
    lowered = head.lower()
    length = _header_value(lowered, b"content-length")
    encoding = _header_value(lowered, b"transfer-encoding")
    connection = _header_value(lowered, b"connection")
    return ResponseHead(
        status=status,
        content_length=int(length) if length is not None else None,
        chunked=encoding is not None and b"chunked" in encoding,
        keep_alive=connection != b"close" and head.startswith(b"HTTP/1.1"),
    )


async def _read_chunked(reader: asyncio.StreamReader, sink: Callable[[bytes], None]) -> None:
    for _ in range(MAX_CHUNKS):
        line = await reader.readuntil(b"\r\n")
        size = int(line.split(b";", 1)[0], 16)
        if size == 0:
            # Trailers, if any, end with an empty line.
            for _ in range(100):
                if await reader.readuntil(b"\r\n") == b"\r\n":
                    return
            raise HttpError("too many trailers")
        data = await reader.readexactly(size + 2)
        sink(data[:-2])
    raise HttpError("too many chunks")


async def read_body(reader: asyncio.StreamReader, head: ResponseHead, sink: Callable[[bytes], None]) -> None:
    """Read the whole body into ``sink``; a body delimited by close is read to EOF."""
    if head.chunked:
        await _read_chunked(reader, sink)
    elif head.content_length is not None:
        if head.content_length:
            sink(await reader.readexactly(head.content_length))
    elif head.status not in (204, 304):
        for _ in range(MAX_CHUNKS):
            data = await reader.read(65536)
            if not data:
                return
            sink(data)
        raise HttpError("body too long")
