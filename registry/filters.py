"""The small filter language of ``search_prompts``, a subset of MLflow's search syntax plus aliases.

::

    name = 'support'            name LIKE 'support-%'       name ILIKE '%Bot%'
    tags.team = 'cx'            tags.`some key` = 'v'
    alias = 'production'        (MLflow cannot search prompts by alias)

Clauses are joined with AND. Anything else is an ``InvalidArgument`` that quotes the clause it could not read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from registry.errors import InvalidArgument

__all__ = ["PromptFilter", "parse_prompt_filter"]

_CLAUSE_RE = re.compile(
    r"""^\s*(?P<key>name|alias|tags?\.(?:`[^`]+`|[\w.-]+))\s*
        (?P<op>=|!=|LIKE|ILIKE)\s*
        (?P<quote>['"])(?P<value>.*?)(?P=quote)\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_AND_RE = re.compile(r"\s+AND\s+", re.IGNORECASE)


@dataclass
class PromptFilter:
    """``name_like`` is a SQL LIKE pattern; ``case_sensitive`` is False only for ILIKE."""

    name: str | None = None
    name_like: str | None = None
    case_sensitive: bool = True
    tags: dict[str, str] = field(default_factory=dict)
    alias: str | None = None


def parse_prompt_filter(text: str | None) -> PromptFilter:
    result = PromptFilter()
    if not text or not text.strip():
        return result
    for clause in _AND_RE.split(text.strip()):
        match = _CLAUSE_RE.match(clause)
        if match is None:
            raise InvalidArgument(f"cannot parse filter clause {clause.strip()!r}")
        key, op, value = match["key"], match["op"].upper(), match["value"]
        lowered = key.lower()
        if lowered == "name" and op == "=":
            result.name = value
        elif lowered == "name" and op in {"LIKE", "ILIKE"}:
            result.name_like, result.case_sensitive = value, op == "LIKE"
        elif lowered == "alias" and op == "=":
            result.alias = value
        elif lowered.startswith(("tag.", "tags.")) and op == "=":
            result.tags[key.split(".", 1)[1].strip("`")] = value
        else:
            raise InvalidArgument(f"unsupported operator {op} in filter clause {clause.strip()!r}")
    return result
