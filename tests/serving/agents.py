"""Agents the serving tests run: every shape of predict / predict_stream, and ways to fail."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from runtime.agents import ResponsesAgent, ResponsesAgentRequest, ResponsesAgentResponse
from runtime.agents.chat import last_user_text
from runtime.agents.runner import AgentRunner
from runtime.protocol.call import ModelInfo
from runtime.serving import LoadedAgent


def loaded(agent: Any, name: str = "test-agent") -> LoadedAgent:
    return LoadedAgent(runner=AgentRunner(agent), info=ModelInfo(name=name))


class AsyncEcho(ResponsesAgent):
    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        text = last_user_text(request.input)
        return ResponsesAgentResponse(
            output=[self.create_text_output_item(text, "m1")], usage={"input_tokens": 2, "output_tokens": 3}
        )

    async def predict_stream(self, request: ResponsesAgentRequest) -> AsyncIterator[Any]:
        text = last_user_text(request.input)
        for word in text.split():
            yield self.create_text_delta(word + " ", "m1")
        yield {"type": "response.output_item.done", "item": self.create_text_output_item(text, "m1")}


class SyncEcho(ResponsesAgent):
    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        text = last_user_text(request.input)
        return ResponsesAgentResponse(output=[self.create_text_output_item(text, "m1")])

    def predict_stream(self, request: ResponsesAgentRequest) -> Iterator[Any]:
        text = last_user_text(request.input)
        for word in text.split():
            yield self.create_text_delta(word + " ", "m1")
        yield {"type": "response.output_item.done", "item": self.create_text_output_item(text, "m1")}


class ToolCaller(ResponsesAgent):
    """Yields a function call item, its output, and a final message: the shape of a tool-using agent."""

    def predict_stream(self, request: ResponsesAgentRequest) -> Iterator[Any]:
        yield {
            "type": "response.output_item.done",
            "item": self.create_function_call_item("fc_1", "call_1", "get_weather", '{"city":"Paris"}'),
        }
        yield {
            "type": "response.output_item.done",
            "item": self.create_function_call_output_item("call_1", '{"temp_c": 18}'),
        }
        yield self.create_text_delta("It is 18C.", "m2")
        yield {"type": "response.output_item.done", "item": self.create_text_output_item("It is 18C.", "m2")}


class Failing(ResponsesAgent):
    """Raises with a secret-looking message: the client must never see it."""

    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        raise ValueError("db password=hunter2 leaked")

    async def predict_stream(self, request: ResponsesAgentRequest) -> AsyncIterator[Any]:
        yield self.create_text_delta("partial ", "m1")
        raise ValueError("db password=hunter2 leaked")


class BadOutput(ResponsesAgent):
    def predict(self, request: ResponsesAgentRequest) -> Any:
        return {"output": "not a list"}


class SlowAsyncStream(ResponsesAgent):
    """Streams one delta every ``interval`` seconds until closed; records that its ``finally`` ran."""

    def __init__(self, interval: float = 0.05, count: int = 10_000) -> None:
        self.interval = interval
        self.count = count
        self.started = threading.Event()
        self.closed = threading.Event()
        self.produced = 0

    async def predict_stream(self, request: ResponsesAgentRequest) -> AsyncIterator[Any]:
        self.started.set()
        try:
            for i in range(self.count):
                self.produced += 1
                yield self.create_text_delta(f"t{i} ", "m1")
                await asyncio.sleep(self.interval)
        finally:
            self.closed.set()


class SlowSyncStream(ResponsesAgent):
    def __init__(self, interval: float = 0.05, count: int = 10_000) -> None:
        self.interval = interval
        self.count = count
        self.started = threading.Event()
        self.closed = threading.Event()
        self.produced = 0

    def predict_stream(self, request: ResponsesAgentRequest) -> Iterator[Any]:
        self.started.set()
        try:
            for i in range(self.count):
                self.produced += 1
                yield self.create_text_delta(f"t{i} ", "m1")
                time.sleep(self.interval)
        finally:
            self.closed.set()


class SlowSync(ResponsesAgent):
    """A blocking sync predict: must run in the thread pool, never on the event loop."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        time.sleep(self.seconds)
        with self._lock:
            self.active -= 1
        return ResponsesAgentResponse(output=[self.create_text_output_item("done", "m1")])


class Sleeper(ResponsesAgent):
    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        await asyncio.sleep(30)
        return ResponsesAgentResponse(output=[])

    async def predict_stream(self, request: ResponsesAgentRequest) -> AsyncIterator[Any]:
        yield self.create_text_delta("first ", "m1")
        await asyncio.sleep(30)


class SlowPredict(ResponsesAgent):
    """An async predict that takes long; records whether it was cancelled."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.cancelled = threading.Event()

    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        self.started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return ResponsesAgentResponse(output=[])


class Firehose(ResponsesAgent):
    """Streams big deltas as fast as it can: fills a client's socket buffers when the client stops reading."""

    def __init__(self) -> None:
        self.closed = threading.Event()
        self.produced = 0

    async def predict_stream(self, request: ResponsesAgentRequest) -> AsyncIterator[Any]:
        chunk = "x" * 65536
        try:
            for _ in range(100_000):  # bounded: ~6 GB, far more than any socket buffer
                self.produced += 1
                yield self.create_text_delta(chunk, "m1")
                await asyncio.sleep(0)
        finally:
            self.closed.set()
