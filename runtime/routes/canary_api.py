"""``/api/canaries``: the canaries of the served model as JSON, and the decisions an operator can take.

``GET /api/canaries/{id}`` returns the very report ``runtime canary status --json`` prints (variants side
by side, comparisons, verdict) plus the audit log; ``{id}`` may also be the model name (its running or
latest canary). Promote and roll back need an admin key when ``RUNTIME_ADMIN_KEYS`` is set; the loser of
two concurrent decisions gets 409. What these routes show and do is :mod:`runtime.canary.operator`, the code
``runtime canary`` runs too (a canary Redis lost is shown and closed from the store's history by both).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runtime.canary.operator import decide, listing, show
from runtime.canary.replica import CanaryReplica
from runtime.errors import Unavailable
from runtime.routes.admin import admin_body
from runtime.routes.exchange import limit_param
from runtime.routes.sse import json_response
from runtime.state import runtime_state

__all__ = ["routes"]


class DecisionBody(BaseModel):
    reason: str | None = None
    actor: str | None = None


def _replica(request: Request) -> CanaryReplica[Any]:
    replica: CanaryReplica[Any] | None = runtime_state(request).resources.get("canary")
    if replica is None:
        raise Unavailable("canaries need Redis (RUNTIME_REDIS_URL) and a models:/<name>... target")
    return replica


async def list_canaries(request: Request) -> Response:
    replica = _replica(request)
    limit = limit_param(request.query_params.get("limit"), 50, 500)
    found = await listing(replica.control, request.query_params.get("model"), limit)
    return json_response({"canaries": found})


async def get_canary(request: Request) -> Response:
    return json_response(await show(_replica(request).control, request.path_params["canary_id"]))


async def _decide(request: Request, action: Literal["promote", "rollback"]) -> Response:
    body = await admin_body(request, DecisionBody)
    replica = _replica(request)
    client = request.client.host if request.client else "unknown"
    actor = body.actor or f"api:{client}"
    state = await decide(replica.control, request.path_params["canary_id"], action, actor, body.reason)
    return json_response({"canary": state.summary()})


async def promote(request: Request) -> Response:
    return await _decide(request, "promote")


async def rollback(request: Request) -> Response:
    return await _decide(request, "rollback")


routes = [
    Route("/api/canaries", list_canaries, methods=["GET"]),
    Route("/api/canaries/{canary_id}", get_canary, methods=["GET"]),
    Route("/api/canaries/{canary_id}/promote", promote, methods=["POST"]),
    Route("/api/canaries/{canary_id}/rollback", rollback, methods=["POST"]),
]
