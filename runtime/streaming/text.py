"""Text deltas kept for later without one string object each.

A text delta is a few characters, and a ``str`` costs some 50 bytes before its first character: an open
stream that keeps its deltas one by one (for the trace's preview, online evaluation and the usage
estimate) holds ten times its text. :func:`compact` joins the kept parts into one string once there are
more than ``RUN`` of them, so the text costs about a byte a character in at most ``RUN + 1`` objects.
Each join copies the text so far: for the longest answer online evaluation keeps (100,000 characters in
deltas of four) that is some 40 MB of copying spread over the whole stream, a few milliseconds.
"""

from __future__ import annotations

__all__ = ["RUN", "compact"]

RUN = 32


def compact(parts: list[str]) -> None:
    """Join ``parts`` into one when there are more than ``RUN``; ``"".join(parts)`` stays the same."""
    if len(parts) > RUN:
        parts[:] = ["".join(parts)]
