"""``GET /api/traces`` (filtered, paginated, newest first) and ``GET /api/traces/{trace_id}`` (span tree).

Store queries are blocking SQL, so they run in a worker thread: a slow query must not stall the streams
the same event loop is serving.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from runtime.errors import BadRequest, NotFound, Unavailable
from runtime.observability.lazy_store import LazyStore
from runtime.observability.providers import Observability
from runtime.observability.tree import span_tree
from runtime.routes.sse import json_response
from runtime.state import runtime_state

__all__ = ["get_trace", "list_traces", "normalize_trace_id", "parse_time_ms"]

_TRACE_ID = re.compile(r"^(tr-)?([0-9a-f]{32})$")
_STRING_FILTERS = ("model_id", "name", "session", "user", "page_token")


def normalize_trace_id(value: str) -> str | None:
    """``tr-<32 hex>`` from either that or the bare OpenTelemetry hex id; None if it is neither."""
    match = _TRACE_ID.match(value.strip().lower())
    return f"tr-{match.group(2)}" if match else None


def parse_time_ms(value: str, param: str) -> int:
    """Milliseconds since the epoch, given as such or as an ISO 8601 time (UTC unless it says otherwise)."""
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(f"{param} must be epoch milliseconds or an ISO 8601 time", param=param) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _number(value: str, param: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(value)
    except ValueError as exc:
        raise BadRequest(f"{param} must be a number", param=param) from exc


def _store(request: Request) -> LazyStore:
    observability = runtime_state(request).resources.get("observability")
    if not isinstance(observability, Observability):
        raise Unavailable("no trace store is configured")
    return observability.store


def search_filters(params: Any) -> dict[str, Any]:
    filters: dict[str, Any] = {k: params[k] for k in _STRING_FILTERS if params.get(k)}
    if params.get("status"):
        filters["status"] = params["status"].upper()
    for name in ("since", "until"):
        if params.get(name):
            filters[f"{name}_ms"] = parse_time_ms(params[name], name)
    if params.get("min_latency_ms"):
        filters["min_latency_ms"] = _number(params["min_latency_ms"], "min_latency_ms", float)
    filters["limit"] = int(_number(params.get("limit") or "100", "limit", int))
    return filters


async def list_traces(request: Request) -> Response:
    filters = search_filters(request.query_params)
    store = _store(request)
    found, token = await anyio.to_thread.run_sync(lambda: store.get().search_traces(**filters))
    return json_response({"traces": [t.model_dump(mode="json") for t in found], "next_page_token": token})


async def get_trace(request: Request) -> Response:
    raw = request.path_params["trace_id"]
    trace_id = normalize_trace_id(raw)
    if trace_id is None:
        raise NotFound(f"trace {raw!r} not found: ids look like tr-<32 hex>")
    store = _store(request)
    trace, spans = await anyio.to_thread.run_sync(lambda: store.get().get_trace(trace_id))
    return json_response({"trace": trace.model_dump(mode="json"), "spans": span_tree(spans)})
