"""The span exporter's fast path: ``log_trace_rows``, JSON columns already serialised, on both backends."""

from __future__ import annotations

import json
from typing import Any

import pytest

from registry.entities import SpanEvent, SpanRecord, TraceRecord, TraceStatus
from registry.errors import NotFound
from registry.store import SqlStore
from registry.store.traces_repo import SPAN_JSON_COLUMNS, TRACE_JSON_COLUMNS, json_text
from tests.registry.helpers import span, trace

BASE_MS = 1_700_000_000_000


def rows_of(record: TraceRecord | SpanRecord, json_columns: tuple[str, ...]) -> dict[str, Any]:
    """The row a caller of the fast path builds: every column, JSON columns as JSON text."""
    row = record.model_dump(mode="json")
    for name in json_columns:
        row[name] = json_text(row[name]) if row.get(name) is not None else None
    return row


def full_trace() -> tuple[TraceRecord, list[SpanRecord]]:
    record = trace(
        BASE_MS,
        model_id="m-" + "2" * 32,
        model_name="bot",
        model_version=4,
        endpoint="/invocations",
        status="CANCELLED",
        end_time_ns=BASE_MS * 1_000_000 + 7_000_000,
        latency_ms=7.0,
        ttft_ms=0.5,
        input_tokens=3,
        output_tokens=9,
        total_tokens=12,
        session_id="s",
        user_id="u",
        request_preview="ça va? 🙂",
        response_preview="oui",
        attributes={"gen_ai.request.stream": False, "nested": {"list": [1, 2.5, None, "x"]}, "ü": "ñ"},
        variant="challenger",
        prompts=["prompts:/greet/2", "prompts:/greet@champion"],
    )
    root = span(record.trace_id, "invoke_agent bot", span_type="AGENT", start_ns=1, end_ns=9)
    child = span(
        record.trace_id,
        "tool",
        parent=root.span_id,
        span_type="TOOL",
        start_ns=2,
        status_code="ERROR",
        status_message="boom",
        attributes={"tags": ["a", "b"]},
        events=[SpanEvent(name="exception", time_ns=3, attributes={"exception.type": "ValueError"})],
    )
    return record, [root, child]


def test_rows_round_trip_like_records(store: SqlStore) -> None:
    record, spans = full_trace()
    store.log_trace_rows(
        [rows_of(record, TRACE_JSON_COLUMNS)], [rows_of(s, SPAN_JSON_COLUMNS) for s in spans]
    )
    stored, stored_spans = store.get_trace(record.trace_id)
    assert stored == record
    assert stored_spans == spans


def test_rows_and_records_store_the_same_thing(store: SqlStore) -> None:
    record, spans = full_trace()
    store.log_traces([record], spans)
    via_records = store.get_trace(record.trace_id)
    twin = record.model_copy(update={"trace_id": "tr-" + "f" * 32})
    twin_spans = [s.model_copy(update={"trace_id": twin.trace_id}) for s in spans]
    store.log_trace_rows(
        [rows_of(twin, TRACE_JSON_COLUMNS)], [rows_of(s, SPAN_JSON_COLUMNS) for s in twin_spans]
    )
    via_rows = store.get_trace(twin.trace_id)
    assert via_rows[0].model_copy(update={"trace_id": record.trace_id}) == via_records[0]
    assert [s.model_copy(update={"trace_id": record.trace_id}) for s in via_rows[1]] == via_records[1]


def test_rows_are_idempotent_and_the_first_trace_row_wins(store: SqlStore) -> None:
    """A trace row is never replaced through the exporter's path: in a batch or across batches, another row
    of the same trace (a second request a caller sent in its trace, or one naming another's trace) is left
    out, its spans kept."""
    record, spans = full_trace()
    span_rows = [rows_of(s, SPAN_JSON_COLUMNS) for s in spans]
    later = rows_of(record.model_copy(update={"status": TraceStatus.OK}), TRACE_JSON_COLUMNS)
    store.log_trace_rows([], span_rows[:1])  # spans may come before their trace
    store.log_trace_rows([rows_of(record, TRACE_JSON_COLUMNS), later], span_rows + span_rows)
    store.log_trace_rows([later], span_rows)
    stored, stored_spans = store.get_trace(record.trace_id)
    assert stored.status is TraceStatus.CANCELLED
    assert len(stored_spans) == 2
    # The records API (log_traces) updates, as before: an explicit write of a trace with new values.
    store.log_trace_rows([later], [], replace=True)
    assert store.get_trace(record.trace_id)[0].status is TraceStatus.OK


def test_a_root_span_kept_in_its_trace_row_reads_back_among_the_spans(store: SqlStore) -> None:
    record, (root, child) = full_trace()
    row = rows_of(record, TRACE_JSON_COLUMNS)
    inline = root.model_dump(mode="json", exclude={"trace_id"})
    row["root_span"] = json_text({**inline, "attributes": {"tags": ("x",)}})  # tuples: OpenTelemetry's
    store.log_trace_rows([row], [rows_of(child, SPAN_JSON_COLUMNS)])
    store.log_trace_rows([row], [])  # replayed: still one root
    stored, stored_spans = store.get_trace(record.trace_id)
    assert stored == record
    assert stored_spans == [root.model_copy(update={"attributes": {"tags": ["x"]}}), child]
    assert store.search_traces()[0] == [record]  # listing does not carry the root span


def test_a_root_span_in_its_trace_row_may_leave_out_what_the_row_holds(store: SqlStore) -> None:
    """The span writer's compact form: no start, end or parent (the trace's), and attributes inherited from
    the row's ``attributes`` column, the span's own winning."""
    record, (root, _) = full_trace()
    record = record.model_copy(update={"attributes": {"host.name": "vm", "shared": "row"}})
    row = rows_of(record, TRACE_JSON_COLUMNS)
    compact = root.model_dump(mode="json", exclude={"trace_id", "start_ns", "end_ns", "parent_span_id"})
    compact |= {"attributes": {"shared": "span", "own": 1}, "inherit_attributes": True}
    row["root_span"] = json_text(compact)
    store.log_trace_rows([row], [])
    _, [stored] = store.get_trace(record.trace_id)
    assert stored.start_ns == record.start_time_ns and stored.end_ns == record.end_time_ns
    assert stored.parent_span_id is None and stored.span_id == root.span_id
    assert stored.attributes == {"host.name": "vm", "shared": "span", "own": 1}


def test_rows_link_the_prompt_versions_a_trace_loaded(store: SqlStore) -> None:
    record, _ = full_trace()
    store.log_trace_rows([rows_of(record, TRACE_JSON_COLUMNS)], [])
    found, _ = store.search_traces(prompt="prompts:/greet/2")
    assert [t.trace_id for t in found] == [record.trace_id]
    # A recorded alias is not linked (it is not a version); filtering by an alias resolves it in the
    # registry now, and this store has no prompt 'greet'.
    linked = store.get_lineage("trace", record.trace_id, "upstream")
    assert [edge.src_id for edge in linked] == ["prompts:/greet/2"]
    with pytest.raises(NotFound, match="alias 'champion' of prompt 'greet' not found"):
        store.search_traces(prompt="prompts:/greet@champion")


def test_nothing_to_write_is_a_no_op(store: SqlStore) -> None:
    store.log_trace_rows([], [])
    assert store.search_traces()[0] == []


def test_json_text_handles_what_orjson_refuses() -> None:
    huge = 2**70
    assert json.loads(json_text({"n": huge})) == {"n": huge}
    event = SpanEvent(name="e", time_ns=1, attributes={"k": "v"})
    assert json.loads(json_text([event])) == [event.model_dump(mode="json")]
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_text({"k": object()})
