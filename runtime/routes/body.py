"""Validating a JSON request body against its model, with one readable error for what is wrong."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from runtime.errors import EmptyInput, SchemaError
from runtime.routes.errors import schema_error

__all__ = ["parse_model", "parse_with"]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def parse_model(model: type[M], body: Any) -> M:
    return parse_with(model.model_validate, body)


def parse_with(parse: Callable[[dict[str, Any]], T], body: Any) -> T:
    """``parse(body)`` for a JSON object with a non-empty ``input`` if any; its ValidationError explained."""
    if not isinstance(body, dict):
        raise SchemaError("request body must be a JSON object")
    if "input" in body and not body["input"]:
        raise EmptyInput("input must not be empty", param="input")
    try:
        return parse(body)
    except ValidationError as exc:
        raise schema_error(exc) from exc
