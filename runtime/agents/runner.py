"""Run any agent the same way: async, off the event loop when sync, with fallbacks between the two methods.

``AgentRunner`` is what the serving layer calls. It hides four shapes of agent code (sync or async
``predict``; sync or async generator ``predict_stream``) behind ``predict()`` and ``stream()``:

- Sync code runs in a thread pool, with the caller's context variables (so agent spans nest under the
  request's span). A sync generator is driven by one thread that stops before its next step once the
  consumer goes away, and is closed in that thread.
- An agent without ``predict_stream`` streams its ``predict`` result; one without ``predict`` answers with
  the items its stream produced.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import Executor
from typing import Any

from pydantic import BaseModel, ValidationError

from runtime.agents.base import ResponsesAgent
from runtime.agents.chat import content_text
from runtime.errors import AgentError
from runtime.protocol.agent import (
    OutputItemDoneEvent,
    ResponsesAgentRequest,
    ResponsesAgentResponse,
    StreamEvent,
    TextDeltaEvent,
    Usage,
    parse_stream_event,
)

__all__ = ["AgentRunner"]

_END = object()
_BUFFER = 64  # events a sync generator may run ahead of its consumer


class _Raised:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _unwrapped(agent: Any, name: str) -> Any:
    method = getattr(agent, name, None)
    try:
        return inspect.unwrap(method) if method is not None else None
    except ValueError:  # a cycle of __wrapped__
        return method


def _overrides(agent: Any, name: str) -> bool:
    """True when the agent's own class implements ``name`` (not our base class, nor MLflow's)."""
    for cls in type(agent).__mro__:
        if name in vars(cls):
            return cls is not ResponsesAgent and not cls.__module__.startswith("mlflow.")
    return False


class AgentRunner:
    """Wraps one loaded agent. ``request_adapter`` turns our request into what a foreign agent expects."""

    def __init__(
        self,
        agent: Any,
        executor: Executor | None = None,
        request_adapter: Callable[[ResponsesAgentRequest], Any] | None = None,
    ) -> None:
        self.agent = agent
        self._executor = executor
        self._adapt = request_adapter
        self.has_predict = _overrides(agent, "predict")
        self.has_stream = _overrides(agent, "predict_stream")
        if not (self.has_predict or self.has_stream):
            raise TypeError(f"{type(agent).__name__} implements neither predict nor predict_stream")
        # Seen through decorators (functools.wraps): a sync wrapper around async code returns what it wraps.
        self._async_predict = inspect.iscoroutinefunction(_unwrapped(agent, "predict"))
        self._async_stream = inspect.isasyncgenfunction(_unwrapped(agent, "predict_stream"))

    @property
    def name(self) -> str:
        return getattr(self.agent, "name", None) or type(self.agent).__name__

    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        if not self.has_predict:
            return await self._collect(request)
        arg = self._adapt(request) if self._adapt else request
        if self._async_predict:
            result = await self.agent.predict(arg)
        else:
            result = await self._in_thread(self.agent.predict, arg)
            if inspect.isawaitable(result):  # a sync function handing back a coroutine: run it here
                result = await result
        return _as_response(result)

    async def stream(self, request: ResponsesAgentRequest) -> AsyncGenerator[StreamEvent, None]:
        if not self.has_stream:
            response = await self.predict(request)
            for item in response.output:
                yield OutputItemDoneEvent(item=item)
            if response.usage is not None or response.custom_outputs:
                done: dict[str, Any] = {"output": response.output}
                if response.usage is not None:
                    done["usage"] = response.usage.model_dump()
                if response.custom_outputs is not None:
                    done["custom_outputs"] = response.custom_outputs
                yield parse_stream_event({"type": "response.completed", "response": done})
            return
        arg = self._adapt(request) if self._adapt else request
        source: AsyncGenerator[Any, None] = (
            self.agent.predict_stream(arg) if self._async_stream else self._sync_stream(arg)
        )
        try:
            async for raw in source:
                yield _as_event(raw)
        finally:
            await source.aclose()

    async def _collect(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        output: list[dict[str, Any]] = []
        usage: Usage | None = None
        custom: dict[str, Any] | None = None
        texts: dict[str, list[str]] = {}
        async for event in self.stream(request):
            extra = event.__pydantic_extra__
            if extra and "custom_outputs" in extra:  # MLflow's stream events carry them at the top level
                custom = extra["custom_outputs"]
            if isinstance(event, OutputItemDoneEvent):
                output.append(event.item)
                if texts.pop(str(event.item.get("id")), None) is None and texts:
                    _forget_spelled(texts, event.item)
            elif isinstance(event, TextDeltaEvent):
                texts.setdefault(event.item_id, []).append(event.delta)
            elif event.type == "response.completed":
                final = getattr(event, "response", {})
                usage = Usage.model_validate(final["usage"]) if final.get("usage") else usage
                custom = final.get("custom_outputs", custom)
        for item_id, parts in texts.items():  # deltas never closed by an output_item.done
            output.append(ResponsesAgent.create_text_output_item("".join(parts), item_id))
        return ResponsesAgentResponse(output=output, usage=usage, custom_outputs=custom)

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        return await loop.run_in_executor(self._executor, ctx.run, fn, *args)

    async def _sync_stream(self, arg: Any) -> AsyncGenerator[Any, None]:
        loop = asyncio.get_running_loop()
        producer = _ThreadProducer(loop, lambda: iter(self.agent.predict_stream(arg)))
        ctx = contextvars.copy_context()
        worker = loop.run_in_executor(self._executor, ctx.run, producer.run)
        try:
            while True:
                item = await producer.queue.get()
                producer.slots.release()
                if item is _END:
                    break
                if isinstance(item, _Raised):
                    raise item.exc
                yield item
        finally:
            producer.stop.set()
            producer.slots.release()
            if worker.done():
                worker.result()


class _ThreadProducer:
    """Drives a sync generator in one worker thread, at most ``_BUFFER`` events ahead of the consumer.

    Once ``stop`` is set no further step starts; the generator is closed in its own thread.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, open_gen: Callable[[], Iterator[Any]]) -> None:
        self.loop = loop
        self.open_gen = open_gen
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.stop = threading.Event()
        self.slots = threading.Semaphore(_BUFFER)

    def deliver(self, item: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is gone: nobody is listening any more
            self.stop.set()

    def run(self) -> None:
        gen: Iterator[Any] | None = None
        try:
            gen = self.open_gen()
            while not self.stop.is_set():
                self.slots.acquire()
                if self.stop.is_set():
                    break
                try:
                    item = next(gen)
                except StopIteration:
                    self.deliver(_END)
                    return
                self.deliver(item)
        except BaseException as exc:
            self.deliver(_Raised(exc))
        finally:
            close = getattr(gen, "close", None)
            if close is not None:
                close()


def _forget_spelled(texts: dict[str, list[str]], item: dict[str, Any]) -> None:
    """Drop the deltas that spelled exactly ``item``'s text under another id: the item closes them (one
    message, as MLflow's reducer sees it, not the text twice)."""
    text = content_text(item.get("content"))
    for item_id, parts in texts.items():
        if text and "".join(parts) == text:
            del texts[item_id]
            return


def _as_response(result: Any) -> ResponsesAgentResponse:
    if isinstance(result, ResponsesAgentResponse):
        return result
    try:
        if isinstance(result, BaseModel):
            result = result.model_dump(exclude_none=True)
        return ResponsesAgentResponse.model_validate(result)
    except ValidationError as exc:
        raise AgentError(f"agent returned an invalid response: {_first_error(exc)}") from exc


def _as_event(raw: Any) -> StreamEvent:
    try:
        return parse_stream_event(raw)
    except ValidationError as exc:
        raise AgentError(f"agent yielded an invalid stream event: {_first_error(exc)}") from exc


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg')}" if where else str(err.get("msg"))
