"""Assessments: scores and feedback attached to traces.

An assessment may be written before its trace row exists (scoring and span export run on separate queues), so
there is no foreign key; ``search_assessments(model_id=...)`` joins through the traces that are stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.sql.elements import ColumnElement

from registry.entities import Assessment, now_ms
from registry.errors import AlreadyExists, NotFound
from registry.store.engine import Database
from registry.store.tables import assessments, traces

__all__ = ["AssessmentsRepo"]

_UNSET: Any = object()


class AssessmentsRepo:
    _db: Database

    def log_assessment(self, assessment: Assessment) -> Assessment:
        with self._db.write("log assessment") as conn:
            row = assessment.model_dump(mode="json")
            if not self._db.insert_new(conn, assessments, ["assessment_id"], row):
                raise AlreadyExists(f"assessment {assessment.assessment_id} already exists")
        return assessment

    def get_assessment(self, assessment_id: str) -> Assessment:
        with self._db.read("get assessment") as conn:
            return self._assessment(conn, assessment_id)

    def update_assessment(
        self,
        assessment_id: str,
        value: bool | float | str | None = _UNSET,
        rationale: str | None = _UNSET,
        metadata: Mapping[str, Any] | None = _UNSET,
    ) -> Assessment:
        """Change only the arguments given; ``None`` is a value (it clears), omission keeps the stored one."""
        changes: dict[str, Any] = {}
        if value is not _UNSET:
            changes["value"] = value
        if rationale is not _UNSET:
            changes["rationale"] = rationale
        if metadata is not _UNSET:
            changes["metadata"] = dict(metadata or {})
        with self._db.write("update assessment") as conn:
            current = self._assessment(conn, assessment_id)
            updated = Assessment.model_validate(
                current.model_dump() | changes | {"last_updated_time": now_ms()}
            )
            row = updated.model_dump(mode="json", include={*changes, "last_updated_time"})
            conn.execute(
                update(assessments).where(assessments.c.assessment_id == assessment_id).values(**row)
            )
            return updated

    def delete_assessment(self, assessment_id: str) -> None:
        with self._db.write("delete assessment") as conn:
            deleted = conn.execute(assessments.delete().where(assessments.c.assessment_id == assessment_id))
            if deleted.rowcount == 0:
                raise NotFound(f"assessment {assessment_id!r} not found")

    def search_assessments(
        self,
        trace_id: str | None = None,
        model_id: str | None = None,
        name: str | None = None,
        since_ms: int | None = None,
        limit: int = 1000,
    ) -> list[Assessment]:
        """Oldest first, so summaries and tails read in the order scores were produced."""
        conditions: list[ColumnElement[bool]] = []
        if trace_id is not None:
            conditions.append(assessments.c.trace_id == trace_id)
        if model_id is not None:
            conditions.append(
                assessments.c.trace_id.in_(select(traces.c.trace_id).where(traces.c.model_id == model_id))
            )
        if name is not None:
            conditions.append(assessments.c.name == name)
        if since_ms is not None:
            conditions.append(assessments.c.creation_time >= since_ms)
        query = (
            select(assessments)
            .where(*conditions)
            .order_by(assessments.c.creation_time, assessments.c.assessment_id)
            .limit(limit)
        )
        with self._db.read("search assessments") as conn:
            return [Assessment.model_validate(dict(r)) for r in conn.execute(query).mappings()]

    def _assessment(self, conn: Connection, assessment_id: str) -> Assessment:
        row = (
            conn.execute(select(assessments).where(assessments.c.assessment_id == assessment_id))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"assessment {assessment_id!r} not found")
        return Assessment.model_validate(dict(row))
