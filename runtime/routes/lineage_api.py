"""``/api/lineage...``: what a model, prompt version or trace is connected to (read-only).

``GET /api/lineage?uri=...`` takes any subject (``models:/...``, ``prompts:/...``, ``tr-...``); the path
forms are the same views for clients that build URLs from names. ``recent`` (default 10, at most 1000)
bounds the list of recent traces; counts and aggregates always cover every trace.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.lineage import lineage_of
from runtime.errors import BadRequest
from runtime.routes.admin import blocking, registry_of
from runtime.routes.sse import json_response

__all__ = ["routes"]

MAX_RECENT = 1000


def _recent(request: Request) -> int:
    raw = request.query_params.get("recent", "10")
    if not raw.isdigit() or int(raw) > MAX_RECENT:
        raise BadRequest(f"recent must be an integer from 0 to {MAX_RECENT}", param="recent")
    return int(raw)


async def _view(request: Request, subject: str) -> Response:
    recent = _recent(request)
    found = await blocking(lineage_of, registry_of(request), subject, recent=recent)
    return json_response({"lineage": found.model_dump(mode="json")})


async def by_uri(request: Request) -> Response:
    uri = request.query_params.get("uri")
    if not uri:
        raise BadRequest("give the subject as ?uri= (models:/..., prompts:/... or tr-...)", param="uri")
    return await _view(request, uri)


async def model_version(request: Request) -> Response:
    p = request.path_params
    return await _view(request, f"models:/{p['name']}/{p['version']}")


async def logged_model(request: Request) -> Response:
    return await _view(request, f"models:/{request.path_params['model_id']}")


async def prompt_version(request: Request) -> Response:
    p = request.path_params
    return await _view(request, f"prompts:/{p['name']}/{p['version']}")


async def trace(request: Request) -> Response:
    return await _view(request, request.path_params["trace_id"])


routes = [
    Route("/api/lineage", by_uri, methods=["GET"]),
    Route("/api/lineage/models/{name}/versions/{version}", model_version, methods=["GET"]),
    Route("/api/lineage/logged-models/{model_id}", logged_model, methods=["GET"]),
    Route("/api/lineage/prompts/{name}/versions/{version}", prompt_version, methods=["GET"]),
    Route("/api/lineage/traces/{trace_id}", trace, methods=["GET"]),
]
