"""``Front``: the one ASGI layer in front of the app, and the agent routes' direct way in.

Every HTTP request gets, in this order: a request id (the client's ``x-request-id``, bounded, or a new
one; with the caller's W3C ``traceparent`` and ``tracestate``, when it sent them, kept beside it in the
scope's state), the API
key check (``Authorization: Bearer <key>`` on every path but liveness and readiness,
compared in constant time), and a count in ``runtime_http_errors`` if it ends in an error status,
including rejections that never reached a route. Then:

- ``POST`` on an agent path (``/invocations``, ``/v1/responses``, ``/responses``) is checked against the
  body size and concurrency limits (413; 429 with ``Retry-After``) and handed straight to its handler:
  no Starlette middleware stack, router or request object. The agent routes are the hot path, and those
  layers together cost about as much per request as the route's own work. Errors the handler raises are
  rendered here by the one renderer (:func:`runtime.routes.errors.error_response`).
- everything else goes to the Starlette app, whose routes, 404/405 and error handlers are unchanged.
  Health checks and metrics never count towards the concurrency limit, so they answer when it is full.

One layer instead of four (request id, auth, limits, error metrics were separate middlewares) also means one
pass over the headers. Pure ASGI: ``BaseHTTPMiddleware`` would break context variables.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.errors import Overloaded, PayloadTooLarge, Unauthorized
from runtime.ids import hex_id
from runtime.observability.prometheus import Counter
from runtime.routes.errors import error_response
from runtime.state import RuntimeState

__all__ = ["AgentHandler", "Front"]

AgentHandler = Callable[[RuntimeState, Scope, Receive, Send, str], Awaitable[None]]

_OPEN_PATHS = frozenset({"/health", "/ready", "/ping", "/metrics"})  # probes and scrapers, as in vLLM
_MAX_REQUEST_ID = 128


def _read_headers(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bytes | None, ...]:
    """x-request-id, authorization, content-length, traceparent and tracestate, in one pass (several
    tracestate headers make one list, as W3C Trace Context says)."""
    given = auth = length = parent = vendors = None
    for key, value in headers:
        if key == b"x-request-id":
            given = value
        elif key == b"authorization":
            auth = value
        elif key == b"content-length":
            length = value
        elif key == b"traceparent":
            parent = value
        elif key == b"tracestate":
            vendors = value if vendors is None else vendors + b"," + value
    return given, auth, length, parent, vendors


class Front:
    def __init__(
        self,
        app: ASGIApp,
        state: RuntimeState,
        handlers: Mapping[str, AgentHandler],
        *,
        api_keys: Iterable[str] = (),
        errors: Counter | None = None,
        known_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.runtime = state
        self.state = getattr(app, "state", None)  # the Starlette app's (``app.state.runtime``), for tests
        self.handlers = dict(handlers)
        self.keys = [key.encode() for key in api_keys]
        self.max_body = state.settings.max_body_bytes
        self.max_concurrency = state.settings.max_concurrency
        self.errors = errors
        self.known = frozenset(known_paths)
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given, auth, length, parent, vendors = _read_headers(scope["headers"])
        rid = bytes(given).decode("latin-1")[:_MAX_REQUEST_ID] if given else hex_id(8)
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        if parent is not None:  # the caller's trace, for the request to join (runtime.protocol.traceparent)
            state["traceparent"] = bytes(parent).decode("latin-1")
            if vendors is not None:  # and what its tracing vendors pass along it (tracestate)
                state["tracestate"] = bytes(vendors).decode("latin-1")
        path: str = scope["path"]
        if self.keys and path not in _OPEN_PATHS and not self._allowed(auth):
            exc = Unauthorized("missing or invalid API key: send 'Authorization: Bearer <key>'")
            await self._error(exc, rid, scope, receive, send)
            return
        handler = self.handlers.get(path) if scope["method"] == "POST" else None
        if handler is None:
            await self.app(scope, receive, self._counting(send, path) if self.errors is not None else send)
            return
        if length is not None and length.isdigit() and int(length) > self.max_body:
            too_large = PayloadTooLarge(f"request body is larger than {self.max_body} bytes")
            await self._error(too_large, rid, scope, receive, send)
            return
        if self.in_flight >= self.max_concurrency:
            busy = Overloaded("the server is at its concurrency limit; retry shortly", retry_after=1)
            await self._error(busy, rid, scope, receive, send)
            return
        self.in_flight += 1
        try:
            await handler(self.runtime, scope, receive, send, rid)
        except Exception as exc:  # the renderer logs what is not ours and answers 500
            await self._error(exc, rid, scope, receive, send)
        finally:
            self.in_flight -= 1

    def _allowed(self, auth: bytes | None) -> bool:
        scheme, _, token = bytes(auth or b"").partition(b" ")
        if scheme.lower() != b"bearer" or not token:
            return False
        token = token.strip()
        ok = False
        for key in self.keys:  # compare against every key: timing says nothing about which matched
            ok |= hmac.compare_digest(token, key)
        return ok

    async def _error(self, exc: BaseException, rid: str, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(exc, rid)
        self._count(scope["path"], response.status_code)
        await response(scope, receive, send)

    def _count(self, path: str, status: int) -> None:
        if self.errors is not None and status >= 400:
            self.errors.labels(self._endpoint(path), str(status)).inc()

    def _endpoint(self, path: str) -> str:
        """The route path for known routes, a fixed bucket otherwise: unknown URLs cannot grow the labels."""
        if path in self.known:
            return path
        if path.startswith("/api/"):
            return "/api/" + path[5:].split("/", 1)[0]
        return "other"

    def _counting(self, send: Send, path: str) -> Send:
        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._count(path, message["status"])
            await send(message)

        return counting_send
