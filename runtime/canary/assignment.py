"""Which variant serves a request: a pure function of (canary id, sticky key), identical on every replica.

No assignment is stored anywhere. A hash of the canary id and the key (user, session or a header) falls in
``[0, 1)``; below ``weight / 100`` is the challenger. So a user sees one variant on every replica and for the
whole canary, while a new canary (a new id) reshuffles users, so that the same users are not always the
guinea pigs. Requests without a key are split at random with the same weight.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping

from runtime.canary.model import CHALLENGER, CHAMPION

__all__ = ["assign", "bucket", "sticky_key"]

_SPAN = float(1 << 64)


def bucket(canary_id: str, key: str) -> float:
    """A uniform, deterministic point in [0, 1) for this key in this canary."""
    digest = hashlib.blake2b(f"{canary_id}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SPAN


def sticky_key(
    sticky_by: str, user_id: str | None, session_id: str | None, headers: Mapping[str, str]
) -> str | None:
    if sticky_by == "user":
        return user_id or None
    if sticky_by == "session":
        return session_id or None
    if sticky_by.startswith("header:"):
        return headers.get(sticky_by[7:].lower()) or None
    return None


def assign(canary_id: str, key: str | None, weight: float, draw: Callable[[], float] = random.random) -> str:
    point = bucket(canary_id, key) if key is not None else draw()
    return CHALLENGER if point < weight / 100.0 else CHAMPION
