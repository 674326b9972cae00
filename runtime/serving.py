"""AgentService: where agents, streaming, observability and canary meet, once per request.

Routes parse and validate, then call :meth:`AgentService.invoke` or :meth:`AgentService.stream`. The service
picks the agent that serves (the slot can be swapped while requests run: each request keeps the agent it
started with), applies the timeout, fills the :class:`~runtime.protocol.call.Call` and hands it to the
telemetry. Agent failures become :class:`~runtime.errors.AgentError` with the cause logged once, never
shown to the client.

While a canary runs on the served model, ``router`` is set (by the composition root) and chooses each
request's variant when its Call is made, so the response headers can name it; otherwise it is None and
costs one attribute check. A shadow request is mirrored after the champion's answer is complete, as a
background task of the router's ``mirror``: it never delays or changes what the client gets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, overload

import anyio

from runtime.agents.chat import content_text, last_user_text
from runtime.agents.runner import AgentRunner
from runtime.canary.router import ROUTE_KEY, Assignment, shadow_call
from runtime.errors import AgentError, RuntimeErrorBase, ShuttingDown, Timeout
from runtime.ids import new_trace_id, trace_hex
from runtime.protocol.agent import (
    CompletedEvent,
    ErrorEvent,
    OutputItemDoneEvent,
    ResponsesAgentRequest,
    ResponsesAgentResponse,
    StreamEvent,
    TextDeltaEvent,
    output_item_text,
)
from runtime.protocol.call import Call, CallStatus, ModelInfo, NullTelemetry, Telemetry
from runtime.protocol.traceparent import parse_traceparent, parse_tracestate
from runtime.streaming.text import compact
from runtime.timers import FifoTimers

__all__ = ["AgentService", "AgentSlot", "LoadedAgent", "VariantRouter", "estimate_tokens"]

log = logging.getLogger("runtime.serving")

T = TypeVar("T")


@dataclass(slots=True, frozen=True)
class LoadedAgent:
    runner: AgentRunner
    info: ModelInfo


class AgentSlot:
    """The agent currently served. Swapping is one assignment: requests in flight keep their own."""

    def __init__(self, agent: LoadedAgent) -> None:
        self.current = agent
        self.last_error: str | None = None

    def swap(self, agent: LoadedAgent) -> LoadedAgent:
        previous, self.current = self.current, agent
        self.last_error = None
        return previous


class VariantRouter(Protocol):
    """Chooses who serves a request while a canary runs (:class:`runtime.canary.router.Router`); no I/O."""

    def choose(self, call: Call, headers: Mapping[str, str]) -> Assignment[LoadedAgent] | None: ...


def estimate_tokens(text: str) -> int:
    """About four characters a token: what we report when an agent reports no usage (marked estimated)."""
    return max(1, (len(text) + 3) // 4) if text else 0


def _input_text(request: ResponsesAgentRequest) -> str:
    return "\n".join(content_text(item.get("content")) for item in request.input)


def _observe(call: Call, event: StreamEvent) -> dict[str, object] | None:
    """Record what one event tells about the call; return the usage if the event carries it."""
    if call.first_event is None:
        call.first_event = time.perf_counter()
    call.output_events += 1
    if isinstance(event, TextDeltaEvent):
        call.output_text.append(event.delta)
    elif isinstance(event, CompletedEvent):
        return event.response.get("usage")
    elif isinstance(event, ErrorEvent):
        raise AgentError(event.message)
    elif isinstance(event, OutputItemDoneEvent):
        try:
            text = output_item_text(event.item)
        except ValueError as exc:
            raise AgentError(f"agent yielded an invalid stream event: item: {exc}") from None
        if text and not call.output_text:
            call.output_text.append(text)
    return None


_STOPPED = "stopped"  # a _Deadline's ``expired`` when the server's shutdown, not its timeout, ended the call


class _Deadline:
    """One timer for a whole call: cheaper than ``asyncio.timeout`` (a context manager, a rescheduled
    handle, per-exit checks), which was a measurable share of the hot path, and for a stream one timer
    instead of one per event; the service's calls share one loop timer (see :mod:`runtime.timers`). It
    cancels the task only while that task awaits the agent (``waiting``; a plain call waits from start to
    end), so a stream's timeout surfaces inside the generator, where it can still become an error event.
    The server's shutdown ends a call the same way, before its timeout (:meth:`stop`); ``expired`` then
    says so (:data:`_STOPPED`)."""

    __slots__ = ("expired", "fired", "loop", "task", "timers", "waiting")

    def __init__(self, timers: FifoTimers, waiting: bool = True) -> None:
        task = self.task = asyncio.current_task()
        self.loop = task.get_loop() if task is not None else asyncio.get_running_loop()
        self.waiting = waiting
        self.expired: bool | str = False
        self.fired = False
        self.timers = timers
        timers.add(self, self.loop)

    def expire(self, why: bool | str = True) -> None:
        if self.expired:  # stopped by the shutdown, then its timer came: one end is enough
            return
        self.expired = why
        if self.waiting and self.task is not None:
            self.fired = True
            self.task.cancel()

    def stop(self) -> None:
        """The server is stopping and the grace period is running out: end the call now."""
        self.expire(_STOPPED)

    def ours(self) -> bool:
        """On CancelledError: True if this deadline cancelled the task and nobody else did (then the
        cancellation is consumed and becomes a timeout)."""
        return self.fired and self.task is not None and self.task.uncancel() == 0

    async def next(self, events: AsyncGenerator[StreamEvent, None]) -> StreamEvent | None:
        """The agent's next event, None at its end; TimeoutError once the deadline has passed."""
        if self.expired:
            raise TimeoutError
        self.waiting = True
        try:
            return await anext(events)
        except StopAsyncIteration:
            return None
        except asyncio.CancelledError:
            if self.ours():
                raise TimeoutError from None
            raise
        finally:
            self.waiting = False

    def cancel(self) -> None:
        self.timers.discard(self, self.loop)


class AgentService:
    def __init__(self, slot: AgentSlot, *, timeout: float, telemetry: Telemetry | None = None) -> None:
        self.slot = slot
        self.timeout = timeout
        self._deadlines = FifoTimers(timeout)
        self.telemetry: Telemetry = telemetry or NullTelemetry()
        self.router: VariantRouter | None = None

    def new_call(
        self,
        request_id: str,
        endpoint: str,
        stream: bool,
        request: ResponsesAgentRequest,
        headers: Mapping[str, str] | None = None,
        traceparent: str | None = None,
        tracestate: str | None = None,
    ) -> Call:
        """The call of one request; ``traceparent`` (the W3C header, when sent) makes it join that trace,
        carrying ``tracestate`` on."""
        call = Call(request_id=request_id, endpoint=endpoint, stream=stream, model=self.slot.current.info)
        caller = parse_traceparent(traceparent) if traceparent else None
        if caller is not None:  # join the caller's trace under its span
            call.trace_id, call.parent_span_id, call.parent_sampled = caller
            call.vendor_state = parse_tracestate(tracestate) if tracestate else None
        else:
            number = call.trace_number = new_trace_id()
            call.trace_id = f"{number:032x}"
        if request.context is not None:
            call.session_id = request.context.conversation_id
            call.user_id = request.context.user_id
        call.user_id = call.user_id or request.user
        call.input_preview = last_user_text(request.input)  # telemetry truncates it, or drops it
        router = self.router
        if router is not None:
            route = router.choose(call, headers or {})
            if route is not None:
                call.model, call.variant = route.agent.info, route.variant
                call.extra[ROUTE_KEY] = route
        return call

    def _agent_for(self, call: Call) -> LoadedAgent:
        """The agent the canary router chose for this call, else the one the slot serves now."""
        if call.variant is not None:
            route = call.extra.get(ROUTE_KEY)
            if isinstance(route, Assignment):
                agent: LoadedAgent = route.agent
                return agent
        return self.slot.current

    def _mirror(self, request: ResponsesAgentRequest, call: Call) -> None:
        """In shadow mode, send a copy of the finished request to the challenger in the background."""
        if call.variant is None or call.status == CallStatus.CANCELLED:
            return
        route = call.extra.get(ROUTE_KEY)
        if not isinstance(route, Assignment) or route.shadow is None or route.mirror is None:
            return
        challenger: LoadedAgent = route.shadow
        copy = request.model_copy(deep=True)
        shadow = shadow_call(call, route, challenger.info, trace_hex())
        route.mirror.spawn(lambda: self._shadow(copy, shadow))

    async def _shadow(self, request: ResponsesAgentRequest, call: Call) -> None:
        """Its outcome lands on its own trace and the challenger's counters; it is never returned."""
        try:
            if call.stream:
                async for _ in self.stream(request, call):
                    pass
            else:
                await self.invoke(request, call)
        except RuntimeErrorBase:
            return

    @overload
    async def invoke(self, request: ResponsesAgentRequest, call: Call) -> ResponsesAgentResponse: ...

    @overload
    async def invoke(
        self, request: ResponsesAgentRequest, call: Call, render: Callable[[ResponsesAgentResponse], T]
    ) -> T: ...

    async def invoke(
        self,
        request: ResponsesAgentRequest,
        call: Call,
        render: Callable[[ResponsesAgentResponse], Any] | None = None,
    ) -> Any:
        """The agent's response, or what ``render`` makes of it (the route's encoded body): rendered before
        the call ends, so output that cannot be sent (a value JSON cannot hold) fails the call, its trace
        says so, and the client gets a 500 ``agent_error`` rather than an answer the trace calls OK."""
        agent = self._agent_for(call)
        call.model = agent.info
        handle = self.telemetry.begin(call)
        deadline = _Deadline(self._deadlines)
        try:
            response = await agent.runner.predict(request)
            call.first_event = call.first_event or time.perf_counter()
            call.output_events = len(response.output)
            for item in response.output:
                try:
                    text = output_item_text(item)
                except ValueError as exc:
                    where = f"output.{response.output.index(item)}"
                    raise AgentError(f"agent returned an invalid response: {where}: {exc}") from None
                if text:
                    call.output_text.append(text)
            usage = response.usage
            if usage is not None:  # read, not dumped: only the two counts are needed
                call.input_tokens, call.output_tokens = usage.input_tokens, usage.output_tokens
            else:
                self._usage(call, request, None)
                self.telemetry.settle(call, handle)  # the LLM spans' usage, for the answer and trace alike
            return response if render is None else render(response)
        except asyncio.CancelledError:
            if deadline.ours():
                raise self._ended(call, deadline, "answer") from None
            call.status = CallStatus.CANCELLED
            raise
        except RuntimeErrorBase as exc:
            self._fail(call, CallStatus.ERROR, exc.code, exc.message)
            raise
        except Exception as exc:
            raise self._agent_failed(call, exc) from exc
        finally:
            deadline.cancel()
            call.ended = time.perf_counter()
            self.telemetry.end(call, handle)
            self._mirror(request, call)

    @overload
    def stream(self, request: ResponsesAgentRequest, call: Call) -> AsyncGenerator[StreamEvent, None]: ...

    @overload
    def stream(
        self, request: ResponsesAgentRequest, call: Call, render: Callable[[StreamEvent], T]
    ) -> AsyncGenerator[T, None]: ...

    async def stream(
        self,
        request: ResponsesAgentRequest,
        call: Call,
        render: Callable[[StreamEvent], Any] | None = None,
    ) -> AsyncGenerator[Any, None]:
        """Yield the agent's events, or what ``render`` makes of each (rendered inside the call, as in
        :meth:`invoke`); raise a RuntimeErrorBase when it fails, times out or yields an error."""
        agent = self._agent_for(call)
        call.model = agent.info
        handle = self.telemetry.begin(call)
        deadline = _Deadline(self._deadlines, waiting=False)
        events = agent.runner.stream(request)
        usage: dict[str, object] | None = None
        try:
            while True:
                event = await deadline.next(events)
                if event is None:
                    break
                usage = _observe(call, event) or usage
                compact(call.output_text)  # an open stream holds its text, not one object per delta
                yield event if render is None else render(event)
            self._usage(call, request, usage)
        except TimeoutError as exc:
            raise self._ended(call, deadline, "finish") from exc
        except (asyncio.CancelledError, GeneratorExit):
            call.status = CallStatus.CANCELLED
            raise
        except RuntimeErrorBase as exc:
            self._fail(call, CallStatus.ERROR, exc.code, exc.message)
            raise
        except Exception as exc:
            raise self._agent_failed(call, exc) from exc
        finally:
            deadline.cancel()
            with anyio.CancelScope(shield=True):
                await events.aclose()
            call.ended = time.perf_counter()
            if call.input_tokens is None:
                self._usage(call, request, None)
            self.telemetry.end(call, handle)
            self._mirror(request, call)

    def _usage(self, call: Call, request: ResponsesAgentRequest, usage: dict[str, object] | None) -> None:
        if usage:
            call.input_tokens = int(usage.get("input_tokens") or 0)  # type: ignore[call-overload]  # JSON number
            call.output_tokens = int(usage.get("output_tokens") or 0)  # type: ignore[call-overload]  # JSON number
            return
        call.usage_estimated = True
        call.input_tokens = estimate_tokens(_input_text(request))
        call.output_tokens = estimate_tokens("".join(call.output_text))

    def _ended(self, call: Call, deadline: _Deadline, what: str) -> RuntimeErrorBase:
        """The error of a call its deadline ended: its timeout, or the shutdown (:meth:`stop_calls`)."""
        if deadline.expired == _STOPPED:
            self._fail(
                call, CallStatus.ERROR, ShuttingDown.code, f"the server stopped before the agent could {what}"
            )
            return ShuttingDown("the server is shutting down; retry the request", retry_after=1)
        self._fail(call, CallStatus.TIMEOUT, "timeout", f"the agent did not {what} in time")
        return Timeout(f"the agent did not {what} within {self.timeout:g} s")

    def stop_calls(self) -> int:
        """The server is stopping and its grace period is running out: end every call still running on this
        event loop now, as its timeout would, with a 503 ``shutting_down`` (a stream ends with that error
        event), rather than leave them to the server's cancellation (a bare 500, a cut stream). Returns
        how many were ended."""
        deadlines = [d for d in self._deadlines.armed(asyncio.get_running_loop()) if isinstance(d, _Deadline)]
        for deadline in deadlines:
            deadline.stop()
        return len(deadlines)

    @staticmethod
    def _fail(call: Call, status: str, code: str, message: str) -> None:
        call.status = status
        call.error_code = code
        call.error_message = message

    def _agent_failed(self, call: Call, exc: Exception) -> RuntimeErrorBase:
        log.error("agent %s failed on request %s", call.model.name, call.request_id, exc_info=exc)
        self._fail(call, CallStatus.ERROR, "agent_error", f"{type(exc).__name__}: {exc}")
        return AgentError("the agent failed while handling this request")
