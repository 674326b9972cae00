"""Spans for agent authors: ``with span(...)`` and ``@trace``, on top of the OpenTelemetry API.

Inside a served request the spans go to the serving app's tracer and nest under the request's root span
(sync agents too: the runner copies the context into its threads). Outside one they use the global tracer
provider, so an agent exercised in a notebook or a test with its own provider is traced there, and with no
provider at all they cost next to nothing. Inputs and outputs are JSON, truncated, and dropped when the app
runs with ``RUNTIME_CAPTURE_CONTENT=false``. A span whose body raises records the exception and ends in
error; a cancelled one (``CancelledError``, ``GeneratorExit``) just ends.

Generator functions get one span for their whole iteration, made current only while the generator runs,
never while the consumer holds a yielded value, so the consumer's own spans do not nest under it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
from opentelemetry import trace as otel_trace
from opentelemetry.trace import Span, Status, StatusCode, Tracer

from runtime.observability import attributes as a
from runtime.observability.attributes import SpanType
from runtime.observability.context import current_request
from runtime.protocol.traceparent import format_traceparent

__all__ = [
    "MAX_CONTENT_CHARS",
    "LiveSpan",
    "current_trace_id",
    "record_prompt",
    "span",
    "trace_headers",
    "tracer_and_capture",
]

MAX_CONTENT_CHARS = 16_384


def tracer_and_capture() -> tuple[Tracer, bool]:
    """The tracer to use here and whether content may be recorded."""
    request = current_request()
    if request is not None:
        return request.tracer, request.capture_content
    return otel_trace.get_tracer("runtime.agent"), True


def _fallback(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump()
    return repr(value)


def to_json(value: Any, limit: int = MAX_CONTENT_CHARS) -> str:
    """JSON for a span attribute: never raises, strings stay unquoted, long text is cut with a marker."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = orjson.dumps(value, default=_fallback, option=orjson.OPT_NON_STR_KEYS).decode()
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class LiveSpan:
    """What ``span()`` yields: set inputs, outputs, attributes and usage on a running span."""

    __slots__ = ("_capture", "span")

    def __init__(self, span: Span, capture_content: bool) -> None:
        self.span = span
        self._capture = capture_content

    @property
    def trace_id(self) -> str:
        return f"tr-{self.span.get_span_context().trace_id:032x}"

    def set_inputs(self, value: Any) -> None:
        if self._capture and self.span.is_recording():
            self.span.set_attribute(a.SPAN_INPUTS, to_json(value))

    def set_outputs(self, value: Any) -> None:
        if self._capture and self.span.is_recording():
            self.span.set_attribute(a.SPAN_OUTPUTS, to_json(value))

    def set_attribute(self, key: str, value: Any) -> None:
        self.span.set_attribute(key, attribute_value(value))

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def set_usage(self, input_tokens: int | None = None, output_tokens: int | None = None) -> None:
        """Token usage of this span; the request's usage is summed from such spans when the agent has none."""
        if input_tokens is not None:
            self.span.set_attribute(a.USAGE_INPUT_TOKENS, int(input_tokens))
        if output_tokens is not None:
            self.span.set_attribute(a.USAGE_OUTPUT_TOKENS, int(output_tokens))

    def record_exception(self, exc: BaseException) -> None:
        fail_span(self.span, exc, self._capture)


def fail_span(span: Span, exc: BaseException, capture_content: bool) -> None:
    """Mark ``span`` failed by ``exc``. Its type always; its message and stack trace only where content may
    be captured: an exception's message often quotes its input (a prompt, a tool's arguments, an upstream's
    echo of the request), and ``RUNTIME_CAPTURE_CONTENT=false`` keeps content off traces."""
    kind = type(exc).__name__
    if capture_content:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{kind}: {exc}"))
    else:
        span.add_event("exception", {"exception.type": kind})
        span.set_status(Status(StatusCode.ERROR, kind))


def attribute_value(value: Any) -> Any:
    """``value`` as an OpenTelemetry attribute: a primitive as it is, a list or tuple of one primitive type
    as an array (``["a", "b"]`` stays a string array, as exporters and backends expect), anything else as
    JSON text."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and value:
        kind = type(value[0])
        if kind in (str, bool, int, float) and all(type(v) is kind for v in value):
            return tuple(value)
    return to_json(value)


def start_attributes(
    name: str, span_type: SpanType | str, attributes: Mapping[str, Any] | None
) -> dict[str, Any]:
    kind = str(span_type)
    attrs: dict[str, Any] = {a.SPAN_TYPE: kind}
    operation = a.OPERATION_OF_TYPE.get(kind)
    if operation is not None:
        attrs[a.OPERATION_NAME] = operation
    if kind == SpanType.TOOL:
        attrs[a.TOOL_NAME] = name
    if attributes:
        attrs.update({k: attribute_value(v) for k, v in attributes.items()})
    return attrs


def finish(live: LiveSpan, exc: BaseException | None) -> None:
    """Set the status of a span whose body ended, normally (``exc`` None) or by an exception."""
    if exc is None:
        live.span.set_status(Status(StatusCode.OK))
    elif isinstance(exc, Exception):
        live.record_exception(exc)


@contextlib.contextmanager
def span(
    name: str,
    span_type: SpanType | str = SpanType.UNKNOWN,
    *,
    inputs: Any = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[LiveSpan]:
    """A span around a block; usable in sync and async code alike (it only touches the context)."""
    tracer, capture = tracer_and_capture()
    with tracer.start_as_current_span(
        name,
        attributes=start_attributes(name, span_type, attributes),
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        live = LiveSpan(current, capture)
        if inputs is not None:
            live.set_inputs(inputs)
        try:
            yield live
        except BaseException as exc:
            finish(live, exc)
            raise
        finish(live, None)


def current_trace_id() -> str | None:
    """``tr-<32 hex>`` of the trace being recorded here, or None outside any trace."""
    ctx = otel_trace.get_current_span().get_span_context()
    return f"tr-{ctx.trace_id:032x}" if ctx.is_valid else None


def record_prompt(uri: str) -> None:
    """Note on the current request's trace that this prompt version was used (``prompts:/name/3``)."""
    request = current_request()
    if request is None:
        return
    if request.prompts is None:
        request.prompts = [uri]
    elif uri not in request.prompts:
        request.prompts.append(uri)


def trace_headers(span: Span) -> dict[str, str]:
    """The W3C Trace Context headers of an outgoing call made under ``span``: its ``traceparent``, which
    makes it the parent of what the receiver does, and the ``tracestate`` the request's caller sent, if any
    (vendors along the trace pass it on)."""
    context = span.get_span_context()
    headers = {
        "traceparent": format_traceparent(context.trace_id, context.span_id, context.trace_flags.sampled)
    }
    if context.trace_state:
        headers["tracestate"] = context.trace_state.to_header()
    return headers
