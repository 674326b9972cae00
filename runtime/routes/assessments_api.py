"""``/api/assessments`` (query, summary) and ``POST /api/traces/{trace_id}/feedback`` (human feedback).

Feedback needs a serving key, not an admin key: it is what an application's end users send (a thumbs up,
a correction), through the same credentials as their requests. Spans reach the store about a second after
a response, so a client that sends feedback right after its answer would find no trace yet: the route
waits for it (bounded) before answering 404.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictBool, StrictFloat, StrictInt, StrictStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.entities import Assessment, SourceType, TraceRecord
from registry.errors import NotFound as RegistryNotFound
from registry.store.assessments_repo import MAX_ASSESSMENT_PAGE
from runtime.errors import BadRequest, NotFound
from runtime.evaluation.online import OnlineEvaluation
from runtime.evaluation.summary import summarize
from runtime.observability.query import normalize_trace_id, parse_time_ms
from runtime.routes.admin import blocking, registry_of
from runtime.routes.body import parse_model
from runtime.routes.exchange import limit_param, read_json
from runtime.routes.sse import json_response
from runtime.state import runtime_state

__all__ = ["TRACE_WAIT", "routes"]

TRACE_WAIT = 3.0  # seconds feedback waits for its trace to be stored


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=256)
    value: StrictBool | StrictInt | StrictFloat | StrictStr
    rationale: str | None = Field(default=None, max_length=10_000)
    user: str | None = Field(default=None, max_length=256)
    metadata: dict[str, JsonValue] = Field(default_factory=dict)


def _filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    trace_id = q.get("trace_id")
    if trace_id:
        trace_id = normalize_trace_id(trace_id)
        if trace_id is None:
            raise BadRequest("trace_id must look like tr-<32 hex>", param="trace_id")
    return {
        "trace_id": trace_id,
        "model_id": q.get("model_id") or None,
        "name": q.get("name") or None,
        "since_ms": parse_time_ms(q["since"], "since") if q.get("since") else None,
    }


async def list_assessments(request: Request) -> Response:
    """Newest first, keyset-paged as ``GET /api/traces``: ``limit``, ``page_token`` -> ``next_page_token``."""
    q = request.query_params
    found, token = await blocking(
        registry_of(request).page_assessments,
        **_filters(request),
        limit=limit_param(q.get("limit"), 100, MAX_ASSESSMENT_PAGE),
        page_token=q.get("page_token") or None,
    )
    return json_response(
        {"assessments": [a.model_dump(mode="json") for a in found], "next_page_token": token}
    )


async def assessment_summary(request: Request) -> Response:
    """Per score name: count, pass rate or mean with a 95 % interval, errors (same filters as the list)."""
    filters = _filters(request) | {"limit": 1_000_000}
    found = await blocking(registry_of(request).search_assessments, **filters)
    return json_response({"summary": [row.to_json() for row in summarize(found)]})


async def _stored_trace(request: Request, trace_id: str) -> TraceRecord:
    client = registry_of(request)
    deadline = time.monotonic() + TRACE_WAIT
    while True:
        try:
            return (await blocking(client.get_trace, trace_id))[0]
        except RegistryNotFound:
            if time.monotonic() >= deadline:
                raise NotFound(f"trace {trace_id} not found") from None
        await asyncio.sleep(0.2)


async def post_feedback(request: Request) -> Response:
    raw = request.path_params["trace_id"]
    trace_id = normalize_trace_id(raw)
    if trace_id is None:
        raise NotFound(f"trace {raw!r} not found: ids look like tr-<32 hex>")
    state = runtime_state(request)
    body = parse_model(FeedbackBody, await read_json(request, state.settings.max_body_bytes))
    trace = await _stored_trace(request, trace_id)
    # What the feedback is about comes from the trace, never from the caller: the canary counts scores by
    # these keys, and a caller must not attribute feedback to a model or variant its request did not have.
    where = {
        "model_id": trace.model_id,
        "model_name": trace.model_name,
        "model_version": trace.model_version,
        "variant": trace.variant,
    }
    metadata = {k: v for k, v in body.metadata.items() if k not in where}
    metadata.update((k, v) for k, v in where.items() if v is not None)
    assessment = Assessment(
        trace_id=trace_id,
        name=body.name,
        value=body.value,
        rationale=body.rationale,
        source_type=SourceType.HUMAN,
        source_id=body.user or "anonymous",
        metadata=metadata,
    )
    stored = await blocking(registry_of(request).log_assessment, assessment)
    evaluation = state.resources.get("evaluation")
    if isinstance(evaluation, OnlineEvaluation):
        evaluation.announce(stored)
    return json_response({"assessment": stored.model_dump(mode="json")}, status=201)


routes = [
    Route("/api/assessments", list_assessments, methods=["GET"]),
    Route("/api/assessments/summary", assessment_summary, methods=["GET"]),
    Route("/api/traces/{trace_id}/feedback", post_feedback, methods=["POST"]),
]
