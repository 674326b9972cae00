"""The agent routes' side of ASGI: read a JSON body, answer JSON, without Starlette's Request and Response.

The agent routes are the hot path; Starlette's objects (a lazily parsed ``Headers`` per access, a response
that rebuilds its header list) cost more per request than the rest of the route's own work. Everything
else uses Starlette as usual, through :func:`read_json` and :func:`runtime.routes.sse.json_response`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from runtime.errors import (
    BadRequest,
    ClientClosedRequest,
    EmptyInput,
    InvalidJSON,
    PayloadTooLarge,
    UnsupportedMediaType,
)

__all__ = ["header", "limit_param", "read_json", "read_json_asgi", "send_json", "send_json_bytes"]

_JSON_HEADERS = [(b"content-type", b"application/json")]
_CURL_DEFAULT = "application/x-www-form-urlencoded"


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lowercase, as ASGI servers give them), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _check_media(scope: Scope) -> None:
    raw = header(scope, b"content-type")
    if raw is None or not raw.strip():
        return  # curl without -H (or a header left empty): take it as JSON, as before
    media = raw.decode("latin-1").split(";", 1)[0].strip().lower()
    if media == _CURL_DEFAULT:
        return  # curl -d without -H sends this: the body is still read as JSON (and must be JSON)
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(f"content type must be application/json, not {media}")


async def read_json_asgi(scope: Scope, receive: Receive, limit: int) -> Any:
    """The request body as JSON: media type, size limit (also for chunked bodies) and syntax checked."""
    _check_media(scope)
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        raw: bytes = message.get("body", b"")  # the usual case: the whole body in one message
        if len(raw) > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    else:
        raw = await _rest(receive, message, limit)
    if not raw.strip():
        raise EmptyInput("request body is empty")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"request body is not valid JSON: {exc.msg} at position {exc.pos}") from exc


async def _rest(receive: Receive, message: Mapping[str, Any], limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        if message["type"] == "http.disconnect":
            raise ClientClosedRequest("the client closed the connection while sending its request")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = await receive()


async def read_json(request: Request, limit: int) -> Any:
    """:func:`read_json_asgi` for a Starlette route."""
    return await read_json_asgi(request.scope, request.receive, limit)


async def send_json(send: Send, payload: Any, headers: Mapping[str, str], status: int = 200) -> None:
    """One JSON response in two ASGI messages; ``headers`` are the route's own (request id, model, ...)."""
    await send_json_bytes(send, orjson.dumps(payload), headers, status)


async def send_json_bytes(send: Send, body: bytes, headers: Mapping[str, str], status: int = 200) -> None:
    """:func:`send_json` for a body encoded already."""
    raw = [(b"content-length", str(len(body)).encode()), *_JSON_HEADERS]
    raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def limit_param(raw: str | None, default: int, maximum: int) -> int:
    """A ``limit`` query parameter: an integer from 1 to ``maximum``, ``default`` when absent; else 400."""
    try:
        limit = int(raw) if raw else default
    except ValueError as exc:
        raise BadRequest("limit must be an integer", param="limit") from exc
    if not 1 <= limit <= maximum:
        raise BadRequest(f"limit must be between 1 and {maximum}", param="limit")
    return limit
