"""SSE framing as pure functions: bytes in, bytes out, so they are cheap and testable alone."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["DONE_FRAME", "data_frame", "event_frame", "json_bytes"]

DONE_FRAME = b"data: [DONE]\n\n"


def json_bytes(value: Any) -> bytes:
    return orjson.dumps(value)


def data_frame(payload: bytes) -> bytes:
    """One ``data:`` frame. JSON from orjson never holds a raw newline, so one line is always enough."""
    return b"data: " + payload + b"\n\n"


def event_frame(event: str, payload: bytes) -> bytes:
    """An ``event:`` + ``data:`` frame, the OpenAI Responses framing."""
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"
