"""Identifiers that need to be unique, not secret: drawn from ``random`` (fast) instead of ``os.urandom``.

Request, response and item ids are created several times per request; ``secrets`` costs a system call
each time, which shows on the hot path under load. Nothing here protects anything.
"""

from __future__ import annotations

import random
import time

__all__ = ["hex_id", "new_trace_id", "trace_hex"]

_bits = random.getrandbits
_FORMATS = {n: f"%0{2 * n}x" for n in range(1, 33)}


def hex_id(nbytes: int) -> str:
    """``nbytes`` random bytes as lowercase hex (``2 * nbytes`` characters)."""
    return _FORMATS[nbytes] % _bits(nbytes * 8)


def trace_hex() -> str:
    """A new trace id as 32 hex digits (see :func:`new_trace_id`)."""
    return f"{new_trace_id():032x}"


def new_trace_id() -> int:
    """A new 128-bit trace id: the time in milliseconds (48 bits), then 80 random bits.

    Time first, as in UUIDv7 and AWS X-Ray ids: the store's trace table is keyed by this id, and ids that
    grow with time are appended to the end of its index instead of landing on a random page each, which
    made the trace writer rewrite a page per request. The right-most 7 bytes stay random, as W3C trace
    context asks of an id sent with the random flag, and sampling hashes the id (or, in OpenTelemetry's
    ratio sampler, reads its random low 64 bits), so nothing that samples by trace id is skewed.
    """
    return (time.time_ns() // 1_000_000 & 0xFFFFFFFFFFFF) << 80 | _bits(80)
