"""``/api/canaries``: the canaries of the served model as JSON, and the decisions an operator can take.

``GET /api/canaries/{id}`` returns the very report ``runtime canary status --json`` prints (variants side
by side, comparisons, verdict) plus the audit log; ``{id}`` may also be the model name (its running or
latest canary). Promote and roll back need an admin key when ``RUNTIME_ADMIN_KEYS`` is set; the loser of
two concurrent decisions gets 409.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runtime.canary.operator import show
from runtime.canary.policy import numbers
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
    states = await replica.store.history(model=request.query_params.get("model"), limit=limit)
    return json_response({"canaries": [s.summary() for s in states]})


async def get_canary(request: Request) -> Response:
    return json_response(await show(_replica(request).control, request.path_params["canary_id"]))


async def _decide(request: Request, action: str) -> Response:
    body = await admin_body(request, DecisionBody)
    replica = _replica(request)
    report = await show(replica.control, request.path_params["canary_id"])
    client = request.client.host if request.client else "unknown"
    actor = body.actor or f"api:{client}"
    act = replica.control.promote if action == "promote" else replica.control.rollback
    state = await act(report["canary"]["canary_id"], actor, body.reason, numbers(report))
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
