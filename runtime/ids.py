"""Identifiers that need to be unique, not secret: drawn from ``random`` (fast) instead of ``os.urandom``.

Request, response and item ids are created several times per request; ``secrets`` costs a system call
each time, which shows on the hot path under load. Nothing here protects anything.
"""

from __future__ import annotations

import random

__all__ = ["hex_id"]

_bits = random.getrandbits
_FORMATS = {n: f"%0{2 * n}x" for n in range(1, 33)}


def hex_id(nbytes: int) -> str:
    """``nbytes`` random bytes as lowercase hex (``2 * nbytes`` characters)."""
    return _FORMATS[nbytes] % _bits(nbytes * 8)
