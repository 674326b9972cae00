"""Canary history: what was compared, how it ended, and every decision on the way.

Redis holds a running canary (its configuration, counters and live audit list) because every replica reads
it several times a second; the store keeps the durable record that ``runtime canary history`` reads after
Redis has been flushed or replaced. Writes are idempotent upserts keyed by the canary id, so a replica and
an operator recording the same outcome do not conflict.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from sqlalchemy import select

from registry.errors import NotFound
from registry.store.engine import Database
from registry.store.tables import canaries, canary_events

__all__ = ["CanariesRepo", "CanaryEvent", "CanaryRecord"]

_UPDATABLE = ["status", "ended_time", "decided_by", "reason", "config", "champion_version"]


class CanaryRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    canary_id: Annotated[str, Field(max_length=40)]
    model_name: str
    champion: str
    champion_version: int | None = None
    challenger_version: int
    mode: str
    weight: float
    config: dict[str, JsonValue] = Field(default_factory=dict)
    status: str
    started_by: str
    started_time: int
    ended_time: int | None = None
    decided_by: str | None = None
    reason: str | None = None


class CanaryEvent(BaseModel):
    """One audit entry: who did what, when, why, and the numbers they saw."""

    model_config = ConfigDict(frozen=True)

    canary_id: str
    time: int
    actor: str
    action: str
    reason: str | None = None
    details: dict[str, JsonValue] = Field(default_factory=dict)


class CanariesRepo:
    _db: Database

    def record_canary(self, record: CanaryRecord) -> None:
        """Insert the canary, or update how it ended when it is already recorded."""
        row = record.model_dump(mode="json")
        with self._db.write("record canary") as conn:
            conn.execute(self._db.upsert(canaries, ["canary_id"], _UPDATABLE).values(**row))

    def add_canary_event(self, event: CanaryEvent) -> None:
        with self._db.write("add canary event") as conn:
            conn.execute(canary_events.insert().values(**event.model_dump(mode="json")))

    def get_canary(self, canary_id: str) -> CanaryRecord:
        with self._db.read("get canary") as conn:
            row = conn.execute(select(canaries).where(canaries.c.canary_id == canary_id)).mappings().first()
        if row is None:
            raise NotFound(f"canary {canary_id!r} not found")
        return CanaryRecord.model_validate(dict(row))

    def list_canaries(self, model_name: str | None = None, limit: int = 50) -> list[CanaryRecord]:
        """Newest first."""
        query = select(canaries).order_by(canaries.c.started_time.desc(), canaries.c.canary_id).limit(limit)
        if model_name is not None:
            query = query.where(canaries.c.model_name == model_name)
        with self._db.read("list canaries") as conn:
            return [CanaryRecord.model_validate(dict(r)) for r in conn.execute(query).mappings()]

    def canary_events(self, canary_id: str) -> list[CanaryEvent]:
        """Oldest first: the audit trail in the order decisions were taken."""
        query = (
            select(*(canary_events.c[k] for k in CanaryEvent.model_fields))
            .where(canary_events.c.canary_id == canary_id)
            .order_by(canary_events.c.id)
        )
        with self._db.read("list canary events") as conn:
            return [CanaryEvent.model_validate(dict(r)) for r in conn.execute(query).mappings()]
