"""``span`` and ``trace`` for agent authors: sync, async and generator code, under the request's trace."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

from runtime.agents import ResponsesAgent, ResponsesAgentRequest, ResponsesAgentResponse
from runtime.observability import SpanType, current_trace_id, record_prompt, span, trace
from tests.observability.conftest import by_name, root_of
from tests.serving.agents import loaded


@trace(span_type=SpanType.TOOL)
def get_weather(city: str, unit: str = "C") -> dict[str, Any]:
    return {"city": city, "temp": 18, "unit": unit}


@trace
async def rerank(docs: list[str]) -> list[str]:
    await asyncio.sleep(0)
    return sorted(docs)


@trace(name="tokens", span_type=SpanType.PARSER)
def words(text: str) -> Iterator[str]:
    with span("inside words"):
        pass
    yield from text.split()


@trace(span_type=SpanType.LLM)
async def fake_llm(prompt: str) -> AsyncIterator[str]:
    for part in prompt.split():
        await asyncio.sleep(0)
        yield part


@trace(span_type=SpanType.TOOL)
def broken() -> None:
    raise KeyError("no such tool")


class Decorated(ResponsesAgent):
    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        record_prompt("prompts:/greeting/2")
        weather = get_weather("Paris", unit="F")
        docs = await rerank(["b", "a"])
        parsed = list(words("x y"))
        streamed = [p async for p in fake_llm("p q r")]
        with span("custom", SpanType.RETRIEVER, inputs="query", attributes={"k": 1, "d": {"x": 1}}) as s:
            s.set_outputs(["doc1"])
            s.set_usage(input_tokens=3)
            s.set_attribute("trace_id_seen", current_trace_id() or "")
        with pytest.raises(KeyError):
            broken()
        text = json.dumps([weather, docs, parsed, streamed])
        return ResponsesAgentResponse(output=[self.create_text_output_item(text, "m1")])


class SyncDecorated(ResponsesAgent):
    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        get_weather("Oslo")  # runs in a worker thread: must still join the request's trace
        return ResponsesAgentResponse(output=[self.create_text_output_item("ok", "m1")])

    def predict_stream(self, request: ResponsesAgentRequest) -> Iterator[Any]:
        for word in words("a b"):
            yield self.create_text_delta(word, "m1")


def test_decorated_functions_nest_under_the_root_span(traced: Any) -> None:
    app = traced(loaded(Decorated(), "decorated"))
    r = app.client.post("/v1/responses", json={"input": "hi"})
    assert r.status_code == 200
    spans = app.spans.get_finished_spans()
    root = root_of(spans)
    trace_id = root.context.trace_id
    assert all(s.context.trace_id == trace_id for s in spans)

    weather = by_name(spans, "get_weather")
    assert weather.parent is not None and weather.parent.span_id == root.context.span_id
    attrs = weather.attributes or {}
    assert attrs["runtime.span.type"] == "TOOL"
    assert attrs["gen_ai.operation.name"] == "execute_tool"
    assert attrs["gen_ai.tool.name"] == "get_weather"
    assert json.loads(str(attrs["runtime.span.inputs"])) == {"city": "Paris", "unit": "F"}
    assert json.loads(str(attrs["runtime.span.outputs"]))["temp"] == 18
    assert weather.status.status_code is StatusCode.OK

    assert json.loads(str((by_name(spans, "rerank").attributes or {})["runtime.span.outputs"])) == ["a", "b"]

    tokens = by_name(spans, "tokens")
    assert json.loads(str((tokens.attributes or {})["runtime.span.outputs"])) == ["x", "y"]
    inner = by_name(spans, "inside words")  # made current only while the generator runs
    assert inner.parent is not None and inner.parent.span_id == tokens.context.span_id

    llm = by_name(spans, "fake_llm")
    assert (llm.attributes or {})["runtime.span.type"] == "LLM"
    assert json.loads(str((llm.attributes or {})["runtime.span.outputs"])) == ["p", "q", "r"]

    custom = by_name(spans, "custom")
    cattrs = custom.attributes or {}
    assert cattrs["runtime.span.inputs"] == "query"
    assert cattrs["k"] == 1 and json.loads(str(cattrs["d"])) == {"x": 1}
    assert cattrs["gen_ai.usage.input_tokens"] == 3
    assert cattrs["trace_id_seen"] == f"tr-{trace_id:032x}"

    failed = by_name(spans, "broken")
    assert failed.status.status_code is StatusCode.ERROR
    assert "KeyError" in (failed.status.description or "")
    assert [e.name for e in failed.events] == ["exception"]

    assert (root.attributes or {})["runtime.prompts"] == ("prompts:/greeting/2",)


@pytest.mark.parametrize("stream", [False, True])
def test_spans_of_sync_agents_in_worker_threads_join_the_trace(traced: Any, stream: bool) -> None:
    app = traced(loaded(SyncDecorated(), "sync"))
    r = app.client.post("/v1/responses", json={"input": "hi", "stream": stream})
    assert r.status_code == 200
    spans = app.spans.get_finished_spans()
    root = root_of(spans)
    child = by_name(spans, "tokens" if stream else "get_weather")
    assert child.parent is not None and child.parent.span_id == root.context.span_id


def test_span_api_outside_a_request_is_harmless() -> None:
    assert current_trace_id() is None
    with span("alone") as s:
        s.set_inputs({"a": 1})
        s.set_usage(1, 2)
    assert get_weather("Rome")["city"] == "Rome"
    assert list(words("a b c")) == ["a", "b", "c"]
    record_prompt("prompts:/x/1")  # no request: nothing to record on, no error


def test_generator_closed_early_ends_its_span(traced: Any) -> None:
    class Early(ResponsesAgent):
        async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
            gen = words("a b c d")
            first = next(gen)
            gen.close()
            return ResponsesAgentResponse(output=[self.create_text_output_item(first, "m1")])

    app = traced(loaded(Early(), "early"))
    app.client.post("/v1/responses", json={"input": "hi"})
    tokens = by_name(app.spans.get_finished_spans(), "tokens")
    assert json.loads(str((tokens.attributes or {})["runtime.span.outputs"])) == ["a"]
    assert tokens.status.status_code is StatusCode.UNSET  # closed by its consumer: ended, not failed


class AnnotatesRoot(ResponsesAgent):
    """Uses only the OpenTelemetry API on the current span, which is the request's root span."""

    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        from opentelemetry import trace as otel_trace

        root = otel_trace.get_current_span()
        assert root.is_recording()
        root.set_attribute("app.customer_tier", "gold")
        root.set_attributes({"app.items": [1, 2, 3], "app.bad": {"not": "allowed"}})
        root.add_event("cache.miss", {"key": "k1"})
        root.record_exception(ValueError("handled, not fatal"))
        root.end()  # ignored: the request ends its root span
        assert root.is_recording()
        return ResponsesAgentResponse(output=[self.create_text_output_item("ok", "m1")])


def test_agents_can_annotate_the_root_span_through_the_otel_api(traced: Any) -> None:
    app = traced(loaded(AnnotatesRoot(), "annotator"))
    assert app.client.post("/v1/responses", json={"input": "hi"}).status_code == 200
    root = root_of(app.spans.get_finished_spans())
    attrs = root.attributes or {}
    assert attrs["app.customer_tier"] == "gold"
    assert attrs["app.items"] == (1, 2, 3)
    assert "app.bad" not in attrs
    assert [e.name for e in root.events] == ["cache.miss", "exception"]
    assert root.events[1].attributes["exception.type"] == "ValueError"  # type: ignore[index]
    assert root.status.status_code is StatusCode.OK
    assert root.end_time is not None and root.end_time > root.start_time  # type: ignore[operator]


class ListAttributes(ResponsesAgent):
    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        with span("search", SpanType.RETRIEVER, attributes={"app.doc_ids": ["d1", "d2"]}) as s:
            s.set_attribute("app.scores", [0.9, 0.7])
            s.set_attributes({"app.mixed": [1, "a"], "app.empty": [], "app.flags": (True, False)})
        return ResponsesAgentResponse(output=[self.create_text_output_item("ok", "m1")])


def test_lists_of_one_primitive_type_are_attribute_arrays(traced: Any) -> None:
    app = traced(loaded(ListAttributes(), "lister"))
    assert app.client.post("/v1/responses", json={"input": "hi"}).status_code == 200
    attrs = by_name(app.spans.get_finished_spans(), "search").attributes or {}
    assert (attrs["app.doc_ids"], attrs["app.scores"], attrs["app.flags"]) == (
        ("d1", "d2"),
        (0.9, 0.7),
        (True, False),
    )
    assert (attrs["app.mixed"], attrs["app.empty"]) == ('[1,"a"]', "[]")  # not an OpenTelemetry array: JSON
