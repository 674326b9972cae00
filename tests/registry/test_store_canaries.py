"""Canary history in the store (SQLite and PostgreSQL): upserts keyed by canary id, events in order."""

from __future__ import annotations

import pytest

from registry.errors import NotFound
from registry.store import SqlStore
from registry.store.canaries_repo import CanaryEvent, CanaryRecord


def record(canary_id: str, started: int, **fields: object) -> CanaryRecord:
    values: dict[str, object] = {
        "canary_id": canary_id,
        "model_name": "bot",
        "champion": "@champion",
        "champion_version": 1,
        "challenger_version": 2,
        "mode": "split",
        "weight": 10.0,
        "status": "running",
        "started_by": "ann",
        "started_time": started,
    }
    return CanaryRecord.model_validate(values | fields)


def test_a_canary_is_recorded_once_and_updated_as_it_ends(store: SqlStore) -> None:
    store.record_canary(record("c-1", 1000, config={"auto": True}))
    ended = {"status": "promoted", "ended_time": 2000, "decided_by": "bob", "reason": "better"}
    store.record_canary(record("c-1", 1000, config={"auto": True, "weight": 20}, **ended))
    got = store.get_canary("c-1")
    assert (got.status, got.ended_time, got.decided_by, got.reason) == ("promoted", 2000, "bob", "better")
    assert got.config == {"auto": True, "weight": 20}
    assert len(store.list_canaries()) == 1
    with pytest.raises(NotFound, match="c-2"):
        store.get_canary("c-2")


def test_canaries_list_newest_first_and_by_model(store: SqlStore) -> None:
    store.record_canary(record("c-old", 1000))
    store.record_canary(record("c-new", 3000))
    store.record_canary(record("c-other", 2000, model_name="other"))
    assert [r.canary_id for r in store.list_canaries()] == ["c-new", "c-other", "c-old"]
    assert [r.canary_id for r in store.list_canaries("bot", limit=1)] == ["c-new"]


def test_events_keep_their_order_and_numbers(store: SqlStore) -> None:
    for i, action in enumerate(["start", "promote", "promoted"]):
        store.add_canary_event(
            CanaryEvent(canary_id="c-1", time=i, actor="ann", action=action, details={"n": i})
        )
    events = store.canary_events("c-1")
    assert [(e.action, e.details) for e in events] == [
        ("start", {"n": 0}),
        ("promote", {"n": 1}),
        ("promoted", {"n": 2}),
    ]
    assert store.canary_events("c-none") == []
