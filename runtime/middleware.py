"""Pure ASGI middleware (never ``BaseHTTPMiddleware``, which breaks context variables).

Order, outermost first: request id -> auth -> limits. Each answers errors through the one renderer.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from runtime.errors import Overloaded, PayloadTooLarge, Unauthorized
from runtime.ids import hex_id
from runtime.routes.errors import error_response

__all__ = ["ApiKeyAuth", "Limits", "RequestId"]

_OPEN_PATHS = frozenset({"/health", "/ready", "/ping"})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _request_id(scope: Scope) -> str | None:
    rid = scope.get("state", {}).get("request_id")
    return rid if isinstance(rid, str) else None


class RequestId:
    """Take ``x-request-id`` from the client (bounded length) or make one; routes echo it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = _header(scope, b"x-request-id")
            rid = given.decode("latin-1")[:128] if given else hex_id(8)
            scope.setdefault("state", {})["request_id"] = rid
        await self.app(scope, receive, send)


class ApiKeyAuth:
    """``Authorization: Bearer <key>`` on every route but liveness/readiness; constant-time comparison."""

    def __init__(self, app: ASGIApp, keys: Iterable[str]) -> None:
        self.app = app
        self.keys = [k.encode() for k in keys]

    def _allowed(self, scope: Scope) -> bool:
        raw = _header(scope, b"authorization") or b""
        scheme, _, token = raw.partition(b" ")
        if scheme.lower() != b"bearer" or not token:
            return False
        ok = False
        for key in self.keys:  # compare against every key: timing says nothing about which matched
            ok |= hmac.compare_digest(token.strip(), key)
        return ok

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or scope["path"] in _OPEN_PATHS or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        exc = Unauthorized("missing or invalid API key: send 'Authorization: Bearer <key>'")
        await error_response(exc, _request_id(scope))(scope, receive, send)


class Limits:
    """Reject bodies declared too large (413) and requests beyond the concurrency limit (429 + Retry-After).

    Only agent routes count towards concurrency: health checks and metrics stay answerable when full.
    """

    def __init__(self, app: ASGIApp, max_body: int, max_concurrency: int, limited: Iterable[str]) -> None:
        self.app = app
        self.max_body = max_body
        self.max_concurrency = max_concurrency
        self.limited = frozenset(limited)
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.limited:
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            exc = PayloadTooLarge(f"request body is larger than {self.max_body} bytes")
            await error_response(exc, _request_id(scope))(scope, receive, send)
            return
        if self.in_flight >= self.max_concurrency:
            busy = Overloaded("the server is at its concurrency limit; retry shortly", retry_after=1)
            await error_response(busy, _request_id(scope))(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
