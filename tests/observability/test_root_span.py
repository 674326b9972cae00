"""The root span of every request, asserted on real finished spans (an in-memory exporter)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from runtime.agents import ResponsesAgent, ResponsesAgentRequest, ResponsesAgentResponse
from runtime.agents.runner import AgentRunner
from runtime.observability import SpanType, span
from runtime.protocol.call import ModelInfo
from runtime.serving import LoadedAgent
from tests.observability.conftest import by_name, root_of
from tests.serving.agents import AsyncEcho, Failing, Sleeper, loaded

MSG = {"input": [{"role": "user", "content": "hello big world"}]}


def versioned(agent: Any) -> LoadedAgent:
    info = ModelInfo(
        name="support-bot",
        model_id="m-" + "a" * 32,
        version="3",
        uri="models:/support-bot/3",
        source_commit="0123abc",
    )
    return LoadedAgent(runner=AgentRunner(agent), info=info)


def test_trace_id_of_the_response_is_the_open_telemetry_trace_id(traced: Any) -> None:
    app = traced(loaded(AsyncEcho(), "echo"))
    r = app.client.post("/v1/responses", json={"input": "hi"})
    root = root_of(app.spans.get_finished_spans())
    trace_id = f"tr-{root.context.trace_id:032x}"
    assert r.headers["x-runtime-trace-id"] == trace_id
    assert r.json()["metadata"]["trace_id"] == trace_id


def test_root_span_records_model_endpoint_usage_session_user_and_previews(traced: Any) -> None:
    app = traced(versioned(AsyncEcho()))
    body = {**MSG, "context": {"conversation_id": "conv-1", "user_id": "user-1"}}
    r = app.client.post("/invocations", json=body, headers={"x-request-id": "req-42"})
    assert r.status_code == 200
    root = root_of(app.spans.get_finished_spans())
    attrs = dict(root.attributes or {})
    assert root.name == "invoke_agent support-bot"
    assert root.kind is SpanKind.SERVER
    assert root.status.status_code is StatusCode.OK
    assert attrs["gen_ai.operation.name"] == "invoke_agent"
    assert attrs["gen_ai.agent.name"] == "support-bot"
    assert attrs["gen_ai.agent.id"] == "m-" + "a" * 32
    assert attrs["gen_ai.agent.version"] == "3"
    assert attrs["runtime.model.uri"] == "models:/support-bot/3"
    assert attrs["runtime.model.source_commit"] == "0123abc"
    assert attrs["gen_ai.request.stream"] is False
    assert attrs["runtime.endpoint"] == "/invocations"
    assert attrs["runtime.request_id"] == "req-42"
    assert attrs["runtime.status"] == "OK"
    assert attrs["gen_ai.conversation.id"] == "conv-1"
    assert attrs["user.id"] == "user-1"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (2, 3)
    assert attrs["runtime.usage.total_tokens"] == 5
    assert attrs["runtime.usage.estimated"] is False
    assert attrs["runtime.request.preview"] == "hello big world"
    assert attrs["runtime.response.preview"] == "hello big world"
    assert attrs["gen_ai.server.time_per_output_token"] > 0
    assert root.resource.attributes["service.name"] == "agent-runtime"
    assert root.resource.attributes["runtime.version"]
    assert root.resource.attributes["host.name"]


def test_stream_root_span_has_time_to_first_token_and_ends_with_the_stream(traced: Any) -> None:
    app = traced(loaded(AsyncEcho(), "echo"))
    r = app.client.post("/v1/responses", json={"input": "one two three four", "stream": True, "user": "u9"})
    assert r.status_code == 200
    root = root_of(app.spans.get_finished_spans())
    attrs = dict(root.attributes or {})
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["user.id"] == "u9"
    ttft = attrs["gen_ai.server.time_to_first_token"]
    assert 0 < ttft <= (root.end_time - root.start_time) / 1e9  # type: ignore[operator]
    assert attrs["runtime.output_events"] == 5
    assert attrs["runtime.response.preview"] == "one two three four "
    assert attrs["runtime.usage.estimated"] is True  # AsyncEcho streams no usage


def test_long_previews_are_truncated(traced: Any) -> None:
    app = traced(loaded(AsyncEcho(), "echo"))
    app.client.post("/v1/responses", json={"input": "x" * 5000})
    attrs = root_of(app.spans.get_finished_spans()).attributes or {}
    assert len(str(attrs["runtime.request.preview"])) == 1000
    assert str(attrs["runtime.request.preview"]).endswith("…")


def test_capture_content_off_keeps_no_message_text(traced: Any) -> None:
    class WithSpan(AsyncEcho):
        async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
            with span("lookup", SpanType.TOOL, inputs={"q": "secret question"}) as s:
                s.set_outputs("secret answer")
            return await super().predict(request)

    app = traced(loaded(WithSpan(), "echo"), capture_content=False)
    app.client.post("/v1/responses", json={"input": "my secret"})
    spans = app.spans.get_finished_spans()
    for recorded in spans:
        text = repr(dict(recorded.attributes or {}))
        assert "secret" not in text
    assert by_name(spans, "lookup").parent is not None


def test_capture_content_off_keeps_error_messages_out_too(traced: Any) -> None:
    app = traced(loaded(Failing(), "bad"), capture_content=False)
    app.client.post("/v1/responses", json={"input": "hi"})
    root = root_of(app.spans.get_finished_spans())
    assert "hunter2" not in repr(dict(root.attributes or {})) + str(root.status.description)
    assert (root.attributes or {})["error.type"] == "agent_error"


def test_agent_error_is_an_error_span_with_the_error_code(traced: Any) -> None:
    app = traced(loaded(Failing(), "bad"))
    r = app.client.post("/v1/responses", json={"input": "hi"})
    assert r.status_code == 500
    root = root_of(app.spans.get_finished_spans())
    attrs = root.attributes or {}
    assert root.status.status_code is StatusCode.ERROR
    assert attrs["runtime.status"] == "ERROR"
    assert attrs["error.type"] == "agent_error"
    assert "ValueError" in str(attrs["runtime.error.message"])


def test_timeout_is_a_timeout_span(traced: Any) -> None:
    app = traced(loaded(Sleeper(), "slow"), request_timeout=0.2)
    r = app.client.post("/v1/responses", json={"input": "hi"})
    assert r.status_code == 504
    root = root_of(app.spans.get_finished_spans())
    assert (root.attributes or {})["runtime.status"] == "TIMEOUT"
    assert (root.attributes or {})["error.type"] == "timeout"
    assert root.status.status_code is StatusCode.ERROR


class NestedUsage(ResponsesAgent):
    """Reports no usage itself; its LLM spans do, one of them nested inside another."""

    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        with span("plan", SpanType.LLM) as outer:
            with span("chat inner", SpanType.CHAT_MODEL) as inner:
                inner.set_usage(input_tokens=100, output_tokens=40)
            outer.set_usage(input_tokens=100, output_tokens=40)  # the same call, reported again
        with span("tool", SpanType.TOOL), span("answer", SpanType.CHAT_MODEL) as answer:
            answer.set_usage(input_tokens=7, output_tokens=3)
        return ResponsesAgentResponse(output=[self.create_text_output_item("ok", "m1")])

    async def predict_stream(self, request: ResponsesAgentRequest) -> AsyncIterator[Any]:
        response = await self.predict(request)
        yield {"type": "response.output_item.done", "item": response.output[0]}


@pytest.mark.parametrize("stream", [False, True])
def test_usage_is_summed_from_llm_spans_without_double_counting(traced: Any, stream: bool) -> None:
    app = traced(loaded(NestedUsage(), "planner"))
    r = app.client.post("/v1/responses", json={"input": "hi", "stream": stream})
    assert r.status_code == 200
    attrs = root_of(app.spans.get_finished_spans()).attributes or {}
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (107, 43)
    assert attrs["runtime.usage.estimated"] is False
    if not stream:  # the response's usage says the same as the trace
        assert r.json()["usage"]["input_tokens"] == 107


def test_usage_without_agent_or_span_usage_is_marked_estimated(traced: Any) -> None:
    class NoUsage(ResponsesAgent):
        async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
            return ResponsesAgentResponse(output=[self.create_text_output_item("four char word", "m")])

    app = traced(loaded(NoUsage(), "plain"))
    app.client.post("/v1/responses", json={"input": "abcdefgh"})
    attrs = root_of(app.spans.get_finished_spans()).attributes or {}
    assert attrs["runtime.usage.estimated"] is True
    assert attrs["gen_ai.usage.input_tokens"] == 2


def test_unsampled_requests_still_get_a_trace_id_and_metrics(
    traced: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    app = traced(loaded(AsyncEcho(), "echo"))
    r = app.client.post("/v1/responses", json={"input": "hi"})
    assert r.headers["x-runtime-trace-id"].startswith("tr-")
    assert app.spans.get_finished_spans() == ()
    assert 'runtime_requests_total{model_name="echo"' in app.client.get("/metrics").text


def test_each_request_gets_its_own_trace(traced: Any) -> None:
    app = traced(loaded(AsyncEcho(), "echo"))
    ids = {
        app.client.post("/v1/responses", json={"input": "hi"}).headers["x-runtime-trace-id"] for _ in range(5)
    }
    spans = app.spans.get_finished_spans()
    assert len(ids) == 5
    assert {f"tr-{s.context.trace_id:032x}" for s in spans} == ids
