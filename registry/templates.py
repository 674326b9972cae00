"""Prompt templates with ``{{ variable }}`` placeholders, the syntax MLflow 3's prompt registry uses.

Dotted names (``{{ user.name }}``) are looked up either as a literal keyword (``**{"user.name": ...}``) or by
walking mappings/attributes (``user={"name": ...}``), so callers can pass whichever shape they already hold.
Unlike MLflow, a missing variable is reported all at once (every missing name in one error), and a stray
``{{`` that does not open a valid placeholder is rejected when the version is registered, not at format time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TypeAlias

from registry.errors import InvalidArgument

__all__ = [
    "PLACEHOLDER_RE",
    "ChatTemplate",
    "MissingVariables",
    "Template",
    "check_template",
    "format_template",
    "template_variables",
]

PLACEHOLDER_RE = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*(?:\.[a-zA-Z_][a-zA-Z0-9_]*)*)\s*\}\}")

ChatTemplate: TypeAlias = list[dict[str, str]]
Template: TypeAlias = str | ChatTemplate

_SCALARS = (str, int, float, bool)


class MissingVariables(InvalidArgument):
    """Raised by ``format`` so a caller sees every absent variable in one go, not one per attempt."""

    code = "missing_variables"

    def __init__(self, missing: Sequence[str], where: str = "prompt") -> None:
        self.missing = list(missing)
        super().__init__(f"missing variables for {where}: {', '.join(self.missing)}")


def _texts(template: Template) -> list[str]:
    if isinstance(template, str):
        return [template]
    return [message["content"] for message in template]


def check_template(template: Template) -> None:
    """Reject a ``{{`` opening no valid placeholder: almost always a typo that would render verbatim.

    An empty template (``""`` or no chat messages) is rejected too: it is what an empty file or stdin gives.
    """
    if not template:
        raise InvalidArgument("template is empty: give a text or at least one chat message")
    for text in _texts(template):
        leftover = PLACEHOLDER_RE.sub("", text)
        index = leftover.find("{{")
        if index >= 0:
            snippet = leftover[index : index + 30].splitlines()[0]
            raise InvalidArgument(f"unbalanced or invalid placeholder in template near {snippet!r}")


def template_variables(template: Template) -> list[str]:
    """Variable names in order of first appearance, each once."""
    seen: dict[str, None] = {}
    for text in _texts(template):
        for match in PLACEHOLDER_RE.finditer(text):
            seen.setdefault(match.group(1), None)
    return list(seen)


def _lookup(values: Mapping[str, object], name: str) -> tuple[bool, object]:
    if name in values:
        return True, values[name]
    head, *rest = name.split(".")
    if head not in values:
        return False, None
    current: object = values[head]
    for part in rest:
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif not isinstance(current, Mapping) and hasattr(current, part):
            current = getattr(current, part)
        else:
            return False, None
    return True, current


def _resolve(
    names: list[str], values: Mapping[str, object], allow_partial: bool, where: str
) -> dict[str, str]:
    found: dict[str, str] = {}
    missing: list[str] = []
    for name in names:
        present, value = _lookup(values, name)
        if not present or value is None:
            missing.append(name)
        elif not isinstance(value, _SCALARS):
            raise InvalidArgument(
                f"variable {name!r} of {where} must be a string, number or bool, not {type(value).__name__}"
            )
        else:
            found[name] = str(value)
    if missing and not allow_partial:
        raise MissingVariables(missing, where)
    return found


def format_template(
    template: Template, values: Mapping[str, object], *, allow_partial: bool = False, where: str = "prompt"
) -> Template:
    """Fill placeholders; with ``allow_partial`` unfilled ones stay as written for a later pass."""
    found = _resolve(template_variables(template), values, allow_partial, where)

    def fill(text: str) -> str:
        return PLACEHOLDER_RE.sub(lambda m: found.get(m.group(1), m.group(0)), text)

    if isinstance(template, str):
        return fill(template)
    return [{**message, "content": fill(message["content"])} for message in template]
