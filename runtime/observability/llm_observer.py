"""LLM spans for the built-in OpenAI-compatible agent, through its observer hook.

Agents do not import observability (DESIGN.md), so the built-in agent exposes ``begin(call)`` /
``end(call, handle)`` for its upstream calls and the composition root installs :class:`LLMSpanObserver`
there. The call object is read by attribute name (``request_model``, ``usage``, ``first_output`` ...), so
this module does not import the agent either. Outside a served request, or when the request is not
sampled, ``begin`` returns None and ``end`` does nothing. Otherwise ``begin`` also puts the LLM span's W3C
``traceparent`` in the call's headers, so an upstream that traces (vLLM, a gateway) continues the trace;
for a request not sampled, the request's own (flags ``00``), so the upstream follows that decision, as
OpenTelemetry's instrumentations propagate unsampled contexts.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from runtime.observability import attributes as a
from runtime.observability.context import current_request
from runtime.observability.spans import to_json, trace_headers

__all__ = ["LLMSpanObserver"]

_SERVER_ADDRESS = "server.address"
_SERVER_PORT = "server.port"


def _tokens(usage: Any, *names: str) -> int | None:
    if not isinstance(usage, dict):
        return None
    for name in names:
        value = usage.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


class _Handle:
    __slots__ = ("capture", "span")

    def __init__(self, span: Span, capture: bool) -> None:
        self.span = span
        self.capture = capture


class LLMSpanObserver:
    def begin(self, call: Any) -> object:
        request = current_request()
        if request is None:
            return None
        if not request.root.is_recording():  # not sampled: no span, but the upstream hears the decision
            headers = getattr(call, "headers", None)
            if isinstance(headers, dict):
                headers.update(trace_headers(request.root))
            return None
        model = str(getattr(call, "request_model", "") or "")
        attrs: dict[str, Any] = {
            a.SPAN_TYPE: a.SpanType.CHAT_MODEL.value,
            a.OPERATION_NAME: a.OP_CHAT,
            a.PROVIDER_NAME: "openai",  # its API (any OpenAI-compatible server), as the SDK's autotrace says
            a.REQUEST_MODEL: model,
            a.REQUEST_STREAM: bool(getattr(call, "stream", False)),
        }
        host, _, port = str(getattr(call, "server_address", "") or "").rpartition(":")
        if host and port.isdigit():  # ``host:port``: two attributes, as the conventions have them
            attrs[_SERVER_ADDRESS], attrs[_SERVER_PORT] = host, int(port)
        elif port:
            attrs[_SERVER_ADDRESS] = port  # a host without a port
        body = getattr(call, "request", None)
        if request.capture_content and isinstance(body, dict):
            payload = body.get("messages", body.get("input"))
            if payload is not None:
                attrs[a.SPAN_INPUTS] = to_json(payload)
        span = request.tracer.start_span(f"{a.OP_CHAT} {model}", kind=SpanKind.CLIENT, attributes=attrs)
        headers = getattr(call, "headers", None)
        if isinstance(headers, dict):  # the upstream (vLLM, a gateway) may trace too: under this span
            headers.update(trace_headers(span))
        return _Handle(span, request.capture_content)

    def end(self, call: Any, handle: object) -> None:
        if not isinstance(handle, _Handle):
            return
        span = handle.span
        try:
            span.set_attributes(self._result(call, handle.capture))
            status = getattr(call, "status", "ok")
            if status == "error":
                # The upstream's message may quote the prompt: content, kept only when content is.
                message = str(getattr(call, "error", "") or "") if handle.capture else "upstream_error"
                span.set_status(Status(StatusCode.ERROR, message))
                span.set_attribute(a.ERROR_TYPE, "upstream_error")
            elif status == "ok":
                span.set_status(Status(StatusCode.OK))
        finally:
            span.end()

    @staticmethod
    def _result(call: Any, capture: bool) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        usage = getattr(call, "usage", None)
        tokens_in = _tokens(usage, "input_tokens", "prompt_tokens")
        tokens_out = _tokens(usage, "output_tokens", "completion_tokens")
        if tokens_in is not None:
            attrs[a.USAGE_INPUT_TOKENS] = tokens_in
        if tokens_out is not None:
            attrs[a.USAGE_OUTPUT_TOKENS] = tokens_out
        ttft = getattr(call, "ttft_s", None)
        if isinstance(ttft, float):
            attrs[a.RESPONSE_TIME_TO_FIRST_CHUNK] = ttft
        for key, name in ((a.RESPONSE_ID, "response_id"), (a.RESPONSE_MODEL, "response_model")):
            value = getattr(call, name, None)
            if isinstance(value, str) and value:
                attrs[key] = value
        reasons = getattr(call, "finish_reasons", None)
        if reasons:
            attrs[a.RESPONSE_FINISH_REASONS] = tuple(str(r) for r in reasons)
        output = getattr(call, "output", None)
        if capture and output:
            attrs[a.SPAN_OUTPUTS] = to_json(output)
        return attrs
