"""The store exporter: batches, flush, bounded queue, failures counted and never raised (in-thread writer)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from registry.entities import SpanRecord, TraceRecord, TraceStatus
from registry.store import SqlStore
from registry.store.traces_repo import root_span_record
from runtime.observability import attributes as a
from runtime.observability.records import compact, to_rows
from runtime.observability.store_export import StoreSpanProcessor
from tests.servers import wait_until

Row = dict[str, Any]


class Sink:
    """Records batches of rows; can be made to fail or to block until released."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[Row], list[Row]]] = []
        self.fail = False
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def log_trace_rows(self, traces: Sequence[Mapping[str, Any]], spans: Sequence[Mapping[str, Any]]) -> None:
        self.entered.set()
        assert self.gate.wait(10)
        if self.fail:
            raise RuntimeError("store is down")
        self.batches.append(([dict(t) for t in traces], [dict(s) for s in spans]))

    @property
    def spans(self) -> list[Row]:
        """Every span written: span rows, and the request roots kept in their trace rows."""
        roots = [json.loads(t["root_span"]) for traces, _ in self.batches for t in traces if t["root_span"]]
        return roots + [s for _, spans in self.batches for s in spans]


@pytest.fixture
def sink() -> Sink:
    return Sink()


def tracer_for(processor: StoreSpanProcessor) -> Iterator[TracerProvider]:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    try:
        yield provider
    finally:
        provider.shutdown()


def emit_request(provider: TracerProvider, children: int = 1) -> None:
    tracer = provider.get_tracer("test")
    root_attrs = {a.ENDPOINT: "/v1/responses", a.AGENT_NAME: "bot", a.STATUS: "OK", a.AGENT_VERSION: "2"}
    with tracer.start_as_current_span("invoke_agent bot", kind=SpanKind.SERVER, attributes=root_attrs):
        for i in range(children):
            with tracer.start_as_current_span(
                f"child {i}", attributes={a.SPAN_TYPE: "TOOL", "tags": ("x", "y")}
            ):
                pass


def test_batches_are_written_on_flush_with_a_trace_row_per_root(sink: Sink) -> None:
    processor = StoreSpanProcessor(sink, schedule_delay=60)
    for provider in tracer_for(processor):
        emit_request(provider, children=2)
        assert sink.batches == []  # nothing before the delay or a flush
        assert processor.force_flush(5000)
        traces, span_rows = sink.batches[0]
        assert [t["model_name"] for t in traces] == ["bot"]
        assert traces[0]["model_version"] == 2
        assert [s["name"] for s in span_rows] == ["child 0", "child 1"]  # the root is in its trace row
        assert json.loads(traces[0]["root_span"])["name"] == "invoke_agent bot"
        spans = sink.spans
        assert len(spans) == 3
        child = next(s for s in spans if s["name"] == "child 0")
        assert child["span_type"] == "TOOL"
        assert json.loads(child["attributes"])["tags"] == ["x", "y"]
        assert child["parent_span_id"] is not None
        assert processor.stats() == (
            3,
            {"queue_full": 0, "store_error": 0, "invalid": 0, "writer_lost": 0},
            0,
        )


def test_a_full_batch_is_written_without_waiting_for_the_delay(sink: Sink) -> None:
    processor = StoreSpanProcessor(sink, schedule_delay=60, max_batch_size=4)
    for provider in tracer_for(processor):
        emit_request(provider, children=3)
        assert wait_until(lambda: len(sink.spans) == 4, timeout=5)


def test_queue_full_drops_and_counts_instead_of_blocking(sink: Sink) -> None:
    sink.gate.clear()  # the store hangs
    processor = StoreSpanProcessor(sink, schedule_delay=0.001, max_queue_size=5, max_batch_size=1)
    for provider in tracer_for(processor):
        emit_request(provider, children=0)
        assert sink.entered.wait(5)  # the worker is stuck writing the first span
        emit_request(provider, children=9)  # 10 spans into a queue of 5
        _, dropped, depth = processor.stats()
        assert dropped["queue_full"] == 5
        assert depth == 5
        sink.gate.set()
        assert processor.force_flush(5000)
        assert processor.stats()[0] == 6


def test_store_errors_drop_the_batch_and_are_counted(sink: Sink) -> None:
    sink.fail = True
    processor = StoreSpanProcessor(sink, schedule_delay=60)
    for provider in tracer_for(processor):
        emit_request(provider, children=1)
        assert processor.force_flush(5000)
        assert processor.stats()[1]["store_error"] == 2
        sink.fail = False
        emit_request(provider, children=0)
        assert processor.force_flush(5000)
        assert processor.stats()[0] == 1


def test_shutdown_drains_the_queue(sink: Sink) -> None:
    processor = StoreSpanProcessor(sink, schedule_delay=60)
    for provider in tracer_for(processor):
        emit_request(provider, children=4)
    assert len(sink.spans) == 5  # provider.shutdown() -> processor.shutdown() wrote everything


def test_records_round_trip_through_a_real_store(tmp_path: Path) -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    with SqlStore(f"sqlite:///{tmp_path / 's.db'}") as store:
        processor = StoreSpanProcessor(store, schedule_delay=60)
        provider.add_span_processor(processor)
        emit_request(provider, children=1)
        provider.shutdown()
        found, _ = store.search_traces(name="bot")
        assert len(found) == 1
        trace, stored = store.get_trace(found[0].trace_id)
        assert trace.status is TraceStatus.OK
        assert trace.endpoint == "/v1/responses"
        assert sorted(s.name for s in stored) == ["child 0", "invoke_agent bot"]


def finished_spans(emit: Any) -> Any:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    emit(provider)
    provider.shutdown()
    return exporter.get_finished_spans()


def test_rows_skip_trace_rows_for_spans_that_are_not_request_roots() -> None:
    def background(provider: TracerProvider) -> None:
        with provider.get_tracer("t").start_as_current_span("background job"):
            pass

    traces, spans = to_rows(compact(finished_spans(background)))
    assert traces == [] and [s["name"] for s in spans] == ["background job"]


def test_rows_are_valid_records() -> None:
    """Guards the pydantic-free rows: they must validate as the records the store reads back."""

    def request(provider: TracerProvider) -> None:
        emit_request(provider, children=2)
        with provider.get_tracer("t").start_as_current_span("evented") as span:
            span.add_event("retry", {"attempt": 2, "codes": (500, 503)})

    traces, spans = to_rows(compact(finished_spans(request)))
    [root] = [root_span_record(json.loads(t.pop("root_span")), t) for t in traces]  # kept in its trace row
    assert root.name == "invoke_agent bot" and root.parent_span_id is None
    assert root.start_ns == traces[0]["start_time_ns"] and root.attributes[a.ENDPOINT] == "/v1/responses"
    assert root.attributes["service.name"]  # the attributes the row keeps, inherited
    [trace] = [TraceRecord.model_validate(decoded(t, "attributes", "prompts")) for t in traces]
    assert trace.status is TraceStatus.OK and trace.model_version == 2 and trace.endpoint == "/v1/responses"
    assert trace.attributes["service.name"]  # resource attributes join the trace row
    assert a.ENDPOINT not in trace.attributes  # promoted to a column, not stored twice
    records = [SpanRecord.model_validate(decoded(s, "attributes", "events")) for s in spans]
    evented = next(r for r in records if r.name == "evented")
    assert evented.events[0].attributes == {"attempt": 2, "codes": [500, 503]}
    child = next(r for r in records if r.name == "child 0")
    assert child.span_type == "TOOL" and child.attributes["tags"] == ["x", "y"]


def decoded(row: Row, *json_columns: str) -> Row:
    return {k: json.loads(v) if k in json_columns else v for k, v in row.items()}
