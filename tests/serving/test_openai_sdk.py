"""The official openai SDK works unchanged against /v1: create, create(stream=True), stream() helper."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from runtime.agents import ResponsesAgent, ResponsesAgentStreamEvent
from runtime.app import create_app
from runtime.config import Settings
from tests.servers import serve_app
from tests.serving.agents import AsyncEcho, Failing, SyncEcho, ToolCaller, loaded


@pytest.fixture(scope="module", params=["async", "sync"])
def client(request: pytest.FixtureRequest) -> Iterator[OpenAI]:
    agent = AsyncEcho() if request.param == "async" else SyncEcho()
    with (
        serve_app(create_app(Settings(api_keys=("sk-test",)), agent=loaded(agent, "echo"))) as url,
        OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0) as c,
    ):
        yield c


def test_create(client: OpenAI) -> None:
    response = client.responses.create(model="echo", input="hello sdk world")
    assert response.output_text == "hello sdk world"
    assert response.status == "completed"
    assert response.usage is not None and response.usage.total_tokens > 0


def test_create_stream(client: OpenAI) -> None:
    events = list(client.responses.create(model="echo", input="one two three", stream=True))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "one two three "
    assert events[-1].response.output_text == "one two three"


def test_stream_helper_and_final_response(client: OpenAI) -> None:
    with client.responses.stream(model="echo", input="alpha beta", instructions="be brief") as stream:
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(texts) == "alpha beta "
    assert final.output_text == "alpha beta"
    assert final.usage is not None


def test_wrong_key_is_authentication_error(client: OpenAI) -> None:
    with (
        OpenAI(base_url=str(client.base_url), api_key="wrong", max_retries=0) as bad,
        pytest.raises(openai.AuthenticationError, match="API key"),
    ):
        bad.responses.create(model="echo", input="x")


def test_tool_calls_reach_the_sdk_as_typed_items() -> None:
    with (
        serve_app(create_app(Settings(), agent=loaded(ToolCaller()))) as url,
        OpenAI(base_url=url + "/v1", api_key="x") as c,
    ):
        with c.responses.stream(model="m", input="weather?") as stream:
            final = stream.get_final_response()
        assert [item.type for item in final.output] == ["function_call", "function_call_output", "message"]
        call = final.output[0]
        assert call.type == "function_call"
        assert call.arguments == '{"city":"Paris"}'
        assert final.output_text == "It is 18C."


def test_agent_failure_mid_stream_surfaces_as_failed_response() -> None:
    with (
        serve_app(create_app(Settings(), agent=loaded(Failing()))) as url,
        OpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as c,
    ):
        events = list(c.responses.create(model="m", input="x", stream=True))
        assert [e.type for e in events][-2:] == ["error", "response.failed"]
        with pytest.raises(openai.InternalServerError, match="agent failed"):
            c.responses.create(model="m", input="x")


def _upstream_events(response_id: str) -> list[dict[str, Any]]:
    """What an OpenAI Responses stream sends, as an agent forwarding an upstream LLM yields it again."""
    message = {"type": "message", "id": "msg_up", "role": "assistant", "status": "in_progress", "content": []}
    part = {"type": "output_text", "text": "", "annotations": []}
    done = {**message, "status": "completed", "content": [{**part, "text": "Hi there"}]}
    shell = {"id": response_id, "object": "response", "status": "in_progress", "output": []}
    common = {"item_id": "msg_up", "output_index": 0, "content_index": 0}
    return [
        {"type": "response.created", "response": shell, "sequence_number": 0},
        {"type": "response.in_progress", "response": shell, "sequence_number": 1},
        {"type": "response.output_item.added", "output_index": 0, "item": message, "sequence_number": 2},
        {"type": "response.content_part.added", **common, "part": part, "sequence_number": 3},
        {"type": "response.output_text.delta", **common, "delta": "Hi ", "sequence_number": 4},
        {"type": "response.output_text.delta", **common, "delta": "there", "sequence_number": 5},
        {"type": "response.output_text.done", **common, "text": "Hi there", "sequence_number": 6},
        {"type": "response.content_part.done", **common, "part": done["content"][0], "sequence_number": 7},
        {"type": "response.output_item.done", "output_index": 0, "item": done, "sequence_number": 8},
        {
            "type": "response.completed",
            "response": {**shell, "status": "completed", "output": [done], "usage": {"input_tokens": 3}},
            "sequence_number": 9,
        },
    ]


class Forwarder(ResponsesAgent):
    """The MLflow docs' pattern: ``yield ResponsesAgentStreamEvent(**event.to_dict())`` per upstream event."""

    async def predict_stream(self, request: Any) -> AsyncIterator[Any]:
        for event in _upstream_events("resp_upstream"):
            yield ResponsesAgentStreamEvent(**event)


class Interleaved(ResponsesAgent):
    """A message streams while a tool call finishes: items finish out of their output order."""

    async def predict_stream(self, request: Any) -> AsyncIterator[Any]:
        yield self.create_text_delta("first ", "m1")
        yield {
            "type": "response.output_item.done",
            "item": self.create_function_call_item("f1", "c1", "f", "{}"),
        }
        yield {"type": "response.output_item.done", "item": self.create_text_output_item("first", "m1")}


@pytest.mark.parametrize("agent", [Forwarder(), Interleaved()])
def test_forwarded_and_interleaved_streams_keep_one_lifecycle(agent: ResponsesAgent) -> None:
    with (
        serve_app(create_app(Settings(), agent=loaded(agent, "fwd"))) as url,
        OpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as c,
    ):
        with c.responses.stream(model="fwd", input="hello") as stream:  # raises if the lifecycle repeats
            events = list(stream)
            final = stream.get_final_response()
        raw = list(c.responses.create(model="fwd", input="hello", stream=True))
    assert [e.sequence_number for e in raw] == list(range(len(raw)))
    kinds = [e.type for e in raw]
    assert kinds.count("response.created") == 1 and kinds.count("response.in_progress") == 1
    assert kinds.count("response.content_part.added") == 1 and kinds.count("response.output_text.done") == 1
    assert events[-1].type == "response.completed"
    added = {e.item.id: e.output_index for e in raw if e.type == "response.output_item.added"}
    assert [item.id for item in final.output] == sorted(added, key=added.__getitem__)  # by output_index
    if isinstance(agent, Forwarder):
        assert final.output_text == "Hi there" and final.id != "resp_upstream"
    else:
        assert [item.type for item in final.output] == ["message", "function_call"]


def test_tool_call_answers_validate_as_the_sdks_own_types() -> None:
    """Every field the SDK's types require is there (the SDK's parsing is lenient: check with its models)."""
    from openai.types.responses import Response

    with serve_app(create_app(Settings(), agent=loaded(ToolCaller(), "tools"))) as url:
        body = httpx.post(url + "/v1/responses", json={"input": "weather?"}).json()
    response = Response.model_validate(body)
    assert [item.type for item in response.output] == ["function_call", "function_call_output", "message"]
    assert response.usage is not None and response.usage.input_tokens_details.cache_write_tokens == 0


class ChunkIds(ResponsesAgent):
    """Deltas under a chunk's id, the finished message under another (seen in ported agents)."""

    async def predict_stream(self, request: Any) -> AsyncIterator[Any]:
        yield self.create_text_delta("Hello ", "chunk_1")
        yield self.create_text_delta("world", "chunk_1")
        yield {
            "type": "response.output_item.done",
            "item": self.create_text_output_item("Hello world", "msg_final"),
        }


def test_deltas_and_their_final_item_under_two_ids_are_one_message() -> None:
    with (
        serve_app(create_app(Settings(), agent=loaded(ChunkIds(), "chunks"))) as url,
        OpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as c,
    ):
        with c.responses.stream(model="chunks", input="hi") as stream:
            final = stream.get_final_response()
        answered = c.responses.create(model="chunks", input="hi")
        collected = httpx.post(
            url + "/invocations", json={"input": [{"role": "user", "content": "hi"}]}
        ).json()
    assert final.output_text == "Hello world" and len(final.output) == 1
    assert answered.output_text == "Hello world" and len(answered.output) == 1
    assert [item["id"] for item in collected["output"]] == ["msg_final"]
