"""Lineage edges between registry objects (prompt version -> model, model -> trace, trace -> assessment...).

Edges are identified by their two ends, so recording the same link twice is harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from sqlalchemy import and_, or_, select

from registry.entities import LineageEdge, LineageKind
from registry.store.engine import Database
from registry.store.tables import lineage_edges

__all__ = ["LineageRepo"]

Direction = Literal["upstream", "downstream", "both"]
_KEYS = ["src_kind", "src_id", "dst_kind", "dst_id"]


class LineageRepo:
    _db: Database

    def add_lineage(self, edges: Sequence[LineageEdge]) -> None:
        if not edges:
            return
        rows = [edge.model_dump(mode="json") for edge in edges]
        with self._db.write("add lineage") as conn:
            conn.execute(self._db.insert_ignore(lineage_edges, _KEYS), rows)

    def get_lineage(
        self, kind: LineageKind | str, object_id: str, direction: Direction = "both"
    ) -> list[LineageEdge]:
        """Edges touching one object: ``upstream`` ends at it, ``downstream`` starts from it."""
        kind = LineageKind(kind).value
        as_dst = and_(lineage_edges.c.dst_kind == kind, lineage_edges.c.dst_id == object_id)
        as_src = and_(lineage_edges.c.src_kind == kind, lineage_edges.c.src_id == object_id)
        condition = {"upstream": as_dst, "downstream": as_src, "both": or_(as_dst, as_src)}[direction]
        query = select(*(lineage_edges.c[k] for k in [*_KEYS, "created_time"])).where(condition)
        with self._db.read("get lineage") as conn:
            rows = conn.execute(query.order_by(lineage_edges.c.id)).mappings()
            return [LineageEdge.model_validate(dict(r)) for r in rows]
