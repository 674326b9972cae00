"""A request that carries W3C ``traceparent`` joins its caller's trace: same trace id, the caller's span as
the root's parent, in the store, in exported spans and in the id the client gets back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from starlette.testclient import TestClient

from runtime.agents import ResponsesAgent, ResponsesAgentRequest, ResponsesAgentResponse
from runtime.app import create_app
from runtime.observability import SpanType, span
from runtime.protocol.traceparent import parse_traceparent, parse_tracestate
from tests.observability.conftest import observability_of, settings_for
from tests.serving.agents import AsyncEcho, loaded

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = "00f067aa0ba902b7"
HEADER = f"00-{TRACE}-{CALLER}-01"


def test_a_valid_header_names_the_callers_trace_and_span() -> None:
    assert parse_traceparent(HEADER) == (TRACE, int(CALLER, 16), True)
    assert parse_traceparent(f"00-{TRACE}-{CALLER}-00") == (TRACE, int(CALLER, 16), False)
    assert parse_traceparent(f" 00-{TRACE}-{CALLER}-03 ") == (TRACE, int(CALLER, 16), True)
    # A later version may add fields after the four it shares with 00: they are not ours to read.
    assert parse_traceparent(f"cc-{TRACE}-{CALLER}-01-what-comes-next") == (TRACE, int(CALLER, 16), True)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        f"00-{TRACE}-{CALLER}",  # three fields
        f"00-{TRACE}-{CALLER}-01-extra",  # version 00 has exactly four
        f"ff-{TRACE}-{CALLER}-01",  # version ff is invalid
        f"0-{TRACE}-{CALLER}-01",
        f"00-{TRACE.upper()}-{CALLER}-01",  # hex is lowercase
        f"00-{'0' * 32}-{CALLER}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE[:-1]}-{CALLER}-01",
        f"00-{TRACE}-{CALLER}x-01",
        f"00-{TRACE}-{CALLER}-1",
        f"00-{TRACE}-{CALLER}-zz",
        "00-" + "a" * 600,
    ],
)
def test_an_invalid_header_is_ignored(value: str | None) -> None:
    assert parse_traceparent(value) is None


def test_a_valid_tracestate_is_kept_whole_in_its_order() -> None:
    assert parse_tracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE") == (
        ("rojo", "00f067aa0ba902b7"),
        ("congo", "t61rcWkgMzE"),
    )
    # Spaces and tabs around members, empty members, a multi-tenant key, a value with inner spaces.
    assert parse_tracestate(" a=1 ,\t, tenant@sys=x y , ") == (("a", "1"), ("tenant@sys", "x y"))
    assert parse_tracestate(",".join(f"k{i}=v" for i in range(32))) is not None


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        " , ",
        "Upper=1",  # keys are lowercase
        "1abc=1",  # a simple key starts with a letter
        "a=1,a=2",  # a key twice
        "a=b=c",  # '=' is not a value character
        "a=1,b",  # a member without a value
        "a=",
        "a=\x7f",
        "a=ok,b=caf\u00e9",  # not ASCII
        "k" * 257 + "=v",  # a key longer than 256
        "a=" + "v" * 257,  # a value longer than 256
        ",".join(f"k{i}=v" for i in range(33)),  # more than 32 members
        "a=" + "v" * 2000,
    ],
)
def test_an_invalid_tracestate_is_dropped_whole(value: str | None) -> None:
    assert parse_tracestate(value) is None


def test_the_callers_tracestate_stays_on_the_requests_spans(tmp_path: Path) -> None:
    """The root span and the spans under it carry the caller's ``tracestate`` (exporters send it on, as
    OTLP's ``trace_state``); without a ``traceparent`` it is not read."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    app = create_app(settings_for(tmp_path), agent=loaded(WithTool(), "tooly"))
    exporter = InMemorySpanExporter()
    observability_of(app).add_span_processor(SimpleSpanProcessor(exporter))
    vendors = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
    with TestClient(app) as client:
        joined = client.post(
            "/invocations", json={"input": "hi"}, headers={"traceparent": HEADER, "tracestate": vendors}
        )
        split = client.post(  # two headers are one list, in the order sent
            "/invocations",
            json={"input": "hi"},
            headers=[
                ("traceparent", f"00-{'5' * 32}-{CALLER}-01"),
                ("tracestate", "rojo=1"),
                ("tracestate", "congo=2"),
            ],
        )
        alone = client.post("/invocations", json={"input": "hi"}, headers={"tracestate": vendors})
        assert joined.status_code == split.status_code == alone.status_code == 200
    by_trace: dict[str, list[ReadableSpan]] = {}
    for finished in exporter.get_finished_spans():
        by_trace.setdefault(f"tr-{finished.context.trace_id:032x}", []).append(finished)
    states = [
        sorted({s.context.trace_state.to_header() for s in by_trace[r.headers["x-runtime-trace-id"]]})
        for r in (joined, split, alone)
    ]
    assert states == [[vendors], ["rojo=1,congo=2"], [""]]
    root = next(s for s in by_trace[f"tr-{TRACE}"] if s.name == "invoke_agent tooly")
    assert root.parent is not None and root.parent.trace_state.to_header() == vendors


class WithTool(ResponsesAgent):
    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        with span("lookup", SpanType.TOOL):
            pass
        return ResponsesAgentResponse(output=[self.create_text_output_item("ok", "m1")])


def _root_span(client: TestClient, trace_id: str) -> dict[str, Any]:
    body = client.get(f"/api/traces/{trace_id}").json()
    [root] = body["spans"]  # a tree: the root, whose parent is not in this trace, is its top
    return dict(root)


def test_the_request_joins_the_callers_trace_in_the_store_and_in_exported_spans(tmp_path: Path) -> None:
    """Both ways a root reaches the store (a plain record while the store is its only consumer, a finished
    SDK span once another processor wants spans) keep the caller's span as its parent."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    app = create_app(settings_for(tmp_path), agent=loaded(WithTool(), "tooly"))
    observability = observability_of(app)
    with TestClient(app) as client:
        plain = client.post("/invocations", json={"input": "hi"}, headers={"traceparent": HEADER})
        exporter = InMemorySpanExporter()
        observability.add_span_processor(SimpleSpanProcessor(exporter))
        other = "5" * 31 + "a"
        streamed = client.post(
            "/v1/responses",
            json={"input": "hi", "stream": True},
            headers={"traceparent": f"00-{other}-{CALLER}-01"},
        )
        assert plain.status_code == streamed.status_code == 200
        assert plain.headers["x-runtime-trace-id"] == f"tr-{TRACE}"
        assert streamed.headers["x-runtime-trace-id"] == f"tr-{other}"
        assert observability.flush(10)

        for trace_id in (f"tr-{TRACE}", f"tr-{other}"):
            root = _root_span(client, trace_id)
            assert root["parent_span_id"] == CALLER
            assert root["name"] == "invoke_agent tooly"
            assert [c["name"] for c in root["children"]] == ["lookup"]
            assert root["children"][0]["trace_id"] == trace_id
        listed = client.get("/api/traces", params={"model_name": "tooly"}).json()
        assert {t["trace_id"] for t in listed["traces"]} == {f"tr-{TRACE}", f"tr-{other}"}

    finished: tuple[ReadableSpan, ...] = exporter.get_finished_spans()
    root = next(s for s in finished if s.name == "invoke_agent tooly")
    lookup = next(s for s in finished if s.name == "lookup")
    assert root.parent is not None and root.parent.is_remote
    assert (root.context.trace_id, root.parent.span_id) == (int(other, 16), int(CALLER, 16))
    assert lookup.parent is not None and lookup.parent.span_id == root.context.span_id


def test_a_broken_header_starts_a_trace_of_its_own(traced: Any) -> None:
    app = traced(loaded(AsyncEcho(), "echo"))
    r = app.client.post("/invocations", json={"input": "hi"}, headers={"traceparent": f"00-{TRACE}-zz-01"})
    assert r.status_code == 200
    trace_id = r.headers["x-runtime-trace-id"]
    assert trace_id.startswith("tr-") and trace_id != f"tr-{TRACE}"
    app.flush()
    root = _root_span(app.client, trace_id)
    assert root["parent_span_id"] is None
    assert json.loads(json.dumps(root))["name"] == "invoke_agent echo"


def test_by_default_every_request_is_kept_even_under_an_unsampled_caller(traced: Any) -> None:
    app = traced(loaded(AsyncEcho(), "echo"))
    r = app.client.post(
        "/invocations", json={"input": "hi"}, headers={"traceparent": f"00-{TRACE}-{CALLER}-00"}
    )
    app.flush()
    assert r.headers["x-runtime-trace-id"] == f"tr-{TRACE}"
    assert _root_span(app.client, f"tr-{TRACE}")["parent_span_id"] == CALLER


def test_a_parent_based_sampler_follows_the_callers_decision(
    traced: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_always_on")
    app = traced(loaded(AsyncEcho(), "echo"))
    unsampled = "1" * 32
    dropped = app.client.post(
        "/invocations", json={"input": "a"}, headers={"traceparent": f"00-{unsampled}-{CALLER}-00"}
    )
    kept = app.client.post(
        "/invocations", json={"input": "b"}, headers={"traceparent": f"00-{TRACE}-{CALLER}-01"}
    )
    assert dropped.status_code == kept.status_code == 200
    assert dropped.headers["x-runtime-trace-id"] == f"tr-{unsampled}"  # still the caller's id
    app.flush()
    assert app.client.get(f"/api/traces/tr-{unsampled}").status_code == 404
    assert _root_span(app.client, f"tr-{TRACE}")["parent_span_id"] == CALLER
    assert [s.name for s in app.spans.get_finished_spans()] == ["invoke_agent echo"]


@pytest.mark.parametrize("exported", [False, True], ids=["root-record", "sdk-span"])
def test_requests_joining_one_callers_trace_are_all_kept(tmp_path: Path, exported: bool) -> None:
    """A caller may send several requests in one trace: the trace has one row, the first request's, and
    every request's root span and its spans stay in it. Both ways a root reaches the
    store (see above)."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    app = create_app(settings_for(tmp_path), agent=loaded(WithTool(), "tooly"))
    observability = observability_of(app)
    if exported:
        observability.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    callers = ["1" * 16, "2" * 16, "3" * 16]
    with TestClient(app) as client:
        for i, caller in enumerate(callers):
            r = client.post(
                "/invocations", json={"input": f"hi {i}"}, headers={"traceparent": f"00-{TRACE}-{caller}-01"}
            )
            assert r.headers["x-runtime-trace-id"] == f"tr-{TRACE}"
        assert observability.flush(10)
        body = client.get(f"/api/traces/tr-{TRACE}").json()
        listed = client.get("/api/traces").json()["traces"]
    roots = sorted(body["spans"], key=lambda s: s["parent_span_id"])
    assert [(s["name"], s["parent_span_id"]) for s in roots] == [("invoke_agent tooly", c) for c in callers]
    assert all([c["name"] for c in s["children"]] == ["lookup"] for s in roots)
    previews = {s["attributes"]["runtime.request.preview"] for s in roots}
    assert len(previews) == 3
    assert [t["trace_id"] for t in listed] == [f"tr-{TRACE}"]  # one trace, the caller's
    # Its record is the first request's: a later request naming the trace (a retry, or a caller who copied
    # another's trace id) adds its spans and replaces nothing.
    assert "hi 0" in listed[0]["request_preview"]
