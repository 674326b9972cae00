"""``/api/prompts...``: the prompt registry over HTTP, with the same validation and errors as the CLI.

Writes need an admin key when ``RUNTIME_ADMIN_KEYS`` is set, and go through the app's ``PromptWriter`` so
an alias move is announced to every replica (Redis) and this server's own cache at once.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from registry.entities import ChatMessage
from registry.uris import parse_prompt_uri
from runtime.errors import SchemaError
from runtime.prompts.service import PromptService
from runtime.routes.admin import admin_body, blocking, registry_of, require_admin
from runtime.routes.sse import json_response
from runtime.state import runtime_state

__all__ = ["routes"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterBody(_Body):
    template: str | list[ChatMessage]
    commit_message: str | None = None
    tags: dict[str, str] | None = None
    response_format: dict[str, Any] | None = None
    model_settings: dict[str, Any] | None = Field(default=None, alias="model_config")


class AliasBody(_Body):
    version: int


class EditBody(_Body):
    """Only what may change after registration; a ``null`` tag value deletes the tag."""

    commit_message: str | None = None
    tags: dict[str, str | None] = {}


class PromptEditBody(_Body):
    """Tags of the prompt itself (the ones search filters); a ``null`` value deletes the tag."""

    tags: dict[str, str | None] = {}


def _dump(value: BaseModel) -> object:
    return value.model_dump(mode="json", by_alias=True)


def _service(request: Request) -> PromptService:
    service: PromptService = runtime_state(request).resources["prompts"]
    return service


async def search(request: Request) -> Response:
    q = request.query_params
    prompts = await blocking(
        registry_of(request).search_prompts,
        q.get("filter"),
        name_like=q.get("name_like"),
        alias=q.get("alias"),
    )
    return json_response({"prompts": [_dump(p) for p in prompts]})


async def get_prompt(request: Request) -> Response:
    client = registry_of(request)
    name = request.path_params["name"]
    prompt = await blocking(client.get_prompt, name)
    versions = await blocking(client.list_prompt_versions, name)
    return json_response({"prompt": _dump(prompt), "versions": [_dump(v) for v in versions]})


async def edit_prompt(request: Request) -> Response:
    body = await admin_body(request, PromptEditBody)
    if any(not key for key in body.tags):
        raise SchemaError("tag keys must be non-empty strings")  # checked before any of the edits is made
    client = registry_of(request)
    name = request.path_params["name"]
    for key, value in body.tags.items():
        if value is None:
            await blocking(client.delete_prompt_tag, name, key)
        else:
            await blocking(client.set_prompt_tag, name, key, value)
    return json_response({"prompt": _dump(await blocking(client.get_prompt, name))})


async def register(request: Request) -> Response:
    body = await admin_body(request, RegisterBody)
    template: Any = body.template
    if not isinstance(template, str):
        template = [message.model_dump() for message in template]
    version = await blocking(
        _service(request).writer.register,
        request.path_params["name"],
        template,
        commit_message=body.commit_message,
        tags=body.tags,
        response_format=body.response_format,
        model_config=body.model_settings,
    )
    return json_response({"prompt_version": _dump(version)}, status=201)


async def get_version(request: Request) -> Response:
    p = request.path_params
    version = await blocking(registry_of(request).load_prompt, p["name"], p["version"])
    return json_response({"prompt_version": _dump(version)})


async def edit_version(request: Request) -> Response:
    body = await admin_body(request, EditBody)
    if any(not key for key in body.tags):
        raise SchemaError("tag keys must be non-empty strings")  # checked before any of the edits is made
    p = request.path_params
    writer = _service(request).writer
    if "commit_message" in body.model_fields_set:
        await blocking(writer.edit_message, p["name"], p["version"], body.commit_message)
    for key, value in body.tags.items():
        await blocking(writer.set_tag, p["name"], p["version"], key, value)
    version = await blocking(registry_of(request).load_prompt, p["name"], p["version"])
    return json_response({"prompt_version": _dump(version)})


async def resolve(request: Request) -> Response:
    """``uri`` must be a prompt URI: a bare name is a malformed URI here (400), not an unknown prompt."""
    uri = request.query_params.get("uri", "")
    parse_prompt_uri(uri)
    version = await blocking(registry_of(request).load_prompt, uri)
    return json_response({"prompt_version": _dump(version)})


async def set_alias(request: Request) -> Response:
    body = await admin_body(request, AliasBody)
    p = request.path_params
    version = await blocking(_service(request).writer.set_alias, p["name"], p["alias"], body.version)
    return json_response({"prompt_version": _dump(version)})


async def delete_alias(request: Request) -> Response:
    require_admin(request)
    p = request.path_params
    await blocking(_service(request).writer.delete_alias, p["name"], p["alias"])
    return Response(status_code=204)


routes = [
    Route("/api/prompts", search, methods=["GET"]),
    Route("/api/prompts/resolve", resolve, methods=["GET"]),
    Route("/api/prompts/{name}", get_prompt, methods=["GET"]),
    Route("/api/prompts/{name}", edit_prompt, methods=["PATCH"]),
    Route("/api/prompts/{name}/versions", register, methods=["POST"]),
    Route("/api/prompts/{name}/versions/{version}", get_version, methods=["GET"]),
    Route("/api/prompts/{name}/versions/{version}", edit_version, methods=["PATCH"]),
    Route("/api/prompts/{name}/aliases/{alias}", set_alias, methods=["PUT"]),
    Route("/api/prompts/{name}/aliases/{alias}", delete_alias, methods=["DELETE"]),
]
