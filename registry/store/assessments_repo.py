"""Assessments: scores and feedback attached to traces.

An assessment may be written before its trace row exists (scoring and span export run on separate queues), so
there is no foreign key; ``search_assessments(model_id=...)`` joins through the traces that are stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from registry.entities import Assessment, now_ms
from registry.errors import AlreadyExists, InvalidArgument, NotFound
from registry.store.engine import Database
from registry.store.paging import decode_token, encode_token
from registry.store.tables import assessments, traces

__all__ = ["MAX_ASSESSMENT_PAGE", "AssessmentsRepo"]

MAX_ASSESSMENT_PAGE = 1000
_TOKEN_KIND = "assessments"
_UNSET: Any = object()


def _conditions(
    trace_id: str | None, model_id: str | None, name: str | None, since_ms: int | None
) -> list[ColumnElement[bool]]:
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
    return conditions


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
        query = (
            select(assessments)
            .where(*_conditions(trace_id, model_id, name, since_ms))
            .order_by(assessments.c.creation_time, assessments.c.assessment_id)
            .limit(limit)
        )
        with self._db.read("search assessments") as conn:
            return [Assessment.model_validate(dict(r)) for r in conn.execute(query).mappings()]

    def page_assessments(
        self,
        trace_id: str | None = None,
        model_id: str | None = None,
        name: str | None = None,
        since_ms: int | None = None,
        limit: int = 100,
        page_token: str | None = None,
    ) -> tuple[list[Assessment], str | None]:
        """Newest first, a page at a time: keyset on (creation time, id), as ``search_traces``.

        Returns the page and the token of the next one (None on the last page). Scores keep arriving while
        a client pages, so the key, not an offset, says where the next page starts.
        """
        if not 1 <= limit <= MAX_ASSESSMENT_PAGE:
            raise InvalidArgument(f"limit must be between 1 and {MAX_ASSESSMENT_PAGE}")
        conditions = _conditions(trace_id, model_id, name, since_ms)
        if page_token:
            created, assessment_id = decode_token(_TOKEN_KIND, page_token)
            conditions.append(
                or_(
                    assessments.c.creation_time < created,
                    and_(assessments.c.creation_time == created, assessments.c.assessment_id < assessment_id),
                )
            )
        query = (
            select(assessments)
            .where(*conditions)
            .order_by(assessments.c.creation_time.desc(), assessments.c.assessment_id.desc())
            .limit(limit + 1)
        )
        with self._db.read("search assessments") as conn:
            found = [Assessment.model_validate(dict(r)) for r in conn.execute(query).mappings()]
        if len(found) <= limit:
            return found, None
        last = found[limit - 1]
        return found[:limit], encode_token(_TOKEN_KIND, (last.creation_time, last.assessment_id))

    def _assessment(self, conn: Connection, assessment_id: str) -> Assessment:
        row = (
            conn.execute(select(assessments).where(assessments.c.assessment_id == assessment_id))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"assessment {assessment_id!r} not found")
        return Assessment.model_validate(dict(row))
