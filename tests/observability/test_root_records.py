"""Root spans handed to the store exporter as plain records: the same rows as through the span processors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Status, StatusCode
from starlette.testclient import TestClient

from runtime.app import create_app
from runtime.observability import attributes as a
from runtime.observability.records import RootFields, compact, to_rows
from runtime.observability.root_span import RootSpan
from runtime.observability.telemetry import RequestTelemetry
from tests.observability.conftest import observability_of, settings_for
from tests.serving.agents import AsyncEcho, loaded

RESOURCE = Resource({a.SERVICE_NAME: "svc", a.HOST_NAME: "h"})
SCOPE = InstrumentationScope("runtime")


SHARED: dict[str, Any] = {a.ENDPOINT: "/invocations", a.AGENT_NAME: "bot", "k": (1, 2)}
FIELDS: RootFields = (
    "req-1",
    "session-1",
    None,
    "hello",
    "ERROR",
    3,
    5,
    None,
    False,
    0.25,
    None,
    "partial",
    ("prompts:/greet/1",),
    "agent_error",
    "ValueError: boom",
)


def failed_root() -> RootSpan:
    span = RootSpan("invoke_agent bot", 0xABC, True, {}, 1_000)
    span.record_exception(ValueError("boom"), timestamp=5_000)
    span.set_attribute("extra", "yes")
    span.set_attribute(a.STATUS, "set by the agent")  # the request's own end wins
    span.set_status(Status(StatusCode.ERROR, "boom"))
    return span


def test_a_root_record_gives_the_rows_its_readable_span_gives() -> None:
    """Guards the shortcut: ``RootSpan.record`` must say to the store what ``RootSpan.finish`` says."""
    recorded, finished = failed_root(), failed_root()
    finished.span_id = recorded.span_id  # the same span, recorded twice
    via_record = to_rows(compact([recorded.record(9_000, dict(RESOURCE.attributes), SHARED, FIELDS)]))
    readable = finished.finish(9_000, RESOURCE, SCOPE, SHARED, FIELDS)
    via_span = to_rows(compact([readable]))
    assert via_record == via_span
    [trace], spans = via_record
    assert spans == []  # the root is kept in its trace row
    span = json.loads(trace["root_span"])
    assert trace["status"] == "ERROR" and span["status_code"] == "ERROR"
    assert span["events"][0]["name"] == "exception"
    assert trace["input_tokens"] == 5 and trace["output_tokens"] is None and trace["total_tokens"] == 5
    assert trace["session_id"] == "session-1" and trace["response_preview"] == "partial"
    assert readable.attributes is not None
    assert dict(readable.attributes) == {
        **SHARED,
        a.REQUEST_ID: "req-1",
        a.CONVERSATION_ID: "session-1",
        a.REQUEST_PREVIEW: "hello",
        "extra": "yes",
        a.STATUS: "ERROR",
        a.OUTPUT_EVENTS: 3,
        a.USAGE_INPUT_TOKENS: 5,
        a.USAGE_TOTAL_TOKENS: 5,
        a.USAGE_ESTIMATED: False,
        a.TIME_TO_FIRST_TOKEN: 0.25,
        a.RESPONSE_PREVIEW: "partial",
        a.PROMPTS: ("prompts:/greet/1",),
        a.ERROR_TYPE: "agent_error",
        a.ERROR_MESSAGE: "ValueError: boom",
    }


def decoded(rows: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Trace rows with their JSON columns parsed: key order in them is not part of what is stored."""
    columns = ("attributes", "prompts", "root_span")
    return [{k: json.loads(v) if k in columns else v for k, v in row.items()} for row in rows[0]]


def test_a_plain_root_record_takes_the_short_way_to_the_same_row() -> None:
    """A root nothing inside the request added to becomes its trace row without its attribute dict being
    built: held to the row its readable span (the general way) gives, over the fields' variations."""
    ok: RootFields = ("r", None, None, None, "OK", 1, None, None, True, None, None, None, None, None, None)
    variants: list[RootFields] = [
        FIELDS,
        ok,
        ("r", "", "u", "", "OK", 0, 0, 7, False, 0.0, 0.5, "", (), None, None),
        ("r", "s", None, "hi", "TIMEOUT", 2, None, 4, True, 0.1, None, "x", None, "timeout", None),
        ("r", None, None, None, "weird", 0, None, None, True, None, None, None, None, "", ""),
    ]
    shared = {
        **SHARED,
        a.AGENT_ID: "m-1",
        a.AGENT_VERSION: "3",
        a.VARIANT: "challenger",
        a.SPAN_TYPE: "AGENT",
    }
    for fields in variants:
        for status, parent in ((None, None), (Status(StatusCode.ERROR, "boom"), None), (None, 0xCA11E5)):
            recorded = RootSpan("invoke_agent bot", 0xABC, True, {}, 1_000, parent)
            finished = RootSpan("invoke_agent bot", 0xABC, True, {}, 1_000, parent)
            finished.span_id = recorded.span_id
            if status is not None:
                recorded.set_status(status)
                finished.set_status(status)
            short = to_rows(compact([recorded.record(9_000, dict(RESOURCE.attributes), shared, fields)]))
            general = to_rows(compact([finished.finish(9_000, RESOURCE, SCOPE, shared, fields)]))
            assert decoded(short) == decoded(general), fields


def test_roots_go_plainly_to_the_store_until_another_processor_wants_them(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path), agent=loaded(AsyncEcho(), "echo"))
    observability = observability_of(app)
    telemetry = observability.telemetry
    assert isinstance(telemetry, RequestTelemetry) and telemetry.spans is not None
    assert telemetry.spans.roots is observability.exporter
    with TestClient(app) as client:
        plain = client.post("/v1/responses", json={"input": "plain"}).headers["x-runtime-trace-id"]
        exporter = InMemorySpanExporter()
        observability.add_span_processor(SimpleSpanProcessor(exporter))
        assert telemetry.spans.roots is None
        seen = client.post("/v1/responses", json={"input": "seen"}).headers["x-runtime-trace-id"]
        assert observability.flush(10)
        assert [s.name for s in exporter.get_finished_spans()] == ["invoke_agent echo"]
        stored = {t: client.get(f"/api/traces/{t}").json() for t in (plain, seen)}
    for trace_id, found in stored.items():
        trace = found["trace"]
        assert trace["trace_id"] == trace_id and trace["status"] == "OK" and trace["model_name"] == "echo"
        assert trace["request_preview"] in ("plain", "seen") and trace["attributes"]["service.name"]
        assert [s["name"] for s in found["spans"]] == ["invoke_agent echo"]


def test_previews_are_stored_once_and_read_back_as_root_span_attributes(tmp_path: Path) -> None:
    """The previews are columns of the trace row; the root span kept in the row leaves them out and gets
    them back when the trace is read, with every other attribute as it was recorded."""
    from registry.store import SqlStore
    from registry.store.traces_repo import ROOT_COLUMN_ATTRIBUTES

    assert ROOT_COLUMN_ATTRIBUTES == {
        "request_preview": a.REQUEST_PREVIEW,
        "response_preview": a.RESPONSE_PREVIEW,
    }
    long_request, long_response = "question " * 100, "answer " * 140
    fields: RootFields = (
        "r", "s", None, long_request, "OK", 3, 5, 7, False, 0.1, None, long_response, None, None, None
    )  # fmt: skip
    span = RootSpan("invoke_agent bot", 0xABC, True, {}, 1_000)
    span.set_attribute("extra", "yes")
    record = span.record(9_000, dict(RESOURCE.attributes), SHARED, fields)
    general = RootSpan("invoke_agent bot", 0xABC, True, {"extra": "yes"}, 1_000)
    expected = dict(general.finish(9_000, RESOURCE, SCOPE, SHARED, fields).attributes or {})
    [row], _ = to_rows(compact([record]))
    assert long_request not in row["root_span"] and long_response not in row["root_span"]
    assert row["request_preview"] == long_request and row["response_preview"] == long_response
    with SqlStore(f"sqlite:///{tmp_path / 'traces.db'}") as store:
        store.log_trace_rows([row], [])
        _, [root] = store.get_trace(row["trace_id"])
    assert root.attributes[a.REQUEST_PREVIEW] == long_request
    assert root.attributes[a.RESPONSE_PREVIEW] == long_response
    read_back = {k: tuple(v) if isinstance(v, list) else v for k, v in root.attributes.items()}
    assert {k: v for k, v in read_back.items() if k not in RESOURCE.attributes} == expected


def test_a_root_span_stored_before_previews_moved_out_reads_as_it_did(tmp_path: Path) -> None:
    from registry.store.traces_repo import root_span_record

    trace = {
        "trace_id": "tr-" + "a" * 32,
        "start_time_ns": 1,
        "end_time_ns": 2,
        "attributes": "{}",
        "request_preview": "from the column",
        "response_preview": None,
    }
    old = {
        "span_id": "b" * 16,
        "name": "invoke_agent bot",
        "span_type": "AGENT",
        "status_code": "OK",
        "attributes": {a.REQUEST_PREVIEW: "kept in the span"},
        "events": [],
        "inherit_attributes": True,
    }
    assert root_span_record(old, trace).attributes == {a.REQUEST_PREVIEW: "kept in the span"}
    new = {**old, "attributes": {}, "column_attributes": True}
    assert root_span_record(new, trace).attributes == {a.REQUEST_PREVIEW: "from the column"}
