"""A prompt loaded while serving is recorded on its span and on the request's stored trace, with lineage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry import LineageKind, RegistryClient
from runtime.agents import ResponsesAgent, ResponsesAgentRequest, ResponsesAgentResponse
from runtime.observability import attributes as a
from runtime.observability import span
from runtime.prompts import aload_prompt, load_prompt
from tests.observability.conftest import by_name, root_of
from tests.serving.agents import loaded


class SyncPromptAgent(ResponsesAgent):
    """Sync: runs in a worker thread, where the request's trace must still be found."""

    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        system = load_prompt("prompts:/system@production")
        with span("draft"):
            draft = load_prompt("prompts:/draft/1")
            load_prompt("prompts:/draft/1")  # twice: recorded once
        text = f"{system.format()} | {draft.format(q='hi')}"
        return ResponsesAgentResponse(output=[self.create_text_output_item(text, "m1")])


class AsyncPromptAgent(ResponsesAgent):
    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        system = await aload_prompt("prompts:/system@production")
        return ResponsesAgentResponse(output=[self.create_text_output_item(system.format(), "m1")])


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryClient]:
    """The store the traced test app uses (its settings put it at tmp_path / traces.db)."""
    with RegistryClient(f"sqlite:///{tmp_path / 'traces.db'}", tmp_path / "artifacts") as client:
        client.register_prompt("system", "You are v1.")
        client.register_prompt("system", "You are v2.")
        client.set_prompt_alias("system", "production", 2)
        client.register_prompt("draft", "Draft: {{ q }}")
        yield client


def test_loaded_versions_land_on_spans_the_stored_trace_and_lineage(
    traced: Any, registry: RegistryClient
) -> None:
    app = traced(loaded(SyncPromptAgent(), "prompted"))
    r = app.client.post("/v1/responses", json={"input": "hi"})
    assert r.status_code == 200
    assert r.json()["output"][0]["content"][0]["text"] == "You are v2. | Draft: hi"
    app.flush()

    spans = app.spans.get_finished_spans()
    root, draft = root_of(spans), by_name(spans, "draft")
    assert (root.attributes or {})[a.PROMPTS] == ("prompts:/system/2", "prompts:/draft/1")
    assert (draft.attributes or {})[a.PROMPTS] == ("prompts:/draft/1",)
    loaded_events = [dict(e.attributes or {}) for e in draft.events if e.name == a.PROMPT_LOADED]
    assert loaded_events == [
        {
            a.PROMPT_NAME: "draft",
            a.PROMPT_VERSION: 1,
            a.PROMPT_URI: "prompts:/draft/1",
            a.PROMPT_SOURCE: "store",
        },
        {
            a.PROMPT_NAME: "draft",
            a.PROMPT_VERSION: 1,
            a.PROMPT_URI: "prompts:/draft/1",
            a.PROMPT_SOURCE: "cache",
        },
    ]
    (system_event,) = [e for e in root.events if e.name == a.PROMPT_LOADED]
    assert (system_event.attributes or {})[a.PROMPT_URI] == "prompts:/system@production"

    trace_id = f"tr-{root.context.trace_id:032x}"
    stored, _ = registry.get_trace(trace_id)
    assert stored.prompts == ["prompts:/system/2", "prompts:/draft/1"]
    edges = registry.get_lineage(LineageKind.TRACE, trace_id, "upstream")
    assert sorted(e.src_id for e in edges) == ["prompts:/draft/1", "prompts:/system/2"]
    used, _ = registry.search_traces(prompt="prompts:/system/2")
    assert [t.trace_id for t in used] == [trace_id]
    assert registry.search_traces(prompt="prompts:/system/1")[0] == []


def test_async_agents_record_through_aload_prompt(traced: Any, registry: RegistryClient) -> None:
    app = traced(loaded(AsyncPromptAgent(), "prompted-async"))
    for _ in range(2):  # the second load is a cache hit, answered on the event loop
        assert app.client.post("/v1/responses", json={"input": "hi"}).status_code == 200
    app.flush()
    roots = [s for s in app.spans.get_finished_spans() if s.parent is None]
    assert [(r.attributes or {})[a.PROMPTS] for r in roots] == [("prompts:/system/2",)] * 2
    assert registry.trace_stats(prompt="prompts:/system/2").count == 2


def test_loading_outside_a_request_records_nothing(registry: RegistryClient) -> None:
    from runtime.prompts import configure

    configure(registry, ttl=60)
    assert load_prompt("prompts:/draft/1").format(q="x") == "Draft: x"  # no span, no error
