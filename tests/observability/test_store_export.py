"""The store exporter: batches, flush, bounded queue, failures counted and never raised."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from registry.entities import SpanRecord, TraceRecord, TraceStatus
from registry.store import SqlStore
from runtime.observability import attributes as a
from runtime.observability.records import to_records
from runtime.observability.store_export import StoreSpanProcessor
from tests.servers import wait_until


class Sink:
    """Records batches; can be made to fail or to block until released."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[TraceRecord], list[SpanRecord]]] = []
        self.fail = False
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def log_traces(self, traces: Sequence[TraceRecord], spans: Sequence[SpanRecord]) -> None:
        self.entered.set()
        assert self.gate.wait(10)
        if self.fail:
            raise RuntimeError("store is down")
        self.batches.append((list(traces), list(spans)))

    @property
    def spans(self) -> list[SpanRecord]:
        return [s for _, spans in self.batches for s in spans]


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
        traces, spans = sink.batches[0]
        assert [t.model_name for t in traces] == ["bot"]
        assert traces[0].model_version == 2
        assert len(spans) == 3
        child = next(s for s in spans if s.name == "child 0")
        assert child.span_type == "TOOL"
        assert child.attributes["tags"] == ["x", "y"]
        assert child.parent_span_id is not None
        assert processor.stats() == (3, {"queue_full": 0, "store_error": 0, "invalid": 0}, 0)


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


def test_to_records_skips_trace_rows_for_spans_that_are_not_request_roots() -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("background job"):
        pass
    traces, spans = to_records(exporter.get_finished_spans())
    assert traces == [] and [s.name for s in spans] == ["background job"]
    provider.shutdown()


def test_fast_record_construction_equals_pydantic_model_construct() -> None:
    """Guards records._construct against pydantic changing what a model instance holds."""
    from runtime.observability.records import _construct

    values = {
        "trace_id": "tr-" + "a" * 32,
        "span_id": "b" * 16,
        "parent_span_id": None,
        "name": "n",
        "span_type": "TOOL",
        "start_ns": 1,
        "end_ns": 2,
        "status_code": "OK",
        "status_message": None,
        "attributes": {"k": [1, 2]},
        "events": [],
    }
    fast = _construct(SpanRecord, dict(values))
    slow = SpanRecord.model_construct(**values)
    assert fast == slow
    assert fast.model_dump(mode="json") == slow.model_dump(mode="json")
    assert fast.model_fields_set == slow.model_fields_set
    assert SpanRecord.model_validate(fast.model_dump()) == slow
