"""``GET /api/traces`` (filtered, paginated, newest first) and ``GET /api/traces/{trace_id}`` (span tree
and the trace's assessments: scores and human feedback).

Store queries are blocking SQL, so they run in a thread with a deadline (:mod:`runtime.store_calls`): a
slow query must not stall the streams the same event loop is serving, nor a frozen store hang the API.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from runtime.errors import NotFound, Unavailable
from runtime.observability.lazy_store import LazyStore
from runtime.observability.providers import Observability
from runtime.observability.query import normalize_trace_id, search_filters
from runtime.observability.tree import span_tree
from runtime.routes.sse import json_response
from runtime.state import runtime_state
from runtime.store_calls import store_call

__all__ = ["get_trace", "list_traces"]


def _store(request: Request) -> LazyStore:
    observability = runtime_state(request).resources.get("observability")
    if not isinstance(observability, Observability):
        raise Unavailable("no trace store is configured")
    return observability.store


async def list_traces(request: Request) -> Response:
    filters = search_filters(request.query_params)
    store = _store(request)
    found, token = await store_call(lambda: store.get().search_traces(**filters), what="trace store")
    return json_response({"traces": [t.model_dump(mode="json") for t in found], "next_page_token": token})


async def get_trace(request: Request) -> Response:
    raw = request.path_params["trace_id"]
    trace_id = normalize_trace_id(raw)
    if trace_id is None:
        raise NotFound(f"trace {raw!r} not found: ids look like tr-<32 hex>")
    store = _store(request)
    trace, spans = await store_call(lambda: store.get().get_trace(trace_id), what="trace store")
    assessments = await store_call(
        lambda: store.get().search_assessments(trace_id=trace_id), what="trace store"
    )
    return json_response(
        {
            "trace": trace.model_dump(mode="json"),
            "spans": span_tree(spans),
            "assessments": [a.model_dump(mode="json") for a in assessments],
        }
    )
