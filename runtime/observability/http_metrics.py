"""``HttpErrorMetrics``: count every error response, including those no agent ever saw.

Rejections before the agent runs (401, 413, 415, 422, 429 at the concurrency limit) never reach the
telemetry's ``begin``, yet they are what an operator looks for first. Pure ASGI (``BaseHTTPMiddleware``
would break context variables); it looks only at ``http.response.start``. The ``endpoint`` label is the
route path for known routes and a fixed bucket otherwise, so unknown URLs cannot grow the label set.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.observability.prometheus import Counter

__all__ = ["HttpErrorMetrics"]


class HttpErrorMetrics:
    def __init__(self, app: ASGIApp, counter: Counter, known_paths: Iterable[str]) -> None:
        self.app = app
        self.counter = counter
        self.known = frozenset(known_paths)

    def _endpoint(self, path: str) -> str:
        if path in self.known:
            return path
        if path.startswith("/api/"):
            return "/api/" + path[5:].split("/", 1)[0]
        return "other"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                self.counter.labels(self._endpoint(scope["path"]), str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counting_send)
