"""Spans exported over OTLP/HTTP to a real (small) receiver on loopback, decoded with opentelemetry-proto."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from runtime.agents import ResponsesAgent, ResponsesAgentRequest, ResponsesAgentResponse
from runtime.observability import SpanType, span
from runtime.observability.providers import OTLP_SHUTDOWN_SECONDS, otlp_processor
from runtime.version import __version__ as runtime_version
from tests.serving.agents import loaded


class Receiver:
    """Accepts ``POST /v1/traces`` and keeps the decoded export requests."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                message = ExportTraceServiceRequest()
                message.ParseFromString(body)
                received.requests.append(message)
                received.headers.append({k.lower(): v for k, v in self.headers.items()})
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def spans(self) -> list[tuple[dict[str, Any], Any]]:
        """(resource attributes, span) for every span received."""
        found = []
        for request in self.requests:
            for resource_spans in request.resource_spans:
                resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    found.extend((resource, s) for s in scope_spans.spans)
        return found


def _value(value: AnyValue) -> Any:
    return getattr(value, value.WhichOneof("value") or "string_value")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    rec.thread.start()
    try:
        yield rec
    finally:
        rec.server.shutdown()
        rec.server.server_close()
        rec.thread.join(5)


class WithTool(ResponsesAgent):
    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        with span("lookup", SpanType.TOOL):
            pass
        return ResponsesAgentResponse(output=[self.create_text_output_item("ok", "m1")])


def test_spans_are_exported_over_otlp_http(
    traced: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "support-runtime")
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,service.version=2.3.4,host.name=pod-7"
    )
    app = traced(loaded(WithTool(), "tooly"))
    r = app.client.post("/v1/responses", json={"input": "hi", "user": "u1"})
    app.flush()  # force_flush drains the OTLP batch processor too

    received = receiver.spans()
    assert sorted(s.name for _, s in received) == ["invoke_agent tooly", "lookup"]
    resource, root = next((res, s) for res, s in received if s.name == "invoke_agent tooly")
    assert resource["service.name"] == "support-runtime"
    assert resource["deployment.environment"] == "test"
    assert resource["runtime.version"] == runtime_version
    # A deployment's own release and pod name win over the runtime's defaults.
    assert (resource["service.version"], resource["host.name"]) == ("2.3.4", "pod-7")
    assert f"tr-{root.trace_id.hex()}" == r.headers["x-runtime-trace-id"]
    attrs = {kv.key: _value(kv.value) for kv in root.attributes}
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["gen_ai.agent.name"] == "tooly"
    assert attrs["runtime.endpoint"] == "/v1/responses"
    assert attrs["user.id"] == "u1"
    assert attrs["runtime.status"] == "OK"
    lookup = next(s for _, s in received if s.name == "lookup")
    assert lookup.parent_span_id == root.span_id
    assert receiver.headers[0]["x-tenant"] == "acme"
    assert receiver.headers[0]["content-type"] == "application/x-protobuf"


def test_an_otlp_exporter_only_when_an_endpoint_is_configured() -> None:
    assert otlp_processor({}) is None
    assert (
        otlp_processor({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_TRACES_EXPORTER": "none"})
        is None
    )
    processor = otlp_processor({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9/v1/traces"})
    assert processor is not None
    processor.shutdown()


def test_a_request_under_a_callers_span_is_exported_as_its_child(
    traced: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    trace, caller = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    app = traced(loaded(WithTool(), "tooly"))
    r = app.client.post(
        "/invocations", json={"input": "hi"}, headers={"traceparent": f"00-{trace}-{caller}-01"}
    )
    app.flush()
    assert r.headers["x-runtime-trace-id"] == f"tr-{trace}"
    spans = {s.name: s for _, s in receiver.spans()}
    root, lookup = spans["invoke_agent tooly"], spans["lookup"]
    assert (root.trace_id.hex(), root.parent_span_id.hex()) == (trace, caller)
    assert (lookup.trace_id.hex(), lookup.parent_span_id) == (trace, root.span_id)


def test_a_collector_that_is_down_gets_a_bounded_shutdown(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not the SDK's 30 s of retries: a stopping server must not wait that long for a collector."""
    from opentelemetry.sdk._shared_internal import BatchProcessor

    asked: list[int] = []
    real = BatchProcessor.shutdown

    def spy(self: Any, timeout_millis: int = 30000) -> Any:
        asked.append(timeout_millis)
        return real(self, timeout_millis=timeout_millis)

    monkeypatch.setattr(BatchProcessor, "shutdown", spy)
    processor = otlp_processor({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9/v1/traces"})
    assert processor is not None
    processor.shutdown()
    assert asked == [int(OTLP_SHUTDOWN_SECONDS * 1000)]
