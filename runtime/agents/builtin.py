"""Built-in agents: :class:`OpenAICompatibleAgent` serves any Chat Completions or Responses endpoint.

Point it at OpenAI, vLLM, Ollama or anything else that speaks either API, and it behaves as an agent
should under the runtime: deltas stream through as they arrive, tool calls come back as ``function_call``
items, usage is what the upstream counted (never an estimate), and a client that disconnects aborts the
upstream request (the runtime closes the agent's generator; the generator closes the HTTP stream).

Tracing hook. Agents do not import observability (see DESIGN.md), so the composition root installs an
observer here: anything with ``begin(call) -> handle`` and ``end(call, handle)``, the same shape as
:class:`runtime.protocol.call.Telemetry`, assigned to :data:`llm_call_observer` (or to one agent's
``observer``). ``begin`` runs just before each upstream request, in the request's context (so a span it
starts nests under the request's span); ``end`` runs once when the call is over, however it ended, with the
:class:`LLMCall` filled in. Neither may raise into the request (failures are logged and ignored) nor block.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from runtime.agents.base import ResponsesAgent
from runtime.agents.upstream_chat import ChatStream, chat_output, chat_payload, chat_usage
from runtime.agents.upstream_http import UpstreamClient, UpstreamError
from runtime.agents.upstream_responses import ResponsesEvents, responses_output, responses_payload
from runtime.errors import AgentLoadError
from runtime.protocol.agent import ResponsesAgentRequest, ResponsesAgentResponse

__all__ = [
    "ENV_API",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "ENV_MODEL",
    "ENV_SYSTEM_PROMPT",
    "ENV_TIMEOUT",
    "LLMCall",
    "LLMCallObserver",
    "OpenAICompatibleAgent",
    "UpstreamError",
    "llm_call_observer",
]

log = logging.getLogger("runtime.agents.builtin")

Api = Literal["chat", "responses"]

# Read by OpenAICompatibleAgent.from_env() only, when an agent file builds its agent; never per request.
ENV_BASE_URL = "RUNTIME_LLM_BASE_URL"  # default https://api.openai.com/v1
ENV_MODEL = "RUNTIME_LLM_MODEL"  # required
ENV_API_KEY = "RUNTIME_LLM_API_KEY"  # optional (vLLM and Ollama need none)
ENV_API = "RUNTIME_LLM_API"  # "chat" (default) or "responses"
ENV_TIMEOUT = "RUNTIME_LLM_TIMEOUT"  # seconds per network operation, default 60
ENV_SYSTEM_PROMPT = "RUNTIME_LLM_SYSTEM_PROMPT"  # optional

_PATHS: dict[str, str] = {"chat": "/chat/completions", "responses": "/responses"}


@dataclass(slots=True)
class LLMCall:
    """One upstream LLM call as an observer sees it. Holds no secret: the API key only travels in a header.

    ``request`` is the exact JSON body sent (message content included: an observer that must not record
    content leaves it out). Times are ``time.perf_counter()`` values.
    """

    api: str
    server_address: str
    request_model: str
    stream: bool
    request: dict[str, Any]
    started: float = field(default_factory=time.perf_counter)
    first_output: float | None = None
    ended: float | None = None
    status: Literal["ok", "error", "cancelled"] = "ok"
    error: str | None = None
    response_id: str | None = None
    response_model: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    output: list[dict[str, Any]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # what an observer adds: its trace context

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_output is None else self.first_output - self.started

    @property
    def duration_s(self) -> float | None:
        return None if self.ended is None else self.ended - self.started


class LLMCallObserver(Protocol):
    def begin(self, call: LLMCall) -> object: ...

    def end(self, call: LLMCall, handle: object) -> None: ...


llm_call_observer: LLMCallObserver | None = None
"""Observer of every :class:`OpenAICompatibleAgent`'s upstream calls; set by the composition root."""


class OpenAICompatibleAgent(ResponsesAgent):
    """An agent that is one OpenAI-compatible LLM. ``api`` picks Chat Completions or the Responses API.

    ``timeout`` bounds each network operation (connect, each read), not a whole stream: the runtime's
    request timeout bounds that. ``extra_body`` is merged last into every request body (``{"store":
    false}``, ``{"max_tokens": ...}`` for servers that lack ``max_completion_tokens``, vendor options).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        api: Api = "chat",
        timeout: float = 60.0,
        extra_body: Mapping[str, Any] | None = None,
        system_prompt: str | None = None,
        name: str | None = None,
    ) -> None:
        if api not in _PATHS:
            raise ValueError(f"api must be 'chat' or 'responses', not {api!r}")
        self.model = model
        self.api: Api = api
        self.timeout = timeout
        self.extra_body = dict(extra_body or {})
        self.system_prompt = system_prompt
        self.name = name
        self.observer: LLMCallObserver | None = None
        self._upstream = UpstreamClient(base_url, api_key, timeout)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OpenAICompatibleAgent:
        """Build from ``RUNTIME_LLM_*`` variables (see the ``ENV_*`` constants); a clear error if unusable."""
        env = os.environ if environ is None else environ
        model = env.get(ENV_MODEL, "").strip()
        if not model:
            raise AgentLoadError(f"{ENV_MODEL} is not set: name the model the LLM agent should call")
        api = env.get(ENV_API, "").strip() or "chat"
        if api not in _PATHS:
            raise AgentLoadError(f"{ENV_API}={api!r}: expected 'chat' or 'responses'")
        try:
            timeout = float(env.get(ENV_TIMEOUT, "").strip() or 60.0)
        except ValueError as exc:
            raise AgentLoadError(f"{ENV_TIMEOUT} must be a number of seconds") from exc
        return cls(
            env.get(ENV_BASE_URL, "").strip() or "https://api.openai.com/v1",
            model,
            env.get(ENV_API_KEY, "").strip() or None,
            api="responses" if api == "responses" else "chat",
            timeout=timeout,
            system_prompt=env.get(ENV_SYSTEM_PROMPT) or None,
        )

    @property
    def base_url(self) -> str:
        return self._upstream.base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, model={self.model!r}, api={self.api!r})"

    async def aclose(self) -> None:
        """Close the pooled connections of the running event loop; call it from that loop on shutdown."""
        await self._upstream.aclose()

    def _payload(self, request: ResponsesAgentRequest, stream: bool) -> dict[str, Any]:
        build = chat_payload if self.api == "chat" else responses_payload
        payload = build(request, model=self.model, system_prompt=self.system_prompt, stream=stream)
        payload.update(self.extra_body)
        return payload

    def _new_call(self, payload: dict[str, Any], stream: bool) -> LLMCall:
        return LLMCall(self.api, self._upstream.where, self.model, stream, payload)

    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        payload = self._payload(request, stream=False)
        call = self._new_call(payload, stream=False)
        handle = self._on_llm_start(call)
        try:
            body = await self._upstream.post_json(_PATHS[self.api], payload, call.headers)
            call.first_output = time.perf_counter()  # a whole answer arrives at once
            call.response_id, call.response_model = body.get("id"), body.get("model")
            if self.api == "chat":
                call.output = chat_output(body, self._upstream)
                call.usage = chat_usage(body.get("usage"))
                choices = body.get("choices") or [{}]
                call.finish_reasons = [str(c.get("finish_reason")) for c in choices if c.get("finish_reason")]
            else:
                call.output = responses_output(body, self._upstream)
                call.usage = body.get("usage") if isinstance(body.get("usage"), dict) else None
                call.finish_reasons = [str(body.get("status") or "completed")]
            return ResponsesAgentResponse(output=call.output, usage=call.usage)
        except BaseException as exc:
            _failed(call, exc)
            raise
        finally:
            call.ended = time.perf_counter()
            self._on_llm_end(call, handle)

    async def predict_stream(self, request: ResponsesAgentRequest) -> AsyncIterator[dict[str, Any]]:
        payload = self._payload(request, stream=True)
        call = self._new_call(payload, stream=True)
        reader = ChatStream(self._upstream) if self.api == "chat" else ResponsesEvents(self._upstream)
        handle = self._on_llm_start(call)
        try:
            async with self._upstream.stream(_PATHS[self.api], payload, call.headers) as payloads:
                async for data in payloads:
                    for event in reader.feed(data):
                        if event["type"] == "response.output_item.done":
                            call.output.append(event["item"])
                        yield event
                if not (reader.complete or (self.api == "chat" and payloads.done)):
                    raise self._upstream.error("ended its stream before the response was complete")
            for event in reader.finish():
                call.output.append(event["item"])
                yield event
            if reader.usage is not None:
                yield {"type": "response.completed", "response": {"usage": reader.usage}}
        except BaseException as exc:
            _failed(call, exc)
            raise
        finally:
            call.first_output = reader.first_output
            call.response_id, call.response_model = reader.response_id, reader.model
            call.finish_reasons, call.usage = reader.finish_reasons, reader.usage
            call.ended = time.perf_counter()
            self._on_llm_end(call, handle)

    def _observer(self) -> LLMCallObserver | None:
        return self.observer or llm_call_observer

    def _on_llm_start(self, call: LLMCall) -> object:
        """Tell the observer an upstream call begins; returns its handle. Never raises."""
        observer = self._observer()
        if observer is None:
            return None
        try:
            return observer.begin(call)
        except Exception:
            log.warning("LLM call observer %s failed in begin", type(observer).__name__, exc_info=True)
            return None

    def _on_llm_end(self, call: LLMCall, handle: object) -> None:
        """Tell the observer the call is over (ok, error or cancelled). Never raises."""
        observer = self._observer()
        if observer is None:
            return
        try:
            observer.end(call, handle)
        except Exception:
            log.warning("LLM call observer %s failed in end", type(observer).__name__, exc_info=True)


def _failed(call: LLMCall, exc: BaseException) -> None:
    if isinstance(exc, GeneratorExit | asyncio.CancelledError):
        call.status = "cancelled"
        return
    call.status = "error"
    call.error = exc.message if isinstance(exc, UpstreamError) else type(exc).__name__
