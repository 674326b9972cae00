"""AgentRunner: every shape of agent answers through one async interface, with fallbacks."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from runtime.agents import ResponsesAgent, ResponsesAgentRequest, ResponsesAgentResponse
from runtime.agents.runner import AgentRunner
from runtime.errors import AgentError
from runtime.protocol.agent import OutputItemDoneEvent, TextDeltaEvent

REQ = ResponsesAgentRequest(input=[{"role": "user", "content": "a b"}])


async def collect(runner: AgentRunner) -> list[Any]:
    return [event async for event in runner.stream(REQ)]


class OnlyPredict(ResponsesAgent):
    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        return ResponsesAgentResponse(
            output=[self.create_text_output_item("x", "m")], usage={"input_tokens": 1, "output_tokens": 1}
        )


class OnlyStream(ResponsesAgent):
    async def predict_stream(self, request: ResponsesAgentRequest) -> AsyncIterator[Any]:
        yield self.create_text_delta("he", "m")
        yield self.create_text_delta("llo", "m")
        yield {"type": "response.completed", "response": {"usage": {"input_tokens": 2, "output_tokens": 5}}}


def test_stream_falls_back_to_predict() -> None:
    events = asyncio.run(collect(AgentRunner(OnlyPredict())))
    assert isinstance(events[0], OutputItemDoneEvent)
    assert events[-1].type == "response.completed"


def test_predict_falls_back_to_collecting_the_stream() -> None:
    response = asyncio.run(AgentRunner(OnlyStream()).predict(REQ))
    assert response.output[0]["content"][0]["text"] == "hello"
    assert response.usage is not None and response.usage.output_tokens == 5


def test_an_agent_with_neither_method_is_refused() -> None:
    with pytest.raises(TypeError, match="neither predict nor predict_stream"):
        AgentRunner(ResponsesAgent())


def test_sync_generator_runs_in_a_worker_thread() -> None:
    threads: list[str] = []

    class SyncStream(ResponsesAgent):
        def predict_stream(self, request: ResponsesAgentRequest) -> Iterator[Any]:
            threads.append(threading.current_thread().name)
            yield self.create_text_delta("x", "m")

    events = asyncio.run(collect(AgentRunner(SyncStream())))
    assert isinstance(events[0], TextDeltaEvent)
    assert threads and threads[0] != threading.main_thread().name


def test_sync_generator_error_reaches_the_consumer() -> None:
    class Boom(ResponsesAgent):
        def predict_stream(self, request: ResponsesAgentRequest) -> Iterator[Any]:
            yield self.create_text_delta("x", "m")
            raise KeyError("inside")

    with pytest.raises(KeyError, match="inside"):
        asyncio.run(collect(AgentRunner(Boom())))


def test_invalid_event_is_an_agent_error() -> None:
    class Bad(ResponsesAgent):
        async def predict_stream(self, request: ResponsesAgentRequest) -> AsyncIterator[Any]:
            yield {"type": "response.output_text.delta"}

    with pytest.raises(AgentError, match="invalid stream event"):
        asyncio.run(collect(AgentRunner(Bad())))


def test_duck_typed_agents_without_the_base_class_work() -> None:
    class Plain:
        async def predict(self, request: ResponsesAgentRequest) -> dict[str, Any]:
            return {"output": [ResponsesAgent.create_text_output_item("ok", "m")]}

    runner = AgentRunner(Plain())
    assert asyncio.run(runner.predict(REQ)).output[0]["content"][0]["text"] == "ok"
    assert runner.name == "Plain"


def _logged(fn: Any) -> Any:
    """A sync decorator, as users write them around MLflow agents' methods (functools.wraps)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


class Decorated(ResponsesAgent):
    @_logged
    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        await asyncio.sleep(0)
        return ResponsesAgentResponse(output=[self.create_text_output_item("wrapped", "m")])

    @_logged
    async def predict_stream(self, request: ResponsesAgentRequest) -> AsyncIterator[Any]:
        yield self.create_text_delta("wrapped", "m")


def test_async_methods_behind_a_sync_decorator_still_run_as_async() -> None:
    runner = AgentRunner(Decorated())
    response = asyncio.run(runner.predict(REQ))
    assert response.output[0]["content"][0]["text"] == "wrapped"
    events = asyncio.run(collect(runner))
    assert isinstance(events[0], TextDeltaEvent) and events[0].delta == "wrapped"


class HandsBackACoroutine(ResponsesAgent):
    def predict(self, request: ResponsesAgentRequest) -> Any:
        async def answer() -> ResponsesAgentResponse:
            return ResponsesAgentResponse(output=[self.create_text_output_item("later", "m")])

        return answer()  # a sync predict returning a coroutine: awaited, not refused as a bad response


def test_a_sync_predict_that_returns_a_coroutine_is_awaited() -> None:
    response = asyncio.run(AgentRunner(HandsBackACoroutine()).predict(REQ))
    assert response.output[0]["content"][0]["text"] == "later"
