"""The official openai SDK works unchanged against /v1: create, create(stream=True), stream() helper."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from openai import OpenAI

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
