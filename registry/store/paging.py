"""Opaque page tokens for keyset pagination, shared by every paged search of the store.

A token is the sort key of the last row of a page, tagged with the kind of row it came from, so a token of
one search handed to another (a traces token to ``/api/assessments``) is refused rather than misread. A
token that does not decode to that kind and key shape is an :class:`InvalidArgument` (400 at the API).
"""

from __future__ import annotations

import base64
import binascii
import json

from registry.errors import InvalidArgument

__all__ = ["decode_token", "encode_token"]

Key = tuple[int, str]


def encode_token(kind: str, key: Key) -> str:
    raw = json.dumps([kind, *key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(kind: str, token: str) -> Key:
    """The (time, id) key a token of ``kind`` carries; ``InvalidArgument`` for anything else."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, TypeError, RecursionError) as exc:  # RecursionError: [[[[...]]]]
        raise InvalidArgument("invalid page_token") from exc
    match decoded:
        case [str(found), int(at), str(row_id)] if found == kind and not isinstance(at, bool):
            return at, row_id
    raise InvalidArgument("invalid page_token")
