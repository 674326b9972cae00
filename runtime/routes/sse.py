"""Response helpers shared by the agent routes: JSON bodies, SSE streams and the model headers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from sse_starlette.sse import SendTimeoutError
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from runtime.config import Settings
from runtime.protocol.call import Call
from runtime.streaming.eventsource import EventStream

log = logging.getLogger("runtime.routes")

__all__ = ["json_response", "model_headers", "send_sse"]


def model_headers(call: Call) -> dict[str, str]:
    headers = {"x-request-id": call.request_id}
    if call.trace_id:
        headers["x-runtime-trace-id"] = f"tr-{call.trace_id}"
    if call.model.model_id:
        headers["x-runtime-model-id"] = call.model.model_id
    if call.model.version:
        headers["x-runtime-model-version"] = call.model.version
    if call.variant:
        headers["x-runtime-variant"] = call.variant
    return headers


def json_response(payload: Any, headers: Mapping[str, str] | None = None, status: int = 200) -> Response:
    return Response(
        orjson.dumps(payload), status_code=status, media_type="application/json", headers=dict(headers or {})
    )


async def send_sse(
    frames: AsyncIterator[bytes],
    settings: Settings,
    headers: Mapping[str, str],
    asgi: tuple[Scope, Receive, Send],
) -> None:
    """Send an SSE stream of pre-encoded frames, with keep-alive pings, a send timeout and graceful drain.

    The stream starts the response, so nothing raised after that can be answered with an error response:
    a client that stopped reading is dropped (logged at info), anything else is logged and the connection
    closed. Errors of the agent never get here: the routes turn them into error events.
    """
    stream = EventStream(
        frames,
        headers={**headers, "cache-control": "no-cache", "x-accel-buffering": "no"},
        ping=settings.sse_ping_interval,
        send_timeout=settings.sse_send_timeout,
        shutdown_grace_period=settings.grace_period,
    )
    rid = headers.get("x-request-id")
    try:
        await stream(*asgi)
    except SendTimeoutError:
        log.info("request %s: dropped the stream, its client stopped reading", rid)
    except Exception:
        log.exception("request %s: the stream failed after it started", rid)
