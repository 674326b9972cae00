"""Liveness, readiness, version and the model list."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response

from runtime.routes.sse import json_response
from runtime.state import Degraded, runtime_state
from runtime.version import __version__

__all__ = ["health", "models", "ready", "version"]


async def health(request: Request) -> Response:
    return json_response({"status": "ok"})


async def ready(request: Request) -> Response:
    state = runtime_state(request)
    problems: dict[str, str] = {}
    degraded: dict[str, str] = {}
    for name, check in state.checks.items():
        problem = await check()
        if isinstance(problem, Degraded):
            degraded[name] = str(problem)
        elif problem:
            problems[name] = problem
    slot = state.service.slot
    body: dict[str, object] = {
        "status": "not_ready" if problems else "degraded" if degraded else "ready",
        "model": slot.current.info.name,
        "checks": problems,
    }
    if degraded:
        body["degraded"] = degraded
    if slot.last_error:
        body["last_load_error"] = slot.last_error
    return json_response(body, status=200 if not problems else 503)


async def version(request: Request) -> Response:
    return json_response({"version": __version__, "runtime": "agent-runtime"})


async def models(request: Request) -> Response:
    info = runtime_state(request).service.slot.current.info
    entry = {
        "id": info.name,
        "object": "model",
        "created": int(time.time()),
        "owned_by": "agent-runtime",
        "model_id": info.model_id,
        "version": info.version,
        "uri": info.uri,
    }
    return json_response({"object": "list", "data": [entry]})
