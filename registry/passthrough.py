"""Trace, assessment and lineage methods of ``RegistryClient``, which add nothing to the store's own.

Kept apart so the client module holds only the logic that spans the store and the artifact root.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from registry.entities import Assessment, LineageEdge, LineageKind, SpanRecord, TraceRecord, TraceStatus
from registry.store import SqlStore, TraceStats
from registry.store.lineage_repo import Direction

__all__ = ["StorePassthrough"]


class StorePassthrough:
    store: SqlStore

    def ping(self) -> None:
        self.store.ping()

    def log_traces(self, traces: Sequence[TraceRecord], spans: Sequence[SpanRecord] = ()) -> None:
        self.store.log_traces(traces, spans)

    def get_trace(self, trace_id: str) -> tuple[TraceRecord, list[SpanRecord]]:
        return self.store.get_trace(trace_id)

    def search_traces(
        self,
        *,
        model_id: str | None = None,
        name: str | None = None,
        status: TraceStatus | str | None = None,
        session: str | None = None,
        user: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        min_latency_ms: float | None = None,
        limit: int = 100,
        page_token: str | None = None,
        prompt: str | None = None,
    ) -> tuple[list[TraceRecord], str | None]:
        return self.store.search_traces(
            model_id=model_id,
            name=name,
            status=status,
            session=session,
            user=user,
            since_ms=since_ms,
            until_ms=until_ms,
            min_latency_ms=min_latency_ms,
            limit=limit,
            page_token=page_token,
            prompt=prompt,
        )

    def trace_stats(
        self, model_id: str | None = None, name: str | None = None, prompt: str | None = None
    ) -> TraceStats:
        return self.store.trace_stats(model_id, name, prompt)

    def log_assessment(self, assessment: Assessment) -> Assessment:
        return self.store.log_assessment(assessment)

    def get_assessment(self, assessment_id: str) -> Assessment:
        return self.store.get_assessment(assessment_id)

    def update_assessment(self, assessment_id: str, **changes: Any) -> Assessment:
        """Pass only the fields to change (``value``, ``rationale``, ``metadata``)."""
        return self.store.update_assessment(assessment_id, **changes)

    def delete_assessment(self, assessment_id: str) -> None:
        self.store.delete_assessment(assessment_id)

    def search_assessments(
        self,
        trace_id: str | None = None,
        model_id: str | None = None,
        name: str | None = None,
        since_ms: int | None = None,
        limit: int = 1000,
    ) -> list[Assessment]:
        return self.store.search_assessments(trace_id, model_id, name, since_ms, limit)

    def page_assessments(
        self,
        trace_id: str | None = None,
        model_id: str | None = None,
        name: str | None = None,
        since_ms: int | None = None,
        limit: int = 100,
        page_token: str | None = None,
    ) -> tuple[list[Assessment], str | None]:
        """Newest first, ``limit`` at a time; pass the returned token back for the next page."""
        return self.store.page_assessments(trace_id, model_id, name, since_ms, limit, page_token)

    def add_lineage(self, edges: Sequence[LineageEdge]) -> None:
        self.store.add_lineage(edges)

    def get_lineage(
        self, kind: LineageKind | str, object_id: str, direction: Direction = "both"
    ) -> list[LineageEdge]:
        return self.store.get_lineage(kind, object_id, direction)

    def model_lineage(self, model_id: str) -> Mapping[str, object]:
        """Prompts a model was built with and its traffic so far, for lineage views."""
        return {
            "prompts": [e.src_id for e in self.get_lineage(LineageKind.MODEL, model_id, "upstream")],
            "traces": self.trace_stats(model_id=model_id),
        }
