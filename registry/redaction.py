"""A URL's password kept out of messages: store URLs (PostgreSQL) and Redis URLs alike, parsed or not."""

from __future__ import annotations

import re

__all__ = ["redacted_url", "without_password"]

_DELIMITERS = re.compile(r"[/?#@:\[\]]")
_QUERY_PASSWORD = re.compile(r"[?&]password=([^&#]*)", re.IGNORECASE)


def without_password(text: str, url: str) -> str:
    """``text`` (a message about ``url``, or the URL itself) with the URL's password hidden: whole, and any
    of its pieces between URL delimiters that appears as a word (a password holding '/' cuts a URL short
    there, and a parser's message may quote the piece it stopped at)."""
    for found in _QUERY_PASSWORD.finditer(url):  # libpq and redis-py take it as ?password=... too
        if found.group(1):
            text = text.replace(found.group(1), "***")
    userinfo = url.partition("://")[2].rpartition("@")[0]
    password = userinfo.partition(":")[2]
    if not password:
        return text
    text = text.replace(password, "***")
    for piece in sorted(set(_DELIMITERS.split(password)), key=len, reverse=True):
        if piece:
            text = re.sub(rf"(?<![\w]){re.escape(piece)}(?![\w])", "***", text)
    return text


def redacted_url(url: str) -> str:
    """``url`` with its password hidden, for messages, even when it does not parse."""
    return without_password(url, url)
