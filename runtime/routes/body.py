"""Reading a JSON request body: content type, size limit and JSON syntax, each with its own error."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from runtime.errors import EmptyInput, InvalidJSON, PayloadTooLarge, SchemaError, UnsupportedMediaType
from runtime.routes.errors import schema_error

__all__ = ["parse_model", "read_json"]

M = TypeVar("M", bound=BaseModel)


async def read_json(request: Request, limit: int) -> Any:
    content_type = request.headers.get("content-type", "application/json")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(f"content type must be application/json, not {media or 'empty'}")
    size = 0
    chunks: list[bytes] = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise EmptyInput("request body is empty")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"request body is not valid JSON: {exc.msg} at position {exc.pos}") from exc


def parse_model(model: type[M], body: Any) -> M:
    if not isinstance(body, dict):
        raise SchemaError("request body must be a JSON object")
    if "input" in body and not body["input"]:
        raise EmptyInput("input must not be empty", param="input")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise schema_error(exc) from exc
