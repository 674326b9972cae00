"""A JSON Schema checker for the keywords agents' structured outputs use, without a new dependency.

Supported: ``type`` (one or a list), ``enum``, ``const``, ``properties``, ``required``,
``additionalProperties`` (bool or schema), ``items`` (one schema), ``minItems``/``maxItems``,
``minLength``/``maxLength``, ``pattern``, ``minimum``/``maximum``/``exclusiveMinimum``/``exclusiveMaximum``,
``anyOf``/``oneOf``/``allOf``/``not``, and local ``$ref`` to ``#/$defs/...`` or ``#/definitions/...`` (what
pydantic's ``model_json_schema()`` produces). Other keywords are ignored, as the specification says unknown
keywords must be. Errors name the JSON path, so a rationale says where the output went wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["schema_errors"]

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _is_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    expected = _TYPES.get(kind)
    return expected is not None and isinstance(value, expected)


_BOUNDS = (("minimum", ">="), ("maximum", "<="), ("exclusiveMinimum", ">"), ("exclusiveMaximum", "<"))


def _holds(value: float, sign: str, bound: float) -> bool:
    if sign == ">=":
        return value >= bound
    if sign == "<=":
        return value <= bound
    return value > bound if sign == ">" else value < bound


class _Checker:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.errors: list[str] = []

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return schema
        node: Any = self.root
        for part in ref[2:].split("/"):
            node = node.get(part) if isinstance(node, Mapping) else None
        return node if isinstance(node, Mapping) else {}

    def ok(self, value: Any, schema: Any, path: str) -> bool:
        before = len(self.errors)
        self.check(value, schema, path)
        return len(self.errors) == before

    def quietly(self, value: Any, schema: Any, path: str) -> bool:
        saved = self.errors
        self.errors = []
        try:
            return self.ok(value, schema, path)
        finally:
            self.errors = saved

    def check(self, value: Any, schema: Any, path: str) -> None:
        if schema is True or schema == {}:
            return
        if schema is False:
            self.errors.append(f"{path}: no value is allowed here")
            return
        if not isinstance(schema, Mapping):
            return
        schema = self.resolve(schema)
        self._generic(value, schema, path)
        self._combinators(value, schema, path)
        if isinstance(value, dict):
            self._object(value, schema, path)
        elif isinstance(value, list):
            self._array(value, schema, path)
        elif isinstance(value, str):
            self._string(value, schema, path)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self._number(value, schema, path)

    def _generic(self, value: Any, schema: Mapping[str, Any], path: str) -> None:
        kinds = schema.get("type")
        if kinds is not None:
            allowed = [kinds] if isinstance(kinds, str) else list(kinds)
            if not any(_is_type(value, k) for k in allowed):
                self.errors.append(f"{path}: expected {' or '.join(allowed)}, got {type(value).__name__}")
        if "enum" in schema and value not in schema["enum"]:
            self.errors.append(f"{path}: {value!r} is not one of {schema['enum']!r}")
        if "const" in schema and value != schema["const"]:
            self.errors.append(f"{path}: expected {schema['const']!r}")

    def _combinators(self, value: Any, schema: Mapping[str, Any], path: str) -> None:
        for sub in schema.get("allOf", []):
            self.check(value, sub, path)
        if "anyOf" in schema and not any(self.quietly(value, s, path) for s in schema["anyOf"]):
            self.errors.append(f"{path}: matches none of anyOf")
        if "oneOf" in schema:
            matched = sum(self.quietly(value, s, path) for s in schema["oneOf"])
            if matched != 1:
                self.errors.append(f"{path}: matches {matched} of oneOf, expected exactly 1")
        if "not" in schema and self.quietly(value, schema["not"], path):
            self.errors.append(f"{path}: must not match the 'not' schema")

    def _object(self, value: dict[str, Any], schema: Mapping[str, Any], path: str) -> None:
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                self.errors.append(f"{path}: missing required property {key!r}")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                self.check(item, properties[key], f"{path}.{key}")
            elif extra is False:
                self.errors.append(f"{path}: unexpected property {key!r}")
            elif isinstance(extra, Mapping):
                self.check(item, extra, f"{path}.{key}")

    def _array(self, value: list[Any], schema: Mapping[str, Any], path: str) -> None:
        if "minItems" in schema and len(value) < schema["minItems"]:
            self.errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            self.errors.append(f"{path}: more than {schema['maxItems']} items")
        items = schema.get("items")
        if isinstance(items, Mapping | bool):
            for i, item in enumerate(value):
                self.check(item, items, f"{path}[{i}]")

    def _string(self, value: str, schema: Mapping[str, Any], path: str) -> None:
        if "minLength" in schema and len(value) < schema["minLength"]:
            self.errors.append(f"{path}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            self.errors.append(f"{path}: longer than {schema['maxLength']} characters")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            self.errors.append(f"{path}: does not match {schema['pattern']!r}")

    def _number(self, value: float, schema: Mapping[str, Any], path: str) -> None:
        for key, sign in _BOUNDS:
            bound = schema.get(key)
            if (
                isinstance(bound, int | float)
                and not isinstance(bound, bool)
                and not _holds(value, sign, bound)
            ):
                self.errors.append(f"{path}: must be {sign} {bound}")


def schema_errors(value: Any, schema: Mapping[str, Any], limit: int = 10) -> list[str]:
    """Every violation (up to ``limit``), each as ``<json path>: <what is wrong>``; empty when valid."""
    checker = _Checker(schema)
    checker.check(value, schema, "$")
    return checker.errors[:limit]
