"""A trace's spans as a tree, for ``GET /api/traces/{id}`` and ``runtime traces show``.

Spans arrive flat (the store keeps one row per span). Children are ordered by start time; a span whose
parent was not stored (dropped, or still running when the trace was read) is shown as a root rather than
lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from registry.entities import SpanRecord

__all__ = ["span_tree"]


def span_tree(spans: Sequence[SpanRecord]) -> list[dict[str, Any]]:
    """Nested dicts: each span's JSON plus ``duration_ms`` and ``children``."""
    nodes: dict[str, dict[str, Any]] = {}
    for record in sorted(spans, key=lambda s: (s.start_ns, s.span_id)):
        node = record.model_dump(mode="json")
        node["duration_ms"] = (record.end_ns - record.start_ns) / 1e6 if record.end_ns is not None else None
        node["children"] = []
        nodes[record.span_id] = node
    roots: list[dict[str, Any]] = []
    for node in nodes.values():
        parent = nodes.get(node["parent_span_id"] or "")
        (parent["children"] if parent is not None and parent is not node else roots).append(node)
    return roots
