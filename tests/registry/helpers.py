"""Builders shared by the registry tests."""

from __future__ import annotations

import time
import uuid

from registry.entities import LoggedModel, ModelStatus, SpanRecord, TraceRecord, new_model_id
from registry.store import SqlStore


def ready_model(store: SqlStore, name: str = "agent", **fields: object) -> LoggedModel:
    model = LoggedModel.model_validate(
        {"model_id": new_model_id(), "name": name, "artifact_location": "models/x", **fields}
    )
    store.create_logged_model(model)
    return store.finish_logged_model(model.model_id, ModelStatus.READY)


def trace(start_ms: int, **fields: object) -> TraceRecord:
    return TraceRecord.model_validate(
        {"trace_id": f"tr-{uuid.uuid4().hex}", "start_time_ns": start_ms * 1_000_000, **fields}
    )


def span(trace_id: str, name: str = "root", parent: str | None = None, **fields: object) -> SpanRecord:
    return SpanRecord.model_validate(
        {
            "trace_id": trace_id,
            "span_id": uuid.uuid4().hex[:16],
            "parent_span_id": parent,
            "name": name,
            "start_ns": time.time_ns(),
            **fields,
        }
    )
