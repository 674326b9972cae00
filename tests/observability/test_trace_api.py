"""Stored traces read back through ``/api/traces`` on a real SQLite file."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import text

from registry.store import SqlStore
from runtime.agents import ResponsesAgent, ResponsesAgentRequest, ResponsesAgentResponse
from runtime.observability import SpanType, span
from tests.observability.conftest import TracedApp
from tests.serving.agents import AsyncEcho, Failing, loaded


class Tooling(ResponsesAgent):
    name = "tooling"

    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        with span("plan", SpanType.AGENT):
            with span("search", SpanType.RETRIEVER):
                pass
            with span("chat gpt", SpanType.CHAT_MODEL) as llm:
                llm.set_usage(12, 4)
        return ResponsesAgentResponse(output=[self.create_text_output_item("done", "m1")])


def post(app: TracedApp, body: dict[str, Any], path: str = "/v1/responses") -> str:
    r = app.client.post(path, json=body)
    return str(r.headers["x-runtime-trace-id"])


def test_a_trace_reads_back_with_its_spans_as_a_tree(traced: Any) -> None:
    app = traced(loaded(Tooling(), "tooling"))
    trace_id = post(app, {"input": "find it", "user": "ann"})
    app.flush()
    body = app.client.get(f"/api/traces/{trace_id}").json()
    trace = body["trace"]
    assert trace["trace_id"] == trace_id
    assert trace["model_name"] == "tooling"
    assert trace["endpoint"] == "/v1/responses"
    assert trace["status"] == "OK"
    assert trace["user_id"] == "ann"
    assert (trace["input_tokens"], trace["output_tokens"], trace["total_tokens"]) == (12, 4, 16)
    assert trace["tokens_estimated"] is False
    assert trace["request_preview"] == "find it"
    assert trace["response_preview"] == "done"
    assert trace["latency_ms"] > 0
    assert trace["attributes"]["runtime.version"]

    [root] = body["spans"]
    assert root["name"] == "invoke_agent tooling"
    assert root["span_type"] == "AGENT"
    [plan] = root["children"]
    assert [c["name"] for c in plan["children"]] == ["search", "chat gpt"]
    assert plan["children"][1]["attributes"]["gen_ai.usage.input_tokens"] == 12
    assert plan["duration_ms"] >= plan["children"][0]["duration_ms"]

    bare = trace_id.removeprefix("tr-")
    assert app.client.get(f"/api/traces/{bare}").json()["trace"]["trace_id"] == trace_id


def test_unknown_and_malformed_trace_ids_are_404(traced: Any) -> None:
    app = traced(loaded(AsyncEcho(), "echo"))
    assert app.client.get("/api/traces/tr-" + "0" * 32).status_code == 404
    r = app.client.get("/api/traces/not-a-trace")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_search_filters_and_pages(traced: Any) -> None:
    app = traced(loaded(AsyncEcho(), "echo"))
    before = time.time_ns() // 1_000_000
    ok = [
        post(app, {"input": f"q{i}", "context": {"conversation_id": "s1"}}, "/invocations") for i in range(3)
    ]
    other = post(app, {"input": "x", "user": "bob", "stream": True})
    app.flush()

    listed = app.client.get("/api/traces").json()
    assert [t["trace_id"] for t in listed["traces"]] == [other, *reversed(ok)]  # newest first
    assert listed["next_page_token"] is None

    def ids(**params: Any) -> list[str]:
        r = app.client.get("/api/traces", params=params)
        assert r.status_code == 200, r.text
        return [t["trace_id"] for t in r.json()["traces"]]

    assert set(ids(session="s1")) == set(ok)
    assert ids(user="bob") == [other]
    assert ids(name="echo", status="ok", user="bob") == [other]
    assert ids(status="ERROR") == []
    assert len(ids(since=str(before))) == 4
    assert ids(until=str(before)) == []
    assert len(ids(since="1h")) == 4
    assert ids(min_latency_ms="100000") == []

    first = app.client.get("/api/traces", params={"limit": 3}).json()
    assert len(first["traces"]) == 3 and first["next_page_token"]
    rest = app.client.get("/api/traces", params={"limit": 3, "page_token": first["next_page_token"]}).json()
    assert [t["trace_id"] for t in rest["traces"]] == [ok[0]]


@pytest.mark.parametrize(
    ("params", "param"),
    [({"limit": "lots"}, "limit"), ({"since": "yesterday-ish"}, "since"), ({"min_latency_ms": "x"}, None)],
)
def test_bad_query_parameters_are_400(traced: Any, params: dict[str, str], param: str | None) -> None:
    app = traced(loaded(AsyncEcho(), "echo"))
    r = app.client.get("/api/traces", params=params)
    assert r.status_code == 400
    assert r.json()["error"]["code"] in ("bad_request", "invalid_argument")


def test_failed_requests_are_stored_as_errors(traced: Any) -> None:
    app = traced(loaded(Failing(), "bad"))
    assert app.client.post("/v1/responses", json={"input": "hi"}).status_code == 500
    app.flush()
    [trace] = app.client.get("/api/traces?status=error").json()["traces"]
    assert trace["status"] == "ERROR"
    assert trace["attributes"]["error.type"] == "agent_error"
    assert "ValueError" in trace["attributes"]["runtime.error.message"]


def test_store_down_requests_still_succeed_and_drops_are_counted(
    traced: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-thread writer: the store's write raises."""
    from registry.errors import StoreUnavailable

    def down(self: SqlStore, *args: Any, **kwargs: Any) -> None:
        raise StoreUnavailable("log traces: store unavailable (disk I/O error)")

    app = traced(loaded(AsyncEcho(), "echo"), trace_writer="thread")
    monkeypatch.setattr(SqlStore, "log_trace_rows", down)
    for stream in (False, True, False):
        r = app.client.post("/v1/responses", json={"input": "still works", "stream": stream})
        assert r.status_code == 200
    app.flush()
    metrics = app.client.get("/metrics").text
    assert 'runtime_trace_spans_dropped_total{reason="store_error"} 3' in metrics
    assert "runtime_trace_spans_exported_total 0" in metrics


def test_store_failing_in_the_writer_process_is_counted_in_this_process(traced: Any) -> None:
    """Writer process: the store breaks under it (its trace table is gone); the drops reach /metrics here."""
    app = traced(loaded(AsyncEcho(), "echo"))
    assert app.client.post("/v1/responses", json={"input": "before"}).status_code == 200
    app.flush()
    with SqlStore(app.observability.store.url) as store, store._db.write("break the store") as conn:
        conn.execute(text("DROP TABLE traces"))
    for stream in (False, True, False):
        r = app.client.post("/v1/responses", json={"input": "still works", "stream": stream})
        assert r.status_code == 200
    app.flush()
    metrics = app.client.get("/metrics").text
    assert 'runtime_trace_spans_dropped_total{reason="store_error"} 3' in metrics
    assert "runtime_trace_spans_exported_total 1" in metrics
    assert app.observability.exporter is not None
    assert app.observability.exporter.stats()[2] == 0


def test_tracing_off_stores_nothing_but_still_serves(traced: Any) -> None:
    app = traced(loaded(AsyncEcho(), "echo"), tracing=False)
    r = app.client.post("/v1/responses", json={"input": "hi"})
    assert r.status_code == 200 and r.headers["x-runtime-trace-id"].startswith("tr-")
    assert app.observability.tracer_provider is None
    assert app.client.get("/api/traces").json()["traces"] == []
    assert "runtime_requests_total" in app.client.get("/metrics").text
