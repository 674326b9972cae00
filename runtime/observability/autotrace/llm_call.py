"""One auto-traced LLM call: its span, what its response or stream says, and when it ends.

Reads the openai SDK's objects by attribute name only (``usage.prompt_tokens`` or ``usage.input_tokens``,
``model``, ``id``, ``choices[].finish_reason``, stream chunks and events by ``type``), so chat completions and
responses share one implementation and nothing here imports the SDK. Every method is called from inside the
agent's own call, so none of them may raise: a failure to read a response loses an attribute, not the call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import SpanKind

from runtime.observability import attributes as a
from runtime.observability.context import RequestTracing
from runtime.observability.spans import MAX_CONTENT_CHARS, fail_span, to_json, trace_headers
from runtime.protocol.openai import OUTPUT_EVENTS

__all__ = ["LLMCall"]

log = logging.getLogger("runtime.observability.autotrace")

_TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


def _request_attributes(api: str, kwargs: dict[str, Any], capture: bool) -> dict[str, Any]:
    model = kwargs.get("model")
    attrs: dict[str, Any] = {
        a.SPAN_TYPE: a.SpanType.CHAT_MODEL.value,
        a.OPERATION_NAME: a.OP_CHAT,
        a.PROVIDER_NAME: "openai",
        a.REQUEST_STREAM: kwargs.get("stream") is True,
    }
    if isinstance(model, str):
        attrs[a.REQUEST_MODEL] = model
    temperature = kwargs.get("temperature")
    if isinstance(temperature, int | float):
        attrs[a.REQUEST_TEMPERATURE] = float(temperature)
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        if isinstance(kwargs.get(key), int):
            attrs[a.REQUEST_MAX_TOKENS] = kwargs[key]
    if capture:
        payload = kwargs.get("messages") if api == "chat" else kwargs.get("input")
        instructions = kwargs.get("instructions")
        if isinstance(instructions, str):
            payload = {"instructions": instructions, "input": payload}
        if payload is not None:
            attrs[a.SPAN_INPUTS] = to_json(payload)
    return attrs


class LLMCall:
    __slots__ = (
        "_capture",
        "_ended",
        "_finish",
        "_first_seen",
        "_model",
        "_started",
        "_stream",
        "_text",
        "_text_len",
        "span",
        "usage",
    )

    def __init__(self, request: RequestTracing, api: str, kwargs: dict[str, Any]) -> None:
        model = kwargs.get("model")
        self._capture = request.capture_content
        self._stream = kwargs.get("stream") is True
        self._first_seen = False
        self.span = request.tracer.start_span(
            f"{a.OP_CHAT} {model}" if isinstance(model, str) else a.OP_CHAT,
            kind=SpanKind.CLIENT,
            attributes=_request_attributes(api, kwargs, self._capture),
        )
        self._started = time.perf_counter()
        self._text: list[str] = []
        self._text_len = 0
        self._finish: list[str] = []
        self._model: str | None = None
        self._ended = False
        self.usage: tuple[int, int] | None = None

    def headers(self, given: Any) -> Any:
        """The call's ``extra_headers`` with this span's W3C ``traceparent`` (and the request's caller's
        ``tracestate``) added, so an upstream that traces (vLLM, a gateway) continues the trace; a
        ``traceparent`` the caller set is left alone, with its ``tracestate``."""
        if given is not None and not isinstance(given, Mapping):
            return given
        if given is not None and any(str(k).lower() == "traceparent" for k in given):
            return given
        return {**(given or {}), **trace_headers(self.span)}

    # -- what the SDK returns ----------------------------------------------------------------------

    def response(self, result: Any) -> None:
        """A complete (non-streamed) chat completion or response."""
        try:
            self._read_response(result)
            choices = getattr(result, "choices", None)
            if isinstance(choices, list):
                for choice in choices:
                    self._note_finish(getattr(choice, "finish_reason", None))
                    message = getattr(choice, "message", None)
                    self._add_text(getattr(message, "content", None))
            else:
                self._add_text(getattr(result, "output_text", None))
        except Exception:
            log.debug("could not read an openai response", exc_info=True)
        self.end(completed=True)

    def chunk(self, chunk: Any) -> None:
        """One streamed chat chunk or responses event. The time to the first chunk is to the first one with
        output: of the Responses API's events, not its lifecycle ones (``response.created`` comes at once),
        as the built-in agent and the request's own time to first token count."""
        kind = getattr(chunk, "type", None)
        if not self._first_seen and (not isinstance(kind, str) or kind in OUTPUT_EVENTS):
            self._first_seen = True
            self.span.set_attribute(a.RESPONSE_TIME_TO_FIRST_CHUNK, time.perf_counter() - self._started)
        try:
            if isinstance(kind, str):
                if kind == "response.output_text.delta":
                    self._add_text(getattr(chunk, "delta", None))
                elif kind in _TERMINAL_EVENTS:
                    self._read_response(getattr(chunk, "response", None))
                    self._note_finish(kind.removeprefix("response."))
                return
            self._read_response(chunk)
            for choice in getattr(chunk, "choices", None) or ():
                self._note_finish(getattr(choice, "finish_reason", None))
                self._add_text(getattr(getattr(choice, "delta", None), "content", None))
        except Exception:
            log.debug("could not read an openai stream chunk", exc_info=True)

    def _read_response(self, result: Any) -> None:
        if result is None:
            return
        model = getattr(result, "model", None)
        if isinstance(model, str) and model:
            self._model = model
        response_id = getattr(result, "id", None)
        if isinstance(response_id, str) and response_id:
            self.span.set_attribute(a.RESPONSE_ID, response_id)
        usage = getattr(result, "usage", None)
        if usage is not None:
            tokens_in = getattr(usage, "prompt_tokens", None)
            if tokens_in is None:
                tokens_in = getattr(usage, "input_tokens", None)
            tokens_out = getattr(usage, "completion_tokens", None)
            if tokens_out is None:
                tokens_out = getattr(usage, "output_tokens", None)
            self.usage = (int(tokens_in or 0), int(tokens_out or 0))

    def _note_finish(self, reason: Any) -> None:
        if isinstance(reason, str) and reason and reason not in self._finish:
            self._finish.append(reason)

    def _add_text(self, text: Any) -> None:
        if self._capture and isinstance(text, str) and text and self._text_len < MAX_CONTENT_CHARS:
            self._text.append(text)
            self._text_len += len(text)

    # -- the end -----------------------------------------------------------------------------------

    def fail(self, exc: BaseException) -> None:
        if not self._ended and isinstance(exc, Exception):
            fail_span(self.span, exc, self._capture)
            self.span.set_attribute(a.ERROR_TYPE, type(exc).__name__)
        self.end(completed=False)

    def end(self, completed: bool) -> None:
        """End the span once; ``completed`` False for a stream closed before its end."""
        if self._ended:
            return
        self._ended = True
        try:
            attrs: dict[str, Any] = {}
            if self._model:
                attrs[a.RESPONSE_MODEL] = self._model
            if self.usage is not None:
                attrs[a.USAGE_INPUT_TOKENS], attrs[a.USAGE_OUTPUT_TOKENS] = self.usage
            if self._finish:
                attrs[a.RESPONSE_FINISH_REASONS] = tuple(self._finish)
            if self._text:
                attrs[a.SPAN_OUTPUTS] = to_json("".join(self._text))
            if self._stream:
                attrs[a.STREAM_COMPLETED] = completed
            self.span.set_attributes(attrs)
        finally:
            self.span.end()
