"""The structural JSON-schema check of ``response_format``: real schemas pass, malformed ones say where."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from registry.schemas import check_json_schema


class Address(BaseModel):
    city: str
    zip: str | None = None


class Order(BaseModel):
    id: int
    items: list[str]
    ship_to: Address
    status: str = "new"


VALID: list[dict[str, Any]] = [
    Order.model_json_schema(),  # $defs, $ref, anyOf with null, defaults: what pydantic and OpenAI use
    {"type": "object", "properties": {"a": True, "b": False}, "additionalProperties": False},
    {"type": "array", "items": [{"type": "string"}, {"type": "integer"}], "additionalItems": False},
    {"type": ["string", "null"], "minLength": 1, "maxLength": 10, "pattern": "^a", "format": "email"},
    {"type": "number", "minimum": 0, "exclusiveMaximum": 1.5, "multipleOf": 0.5},
    {"enum": ["a", "b"], "x-vendor-extension": {"anything": "goes"}},
    {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "prefixItems": [True]},
    {"if": {"type": "string"}, "then": {"minLength": 1}, "else": {"type": "null"}, "not": {"const": 0}},
]


@pytest.mark.parametrize("schema", VALID)
def test_real_schemas_pass(schema: dict[str, Any]) -> None:
    check_json_schema(schema)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (["type", "object"], r"must be a JSON schema \(e\.g\. .*\), not list"),
        ({"answer": "string"}, r"not dict \{'answer': 'string'\}"),
        ({"type": []}, r"response_format\.type: must name at least one type"),
        ({"type": ["string", "text"]}, r"'text' is not a JSON schema type"),
        ({"type": "object", "properties": {"a": "string"}}, r"properties\.a: a subschema must be an object"),
        ({"type": "array", "items": [{"type": "nope"}]}, r"items\[0\]\.type: 'nope'"),
        ({"type": "object", "$defs": {"A": {"required": [1]}}}, r"\$defs\.A\.required"),
        ({"type": "number", "minimum": "0"}, r"minimum: must be a number"),
        ({"type": "number", "maximum": True}, r"maximum: must be a number"),
        ({"type": "string", "maxLength": 1.5}, r"maxLength: must be a non-negative integer"),
        ({"type": "string", "pattern": 3}, r"pattern: must be a string"),
        ({"enum": "a"}, r"enum: must be a non-empty list"),
        ({"type": "object", "not": "x"}, r"not: a subschema must be"),
        ({"oneOf": {"type": "string"}}, r"oneOf: must be a non-empty list of subschemas"),
    ],
)
def test_malformed_schemas_name_the_path(schema: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_json_schema(schema)
