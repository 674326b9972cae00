"""``/api/models...``: the registry over HTTP, so a remote client can manage a shared registry.

Same validation and errors as the CLI (the registry's errors render through the one error body:
400 invalid, 404 unknown, 409 conflict).
"""

from __future__ import annotations

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runtime.routes.admin import admin_body, blocking, registry_of, require_admin
from runtime.routes.exchange import limit_param
from runtime.routes.sse import json_response

__all__ = ["routes"]


class RegisterBody(BaseModel):
    model_uri: str
    tags: dict[str, str] | None = None


class AliasBody(BaseModel):
    version: int


def _dump(value: BaseModel) -> object:
    return value.model_dump(mode="json")


async def list_models(request: Request) -> Response:
    name = request.query_params.get("name") or None  # ?name= (empty) is no filter
    models = await blocking(registry_of(request).list_registered_models, name)
    return json_response({"registered_models": [_dump(m) for m in models]})


async def get_model(request: Request) -> Response:
    client = registry_of(request)
    name = request.path_params["name"]
    model = await blocking(client.get_registered_model, name)
    versions = await blocking(client.search_model_versions, name)
    return json_response({"registered_model": _dump(model), "versions": [_dump(v) for v in versions]})


async def register_version(request: Request) -> Response:
    body = await admin_body(request, RegisterBody)
    version = await blocking(
        registry_of(request).register_model, body.model_uri, request.path_params["name"], body.tags
    )
    return json_response({"model_version": _dump(version)}, status=201)


async def get_version(request: Request) -> Response:
    version = await blocking(
        registry_of(request).get_model_version, request.path_params["name"], request.path_params["version"]
    )
    return json_response({"model_version": _dump(version)})


async def set_alias(request: Request) -> Response:
    body = await admin_body(request, AliasBody)
    p = request.path_params
    version = await blocking(registry_of(request).set_alias, p["name"], p["alias"], body.version)
    return json_response({"model_version": _dump(version)})


async def delete_alias(request: Request) -> Response:
    require_admin(request)
    p = request.path_params
    await blocking(registry_of(request).delete_alias, p["name"], p["alias"])
    return Response(status_code=204)


async def list_logged(request: Request) -> Response:
    q = request.query_params
    models = await blocking(
        registry_of(request).search_logged_models,
        q.get("name") or None,  # ?name= (empty) is no filter, not a name
        q.get("status") or None,
        None,
        limit_param(q.get("limit"), 100, 10_000),
    )
    return json_response({"logged_models": [_dump(m) for m in models]})


async def get_logged(request: Request) -> Response:
    model = await blocking(registry_of(request).get_logged_model, request.path_params["model_id"])
    return json_response({"logged_model": _dump(model)})


async def resolve(request: Request) -> Response:
    uri = request.query_params.get("uri", "")
    resolved = await blocking(registry_of(request).resolve, uri)
    return json_response(
        {
            "logged_model": _dump(resolved.model),
            "model_version": _dump(resolved.version) if resolved.version else None,
        }
    )


routes = [
    Route("/api/models", list_models, methods=["GET"]),
    Route("/api/models/resolve", resolve, methods=["GET"]),
    Route("/api/models/{name}", get_model, methods=["GET"]),
    Route("/api/models/{name}/versions", register_version, methods=["POST"]),
    Route("/api/models/{name}/versions/{version}", get_version, methods=["GET"]),
    Route("/api/models/{name}/aliases/{alias}", set_alias, methods=["PUT"]),
    Route("/api/models/{name}/aliases/{alias}", delete_alias, methods=["DELETE"]),
    Route("/api/logged-models", list_logged, methods=["GET"]),
    Route("/api/logged-models/{model_id}", get_logged, methods=["GET"]),
]
