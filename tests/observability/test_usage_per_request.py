"""A request's token usage, summed from its spans, is its own: whatever trace it joined and whether the
sampler keeps it."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from runtime.agents import ResponsesAgent, ResponsesAgentRequest, ResponsesAgentResponse
from runtime.observability import SpanType, span
from tests.serving.agents import loaded

CALLER_TRACE = "ab" * 16


class LlmCallingAgent(ResponsesAgent):
    """Makes one LLM span of 11 input and 6 output tokens and reports no usage itself. ``overlap`` requests
    wait for each other inside their span and again after it, so that every one's span has started, and
    then ended, before any request ends."""

    def __init__(self, overlap: int = 1) -> None:
        self.overlap = overlap
        self.counts = [0, 0]
        self.events: list[asyncio.Event] | None = None

    async def _all_here(self, step: int) -> None:
        if self.overlap == 1:
            return
        if self.events is None:
            self.events = [asyncio.Event(), asyncio.Event()]
        self.counts[step] += 1
        if self.counts[step] == self.overlap:
            self.events[step].set()
        await asyncio.wait_for(self.events[step].wait(), 10)

    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        with span("chat fake", SpanType.LLM) as llm:
            llm.set_usage(11, 6)
            await self._all_here(0)
        await self._all_here(1)
        return ResponsesAgentResponse(output=[self.create_text_output_item("ok", "m1")])


def _usage(response: Any) -> tuple[int, int]:
    body = response.json()
    return body["usage"]["input_tokens"], body["usage"]["output_tokens"]


def test_requests_joining_one_callers_trace_at_once_each_count_their_own_spans(traced: Any) -> None:
    agent = LlmCallingAgent(overlap=2)
    app = traced(loaded(agent, "bot"))

    def call(parent: str) -> Any:
        headers = {"traceparent": f"00-{CALLER_TRACE}-{parent}-01"}
        return app.client.post("/v1/responses", json={"input": "hi"}, headers=headers)

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(call, ["1" * 16, "2" * 16])
    assert first.status_code == second.status_code == 200
    assert first.headers["x-runtime-trace-id"] == second.headers["x-runtime-trace-id"] == f"tr-{CALLER_TRACE}"
    # Each answered its own spans' usage: 11/6, not the 22/12 of both.
    assert _usage(first) == _usage(second) == (11, 6)
    app.flush()
    roots = [s for s in app.spans.get_finished_spans() if s.name == "invoke_agent bot"]
    assert sorted((s.attributes or {})["gen_ai.usage.input_tokens"] for s in roots) == [11, 11]


@pytest.mark.parametrize("sampler", ["always_off", "traceidratio", "parentbased_always_off"])
def test_the_usage_answered_does_not_depend_on_the_sampler(
    traced: Any, monkeypatch: pytest.MonkeyPatch, sampler: str
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.5")
    app = traced(loaded(LlmCallingAgent(), "bot"))
    answers = [app.client.post("/v1/responses", json={"input": f"hi {i}"}) for i in range(12)]
    assert [_usage(r) for r in answers] == [(11, 6)] * 12
    assert all(r.json()["usage"].get("estimated") is None for r in answers)
    app.flush()
    # Dropped requests' spans were recorded to count their usage, never exported or stored.
    kept = {s.context.trace_id for s in app.spans.get_finished_spans() if s.name == "invoke_agent bot"}
    exported_llm = {s.context.trace_id for s in app.spans.get_finished_spans() if s.name == "chat fake"}
    assert exported_llm == kept
    stored = app.client.get("/api/traces").json()["traces"]
    assert len(stored) == len(kept)
    if sampler != "traceidratio":
        assert kept == set()
    assert all(s.context.trace_flags.sampled for s in app.spans.get_finished_spans())
