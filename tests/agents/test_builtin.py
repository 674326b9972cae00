"""OpenAICompatibleAgent end to end: the official ``openai`` SDK -> the runtime under a real uvicorn -> the
agent -> a fake OpenAI-compatible upstream on loopback. Nothing is mocked between the two sockets."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.agents import builtin
from runtime.agents.builtin import LLMCall, OpenAICompatibleAgent, UpstreamError
from runtime.agents.runner import AgentRunner
from runtime.agents.upstream_chat import ChatStream, chat_output, chat_payload
from runtime.agents.upstream_http import UpstreamClient
from runtime.agents.upstream_responses import ResponsesEvents
from runtime.app import create_app
from runtime.config import Settings
from runtime.errors import AgentLoadError, BadRequest
from runtime.loading import load_target
from runtime.protocol.agent import ResponsesAgentRequest
from runtime.protocol.call import ModelInfo
from runtime.serving import LoadedAgent
from tests.fakes.openai_server import FakeLLM, Reply, ServerThread, ToolCall, Usage

API_KEY = "sk-test-0123456789abcdef-SECRET"
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
SLOW = Reply(text=" ".join(f"w{i}" for i in range(200)), delay=0.05)  # 10 s if nobody hangs up
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "llm_agent.py"
APIS = pytest.mark.parametrize("api", ["chat", "responses"])


class _ClosesAgent:
    """Closes the agent's pooled upstream connections in the server's own loop when the app shuts down.

    The runtime's lifespan does not close agents (yet); without this the pool's sockets outlive their
    loop and surface as ResourceWarnings.
    """

    def __init__(self, app: ASGIApp, agent: OpenAICompatibleAgent) -> None:
        self.app = app
        self.agent = agent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def closing_send(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await self.agent.aclose()
            await send(message)

        await self.app(scope, receive, closing_send)


class Recorder:
    """An LLM call observer that keeps what it saw."""

    def __init__(self) -> None:
        self.begun: list[LLMCall] = []
        self.ended: list[LLMCall] = []

    def begin(self, call: LLMCall) -> object:
        self.begun.append(call)
        return "handle"

    def end(self, call: LLMCall, handle: object) -> None:
        assert handle == "handle"
        self.ended.append(call)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with FakeLLM.running() as server:
        yield server


@pytest.fixture
def llm(fake: FakeLLM) -> FakeLLM:
    """The module's fake upstream, reset to its default reply and empty records."""
    fake.reset()
    return fake


def make_agent(llm: FakeLLM, api: str = "chat", **options: Any) -> OpenAICompatibleAgent:
    options.setdefault("system_prompt", "You are terse.")
    return OpenAICompatibleAgent(llm.base_url, "fake-model", API_KEY, api=api, timeout=5, **options)  # type: ignore[arg-type]


@contextmanager
def runtime(agent: OpenAICompatibleAgent) -> Iterator[str]:
    """The real runtime app serving ``agent`` under uvicorn; yields its base URL."""
    loaded = LoadedAgent(runner=AgentRunner(agent), info=ModelInfo(name="llm"))
    app = create_app(Settings(request_timeout=10, grace_period=1, sse_ping_interval=5), agent=loaded)
    with ServerThread(_ClosesAgent(app, agent), loop="auto") as server:
        yield server.url


@contextmanager
def sdk(url: str) -> Iterator[OpenAI]:
    with OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=10) as client:
        yield client


def sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.startswith("data: ") and line != "data: [DONE]":
            yield json.loads(line[len("data: ") :])


# --- streaming, tool calls and usage -------------------------------------------------------------------


@APIS
def test_text_deltas_stream_through_with_the_real_usage(llm: FakeLLM, api: str) -> None:
    llm.reply = Reply(text="Hello there general Kenobi", usage=Usage(input_tokens=31, output_tokens=4))
    with runtime(make_agent(llm, api)) as url, sdk(url) as client:
        events = list(client.responses.create(model="llm", input="Say hi", stream=True))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert deltas == ["Hello", " there", " general", " Kenobi"]
    assert len({e.item_id for e in events if e.type == "response.output_text.delta"}) == 1
    final = events[-1]
    assert final.type == "response.completed"
    assert final.response.output_text == "Hello there general Kenobi"
    assert final.response.usage is not None
    assert (final.response.usage.input_tokens, final.response.usage.output_tokens) == (31, 4)
    sent = llm.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.body["model"] == "fake-model" and sent.body["stream"] is True
    if api == "chat":
        assert sent.path == "/v1/chat/completions"
        assert sent.body["stream_options"] == {"include_usage": True}
        assert sent.body["messages"] == [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say hi"},
        ]
    else:
        assert sent.path == "/v1/responses"
        assert sent.body["instructions"] == "You are terse."
        assert sent.body["input"] == [{"role": "user", "content": "Say hi"}]


@APIS
def test_stream_helper_and_non_streaming_create_report_real_usage(llm: FakeLLM, api: str) -> None:
    llm.reply = Reply(text="Paris is sunny.", usage=Usage(input_tokens=20, output_tokens=5, cached_tokens=3))
    with runtime(make_agent(llm, api)) as url, sdk(url) as client:
        with client.responses.stream(model="llm", input="Weather?") as stream:
            streamed = stream.get_final_response()
        created = client.responses.create(model="llm", input="Weather?")
    for response in (streamed, created):
        assert response.output_text == "Paris is sunny."
        assert response.usage is not None
        assert (response.usage.input_tokens, response.usage.output_tokens) == (20, 5)
    assert [r.body["stream"] for r in llm.requests] == [True, False]


@APIS
def test_tool_calls_come_back_as_function_call_items(llm: FakeLLM, api: str) -> None:
    call = ToolCall("get_weather", '{"city": "Paris", "unit": "celsius"}', "call_7")
    llm.reply = Reply(text="", tool_calls=(call,), arg_fragment=4)
    options: Any = {"tools": [WEATHER_TOOL], "temperature": 0.2, "top_p": 0.9, "max_output_tokens": 64}
    with (
        runtime(make_agent(llm, api)) as url,
        sdk(url) as client,
        client.responses.stream(model="llm", input="Weather in Paris?", **options) as stream,
    ):
        response = stream.get_final_response()
    calls = [item for item in response.output if item.type == "function_call"]
    assert [(c.name, c.call_id, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", "call_7", {"city": "Paris", "unit": "celsius"})
    ]
    sent = llm.requests[-1].body
    assert (sent["temperature"], sent["top_p"]) == (0.2, 0.9)
    if api == "chat":
        assert sent["max_completion_tokens"] == 64
        assert sent["tools"] == [
            {
                "type": "function",
                "function": {k: WEATHER_TOOL[k] for k in ("name", "description", "parameters")},
            }
        ]
    else:
        assert sent["max_output_tokens"] == 64
        assert sent["tools"] == [WEATHER_TOOL]


@APIS
def test_tool_results_go_back_to_the_upstream_on_the_next_turn(llm: FakeLLM, api: str) -> None:
    llm.reply = Reply(text="It is 18 degrees.")
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "type": "function_call",
            "call_id": "call_7",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_7", "output": '{"temp_c": 18}'},
    ]
    with runtime(make_agent(llm, api, system_prompt=None)) as url, sdk(url) as client:
        response = client.responses.create(model="llm", input=history, tools=[WEATHER_TOOL])  # type: ignore[arg-type,list-item]
    assert response.output_text == "It is 18 degrees."
    sent = llm.requests[-1].body
    if api == "chat":
        assert sent["messages"][1]["tool_calls"][0]["id"] == "call_7"
        assert sent["messages"][2] == {"role": "tool", "tool_call_id": "call_7", "content": '{"temp_c": 18}'}
    else:
        assert sent["input"] == history


def test_concurrent_streams_through_one_agent_do_not_mix(llm: FakeLLM) -> None:
    replies = [Reply(text=f"answer {n} " + "x " * 5, delay=0.01) for n in range(4)]
    llm.script(*replies)
    with runtime(make_agent(llm)) as url, sdk(url) as client, ThreadPoolExecutor(4) as pool:

        def ask(n: int) -> str:
            events = list(client.responses.create(model="llm", input=f"q{n}", stream=True))
            return "".join(e.delta for e in events if e.type == "response.output_text.delta")

        answers = list(pool.map(ask, range(4)))
    assert sorted(answers) == sorted(r.text for r in replies)


def test_invocations_answers_and_streams_mlflow_events_with_real_usage(llm: FakeLLM) -> None:
    llm.reply = Reply(text="one two three", usage=Usage(input_tokens=9, output_tokens=3))
    body = {"input": [{"role": "user", "content": "count"}]}
    with runtime(make_agent(llm)) as url, httpx.Client(base_url=url, timeout=10) as http:
        answer = http.post("/invocations", json=body).json()
        with http.stream("POST", "/invocations", json={**body, "stream": True}) as response:
            lines = list(response.iter_lines())
    assert answer["output"][0]["content"][0]["text"] == "one two three"
    assert answer["usage"]["input_tokens"] == 9 and answer["usage"]["output_tokens"] == 3
    events = list(sse_events(iter(lines)))
    assert [e["delta"] for e in events if e["type"] == "response.output_text.delta"] == [
        "one",
        " two",
        " three",
    ]
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert done[0]["content"][0]["text"] == "one two three"
    assert events[-1] == {
        "type": "response.completed",
        "response": {
            "usage": {
                "input_tokens": 9,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 3,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 12,
            }
        },
    }
    assert [line for line in lines if line][-1] == "data: [DONE]"


# --- upstream failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fail", "expected", "code"),
    [
        (500, "answered HTTP 500: the fake LLM failed on purpose", "upstream_error"),
        (429, "answered HTTP 429", "upstream_busy"),
        ("malformed", "not a JSON object", "upstream_error"),
    ],
)
@APIS
def test_upstream_failure_before_streaming_is_a_clean_5xx(
    llm: FakeLLM, api: str, fail: int | str, expected: str, code: str
) -> None:
    llm.reply = Reply(fail=fail, error_message=f"the fake LLM failed on purpose (key {API_KEY})")  # type: ignore[arg-type]
    with (
        runtime(make_agent(llm, api)) as url,
        sdk(url) as client,
        pytest.raises(openai.InternalServerError, match=expected) as raised,
    ):
        client.responses.create(model="llm", input="hi")
    error = raised.value.response.json()["error"]
    assert error["code"] == code
    if code == "upstream_busy":  # an overloaded upstream is ours to retry, not a bug
        assert raised.value.response.status_code == 503
        assert raised.value.response.headers["retry-after"]
    assert error["message"].startswith("upstream LLM (127.0.0.1:")
    assert API_KEY not in raised.value.response.text
    assert "Traceback" not in raised.value.response.text


@pytest.mark.parametrize(
    ("fail", "expected"),
    [(500, "answered HTTP 500"), ("malformed", "not a JSON object"), ("truncated", "ended its stream")],
)
@APIS
def test_upstream_failure_while_streaming_is_an_error_event_then_response_failed(
    llm: FakeLLM, api: str, fail: int | str, expected: str
) -> None:
    llm.reply = Reply(text="partial answer here", fail=fail, error_message=f"boom {API_KEY}")  # type: ignore[arg-type]
    with runtime(make_agent(llm, api)) as url, sdk(url) as client:
        events = list(client.responses.create(model="llm", input="hi", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created"
    assert kinds[-2:] == ["error", "response.failed"]
    error = events[-2]
    assert error.code == "upstream_error"  # type: ignore[union-attr]
    assert expected in error.message  # type: ignore[union-attr]
    assert all(API_KEY not in e.model_dump_json() for e in events)


def test_upstream_auth_failure_never_quotes_the_key(llm: FakeLLM) -> None:
    llm.reply = Reply(fail=401, error_message=f"Incorrect API key provided: {API_KEY[:8]}***{API_KEY[-4:]}")
    with runtime(make_agent(llm)) as url, httpx.Client(base_url=url, timeout=10) as http:
        answer = http.post("/invocations", json={"input": [{"role": "user", "content": "hi"}]})
        streamed = http.post(
            "/invocations", json={"input": [{"role": "user", "content": "hi"}], "stream": True}
        )
    assert answer.status_code == 500
    assert answer.json()["error"]["message"].endswith("refused the API key (HTTP 401)")
    for text in (answer.text, streamed.text):
        assert API_KEY[-4:] not in text and API_KEY[:8] not in text


def test_unreachable_upstream_is_a_clear_error() -> None:
    with socket.socket() as reserved:  # bound, never listening: connections are refused
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]
        agent = OpenAICompatibleAgent(f"http://127.0.0.1:{port}/v1", "m", API_KEY, timeout=2)
        with pytest.raises(UpstreamError, match=r"could not be reached: ConnectError") as raised:
            asyncio.run(_ask(agent))
    assert API_KEY not in str(raised.value)


async def _ask(agent: OpenAICompatibleAgent) -> None:
    try:
        await agent.predict(ResponsesAgentRequest(input=[{"role": "user", "content": "hi"}]))
    finally:
        await agent.aclose()


# --- client disconnects abort the upstream request ---------------------------------------------------------


@APIS
def test_client_disconnect_on_v1_responses_aborts_the_upstream_stream(llm: FakeLLM, api: str) -> None:
    llm.reply = SLOW
    with runtime(make_agent(llm, api)) as url, sdk(url) as client:
        with client.responses.stream(model="llm", input="talk for a while") as stream:
            for event in stream:
                if event.type == "response.output_text.delta":
                    break  # leaving the block closes the connection mid-stream
        assert llm.wait_for_disconnect(timeout=1.0)
    assert llm.streams_finished == 0


def test_client_disconnect_on_invocations_aborts_the_upstream_stream(llm: FakeLLM) -> None:
    llm.reply = SLOW
    body = {"input": [{"role": "user", "content": "talk"}], "stream": True}
    with runtime(make_agent(llm)) as url, httpx.Client(base_url=url, timeout=10) as http:
        with http.stream("POST", "/invocations", json=body) as response:
            first = next(sse_events(response.iter_lines()))
        assert first["type"] == "response.output_text.delta"
        assert llm.wait_for_disconnect(timeout=1.0)
    assert llm.streams_finished == 0


@APIS
def test_closing_the_agent_generator_at_a_yield_aborts_the_upstream_request(llm: FakeLLM, api: str) -> None:
    """What the runtime does when the consumer stops between events: ``aclose()`` the generator."""
    llm.reply = SLOW
    agent = make_agent(llm, api)

    async def first_event_then_close() -> tuple[str, bool]:
        try:
            events = agent.predict_stream(ResponsesAgentRequest(input=[{"role": "user", "content": "talk"}]))
            first = await anext(aiter(events))
            await events.aclose()  # type: ignore[attr-defined]  # an async generator
            return first["type"], await llm.await_disconnect(timeout=1.0)  # with the pool still open
        finally:
            await agent.aclose()

    assert asyncio.run(first_event_then_close()) == ("response.output_text.delta", True)
    assert llm.streams_finished == 0


# --- observer, configuration --------------------------------------------------------------------------------


def test_observer_sees_each_upstream_call_with_usage_ttft_and_outcome(
    llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder()
    monkeypatch.setattr(builtin, "llm_call_observer", recorder)  # what the composition root does
    agent = make_agent(llm)
    llm.script(Reply(text="fine", usage=Usage(input_tokens=4, output_tokens=1)), SLOW, Reply(fail=503))
    with runtime(agent) as url, sdk(url) as client:
        list(client.responses.create(model="llm", input="ok?", stream=True))
        with client.responses.stream(model="llm", input="talk") as stream:
            for event in stream:
                if event.type == "response.output_text.delta":
                    break
        assert llm.wait_for_disconnect(timeout=1.0)
        with pytest.raises(openai.InternalServerError):
            client.responses.create(model="llm", input="fail")
    assert len(recorder.begun) == len(recorder.ended) == 3
    done, cut, failed = recorder.ended
    assert (done.status, cut.status, failed.status) == ("ok", "cancelled", "error")
    assert done.usage is not None and done.usage["input_tokens"] == 4
    assert done.ttft_s is not None and done.duration_s is not None and done.ttft_s <= done.duration_s
    assert (done.api, done.stream, done.response_model, done.finish_reasons) == (
        "chat",
        True,
        "fake-model",
        ["stop"],
    )
    assert done.output[0]["content"][0]["text"] == "fine"
    assert done.request["messages"][-1] == {"role": "user", "content": "ok?"}
    assert failed.error is not None and "HTTP 503" in failed.error and not failed.stream
    for call in recorder.ended:
        assert API_KEY not in repr(call)
        assert call.server_address.startswith("127.0.0.1:")


def test_observer_failure_never_fails_the_request(llm: FakeLLM) -> None:
    class Broken:
        def begin(self, call: LLMCall) -> object:
            raise RuntimeError("observer bug")

        def end(self, call: LLMCall, handle: object) -> None:
            raise RuntimeError("observer bug")

    agent = make_agent(llm)
    agent.observer = Broken()
    with runtime(agent) as url, sdk(url) as client:
        assert client.responses.create(model="llm", input="hi").output_text == llm.reply.text


def test_from_env_reads_the_documented_variables() -> None:
    agent = OpenAICompatibleAgent.from_env(
        {
            "RUNTIME_LLM_BASE_URL": "http://127.0.0.1:9/v1/",
            "RUNTIME_LLM_MODEL": "llama3.2",
            "RUNTIME_LLM_API_KEY": API_KEY,
            "RUNTIME_LLM_API": "responses",
            "RUNTIME_LLM_TIMEOUT": "7.5",
        }
    )
    assert (agent.base_url, agent.model, agent.api, agent.timeout) == (
        "http://127.0.0.1:9/v1",
        "llama3.2",
        "responses",
        7.5,
    )
    assert API_KEY not in repr(agent)
    with pytest.raises(AgentLoadError, match="RUNTIME_LLM_MODEL is not set"):
        OpenAICompatibleAgent.from_env({})
    with pytest.raises(AgentLoadError, match="expected 'chat' or 'responses'"):
        OpenAICompatibleAgent.from_env({"RUNTIME_LLM_MODEL": "m", "RUNTIME_LLM_API": "completions"})


def test_example_llm_agent_file_serves_the_configured_upstream(
    llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNTIME_LLM_BASE_URL", llm.base_url)
    monkeypatch.setenv("RUNTIME_LLM_MODEL", "fake-model")
    monkeypatch.delenv("RUNTIME_LLM_API_KEY", raising=False)
    loaded = load_target(str(EXAMPLE), Settings())
    agent = loaded.runner.agent
    assert isinstance(agent, OpenAICompatibleAgent)
    with runtime(agent) as url, sdk(url) as client:
        assert client.responses.create(model="llm", input="hi").output_text == llm.reply.text
    assert "authorization" not in llm.requests[-1].headers


# --- the converters on their own ---------------------------------------------------------------------

UPSTREAM = UpstreamClient("http://127.0.0.1:9/v1", API_KEY, timeout=1)


def test_chat_stream_assembles_reasoning_then_text_then_fragmented_tool_calls() -> None:
    stream = ChatStream(UPSTREAM)
    chunks: list[dict[str, Any]] = [
        {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"reasoning_content": "think "}}]},
        {"choices": [{"index": 0, "delta": {"reasoning": "hard"}}]},
        {"choices": [{"index": 0, "delta": {"content": "Hi"}}]},
        {
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g"}}]}}
            ]
        },
        {
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f"}}]}}
            ]
        },
        {
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"x"'}}]}}
            ]
        },
        {
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}}
            ]
        },
        {"choices": [{"index": 1, "delta": {"content": "second choice is ignored"}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}},
    ]
    events = [event for chunk in chunks for event in stream.feed(chunk)] + stream.finish()
    kinds = [(e["type"], e.get("item", {}).get("type")) for e in events]
    assert kinds == [
        ("response.output_item.done", "reasoning"),
        ("response.output_text.delta", None),
        ("response.output_item.done", "message"),
        ("response.output_item.done", "function_call"),
        ("response.output_item.done", "function_call"),
    ]
    assert events[0]["item"]["summary"][0]["text"] == "think hard"
    calls = [(e["item"]["call_id"], e["item"]["name"], e["item"]["arguments"]) for e in events[3:]]
    assert calls == [("a", "f", '{"x": 1}'), ("b", "g", "")]
    assert stream.complete and stream.finish_reasons == ["tool_calls"]
    assert stream.usage is not None and stream.usage["total_tokens"] == 5
    assert (stream.model, stream.response_id) == ("m", "c1")


def test_chat_stream_error_chunk_and_responses_failure_events_raise_upstream_errors() -> None:
    with pytest.raises(UpstreamError, match="failed while streaming: out of memory"):
        ChatStream(UPSTREAM).feed({"error": {"message": "out of memory"}})
    with pytest.raises(UpstreamError, match="failed while streaming: overloaded"):
        ResponsesEvents(UPSTREAM).feed({"type": "error", "message": "overloaded"})
    failed = {"type": "response.failed", "response": {"id": "r", "error": {"message": f"bad {API_KEY}"}}}
    with pytest.raises(UpstreamError, match=r"failed the response: bad \[redacted\]"):
        ResponsesEvents(UPSTREAM).feed(failed)


def test_chat_payload_converts_responses_tools_and_rejects_hosted_ones() -> None:
    request = ResponsesAgentRequest(
        input=[{"role": "developer", "content": [{"type": "input_text", "text": "be brief"}]}],
        tools=[WEATHER_TOOL, {"type": "function", "function": {"name": "already_chat"}}],
        tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False,
    )
    payload = chat_payload(request, model="m", system_prompt=None, stream=False)
    assert payload["messages"] == [{"role": "system", "content": "be brief"}]
    assert [t["function"]["name"] for t in payload["tools"]] == ["get_weather", "already_chat"]
    assert payload["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert payload["parallel_tool_calls"] is False and "stream_options" not in payload
    hosted = request.model_copy(update={"tools": [{"type": "web_search"}]})
    with pytest.raises(BadRequest, match="cannot run 'web_search' tools"):
        chat_payload(hosted, model="m", system_prompt=None, stream=True)


def test_non_streaming_chat_answer_with_reasoning_and_tool_calls() -> None:
    body = {
        "choices": [
            {
                "message": {
                    "content": None,
                    "reasoning_content": "weather needs a tool",
                    "tool_calls": [{"id": "c", "function": {"name": "get_weather", "arguments": "{}"}}],
                }
            }
        ]
    }
    items = chat_output(body, UPSTREAM)
    assert [item["type"] for item in items] == ["reasoning", "function_call"]
    with pytest.raises(UpstreamError, match="without choices"):
        chat_output({"choices": []}, UPSTREAM)
