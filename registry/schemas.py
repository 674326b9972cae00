"""A structural check that a prompt's ``response_format`` is a JSON schema, without a JSON-schema library.

MLflow stores whatever dict it is given, so a typo (``{"answer": "str"}``, ``"properties": ["a"]``) surfaces
only when an LLM provider rejects the request, long after registration. We check the shape of every keyword
a provider reads (types, properties, items, combinators, required, enum), recursively, and name the path of
the first wrong one. Unknown keywords pass: schemas carry vendor extensions, and the check must not reject
what a provider accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["SCHEMA_TYPES", "check_json_schema"]

SCHEMA_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
_MARKERS = frozenset(
    {"type", "properties", "$ref", "$schema", "anyOf", "oneOf", "allOf", "enum", "const", "items"}
)
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SUBSCHEMAS = (
    "additionalProperties",
    "additionalItems",
    "unevaluatedProperties",
    "unevaluatedItems",
    "propertyNames",
    "contains",
    "not",
    "if",
    "then",
    "else",
)
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
_NUMBERS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_STRINGS = ("$ref", "$schema", "$id", "title", "description", "format", "pattern")


# A top-level mapping must use at least one of these to count as a schema ({"answer": "str"} uses none).
_STRUCTURAL = _MARKERS | {*_SCHEMA_MAPS, *_SUBSCHEMAS, *_SCHEMA_LISTS}


class SchemaShapeError(ValueError):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


def check_json_schema(value: object, path: str = "response_format") -> None:
    """Raise ``ValueError`` naming the first keyword of ``value`` that is not JSON-schema shaped."""
    example = "{'type': 'object', 'properties': {...}}"
    if not isinstance(value, Mapping) or not _STRUCTURAL & value.keys():
        raise ValueError(f"{path} must be a JSON schema (e.g. {example}), not {_kind(value)} {value!r:.60}")
    try:
        _check_schema(value, path)
    except SchemaShapeError as exc:
        raise ValueError(f"{path} must be a JSON schema: {exc}") from None


def _check_schema(schema: object, path: str) -> None:
    if isinstance(schema, bool):  # true / false are valid subschemas
        return
    if not isinstance(schema, Mapping):
        raise SchemaShapeError(path, f"a subschema must be an object or a boolean, not {_kind(schema)}")
    for key, rule in _RULES.items():
        if key in schema:
            rule(schema[key], f"{path}.{key}")


def _items(value: object, path: str) -> None:
    """A schema, or (drafts 4 to 7) a list of them."""
    if isinstance(value, list):
        _schema_list(value, path)
    else:
        _check_schema(value, path)


def _type(value: object, path: str) -> None:
    names = value if isinstance(value, list) else [value]
    if not names:
        raise SchemaShapeError(path, "must name at least one type")
    for name in names:
        if name not in SCHEMA_TYPES:
            raise SchemaShapeError(
                path, f"{name!r} is not a JSON schema type ({', '.join(sorted(SCHEMA_TYPES))})"
            )


def _required(value: object, path: str) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SchemaShapeError(path, "must be a list of property names")


def _enum(value: object, path: str) -> None:
    if not isinstance(value, list) or not value:
        raise SchemaShapeError(path, "must be a non-empty list")


def _count(value: object, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SchemaShapeError(path, "must be a non-negative integer")


def _number(value: object, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaShapeError(path, "must be a number")


def _string(value: object, path: str) -> None:
    if not isinstance(value, str):
        raise SchemaShapeError(path, "must be a string")


def _schema_map(value: object, path: str) -> None:
    if not isinstance(value, Mapping):
        raise SchemaShapeError(path, f"must map names to subschemas, not {_kind(value)}")
    for name, sub in value.items():
        _check_schema(sub, f"{path}.{name}")


def _schema_list(value: object, path: str) -> None:
    if not isinstance(value, list) or not value:
        raise SchemaShapeError(path, "must be a non-empty list of subschemas")
    for index, sub in enumerate(value):
        _check_schema(sub, f"{path}[{index}]")


def _kind(value: object) -> str:
    return type(value).__name__


_RULES: dict[str, Callable[[Any, str], None]] = {
    "type": _type,
    "required": _required,
    "enum": _enum,
    **dict.fromkeys(_COUNTS, _count),
    **dict.fromkeys(_NUMBERS, _number),
    **dict.fromkeys(_STRINGS, _string),
    **dict.fromkeys(_SCHEMA_MAPS, _schema_map),
    **dict.fromkeys(_SUBSCHEMAS, _check_schema),
    **dict.fromkeys(_SCHEMA_LISTS, _schema_list),
    "items": _items,
}
