"""``RequestTelemetry``: the root span and the metrics of every request, behind the serving layer's two calls.

``begin`` opens the root span ``invoke_agent <name>`` with the trace id the service already chose, attaches
it (with a :class:`~runtime.observability.context.RequestTracing`) to the context the agent runs in, and
raises the in-flight gauge; ``end`` completes the span from the finished :class:`Call` and records the
metrics, unless the root record goes to the store exporter with metrics on: then the trace writer counts
them from it (see :mod:`runtime.observability.root_metrics`) and ``end`` only lowers the in-flight gauge.
Both are on the request path, so they never raise, never do I/O, and keep per-request work small:
the attributes that depend only on the model and endpoint, the span name and the metric children are built
once per (model, endpoint, variant, stream) and reused, and the request's own attributes are not set one by
one on the span: ``end`` hands the exporter a tuple of the Call's fields, and the attribute dict is put
together where the span is written (see :func:`~runtime.observability.records.root_attributes`). What is
built per request is what cannot be shared (the span, the request's state, its context; with metrics alone,
nothing), in as few steps as the OpenTelemetry API allows: the request's state is one object, both what
agent-side code finds in the context and the telemetry's handle; the context is one ``Context`` holding the
span and the request, not two copies made by ``set_value``; the shape is found by the model's identity, not
by hashing its dataclass; metric updates are lock-free (see :mod:`runtime.observability.prometheus`).

When the agent reported no usage, ``end`` takes it from the spans inside the request (see
:mod:`runtime.observability.usage`) and writes it back to the call, so the response's ``usage`` and the
trace agree; only when no span had any does the call stay marked estimated.
"""

from __future__ import annotations

import logging
import random
import time
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    INVALID_SPAN,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
    TraceState,
    set_span_in_context,
)
from opentelemetry.trace import Span as OtelSpan

from runtime.observability import attributes as a
from runtime.observability.context import REQUEST_KEY, RequestTracing
from runtime.observability.metrics import RequestSeries, RuntimeMetrics
from runtime.observability.records import RootFields, RootRecord, root_attributes
from runtime.observability.root_span import STATUS_OK, RootSpan, root_context
from runtime.observability.sampling import RootDecider, root_decider
from runtime.observability.usage import UsageCollector
from runtime.protocol.call import Call, CallStatus
from runtime.protocol.traceparent import VendorState

__all__ = ["PREVIEW_CHARS", "RequestTelemetry", "SpanPipeline"]

log = logging.getLogger("runtime.observability")

PREVIEW_CHARS = 1000
# Enum members are looked up through the enum's metaclass (~70 ns each on 3.11): read once.
_SAMPLE = Decision.RECORD_AND_SAMPLE
_DROP = Decision.DROP
_MAX_SHAPES = 1024  # distinct (model, endpoint, variant, stream) kept; more means ids in labels: start over
# The API's context key of the current span, read once through the API rather than from its private name.
_SPAN_KEY = next(iter(set_span_in_context(INVALID_SPAN, otel_context.Context())))

# The context variable behind OpenTelemetry's ``attach`` (its default runtime context), set directly: two
# Python calls fewer per request. Any other runtime context is left to the API.
_runtime_context = getattr(otel_context, "_RUNTIME_CONTEXT", None)
_CURRENT: ContextVar[otel_context.Context] | None = (
    _runtime_context._current_context if isinstance(_runtime_context, ContextVarsRuntimeContext) else None
)


def _preview(text: str | None) -> str | None:
    if not text:
        return None
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


class _Shape:
    """What every request of one model, endpoint, variant and streaming mode shares."""

    __slots__ = ("attributes", "model", "name", "series")

    def __init__(self, call: Call, series: RequestSeries | None) -> None:
        model = self.model = call.model
        attrs: dict[str, Any] = {
            a.OPERATION_NAME: a.OP_INVOKE_AGENT,
            a.AGENT_NAME: model.name,
            a.REQUEST_MODEL: model.name,
            a.REQUEST_STREAM: call.stream,
            a.ENDPOINT: call.endpoint,
            a.SPAN_TYPE: a.SpanType.AGENT.value,
        }
        optional = {
            a.AGENT_ID: model.model_id,
            a.AGENT_VERSION: model.version,
            a.MODEL_URI: model.uri,
            a.MODEL_SOURCE_COMMIT: model.source_commit,
            a.VARIANT: call.variant,
        }
        attrs.update({k: v for k, v in optional.items() if v})
        self.attributes = attrs
        self.name = f"{a.OP_INVOKE_AGENT} {model.name}"
        self.series = series


@dataclass(slots=True, frozen=True)
class SpanPipeline:
    """Where a request's spans go: agent-side spans through ``tracer``; the root span, which the telemetry
    records itself (see :mod:`runtime.observability.root_span`), straight to ``processor`` after the
    provider's ``sampler`` agreed, with the provider's ``resource``; or, while ``roots`` is set (the store
    exporter is the only consumer of root spans), to ``roots`` as a plain record."""

    tracer: Tracer
    processor: SpanProcessor
    sampler: Sampler
    resource: Resource
    scope: InstrumentationScope
    roots: RootSink | None = None
    # The resource's attributes, one dict every root record refers to (see records.SpanBatch).
    resource_attributes: dict[str, Any] = field(init=False)
    # The sampler's rule for root spans when it is one of the SDK's (see .sampling): None to ask it.
    decide_root: RootDecider | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "resource_attributes", dict(self.resource.attributes))
        object.__setattr__(self, "decide_root", root_decider(self.sampler))


class RootSink(Protocol):
    def on_end_root(self, record: RootRecord) -> bool:
        """Take a sampled request's root record; True if the request's metrics are counted from it (by
        the trace writer, see :mod:`runtime.observability.root_metrics`): then the telemetry does not."""
        ...


class _Request(RequestTracing):
    """A traced request: what agent-side code finds in its context (:class:`RequestTracing`) and, in the
    same object, what the telemetry needs at its end: its shape, its root span (None when the sampler
    dropped it), whether it is sampled, and the token that detaches its context. An untraced request's
    handle is its :class:`_Shape`: nothing is made per request for metrics alone."""

    __slots__ = ("sampled", "shape", "span", "token")

    def __init__(
        self, tracer: Tracer, capture_content: bool, root: OtelSpan, shape: _Shape, span: RootSpan | None
    ) -> None:
        # Every slot set here, RequestTracing's too: one Python call per request, not two.
        self.tracer = tracer
        self.capture_content = capture_content
        self.root = root
        self.prompts = None
        self.usage = None
        self.shape = shape
        self.span = span
        self.sampled = span is not None and span.sampled
        self.token: Token[otel_context.Context] | None = None


class RequestTelemetry:
    """The :class:`~runtime.protocol.call.Telemetry` of a served app; either part may be off (None)."""

    def __init__(
        self,
        *,
        spans: SpanPipeline | None = None,
        usage: UsageCollector | None = None,
        metrics: RuntimeMetrics | None = None,
        capture_content: bool = True,
    ) -> None:
        self.spans = spans
        self.usage = usage
        self.metrics = metrics
        self.capture_content = capture_content
        self._shapes: dict[tuple[Any, ...], _Shape] = {}

    def _shape(self, call: Call) -> _Shape:
        model = call.model
        # By identity: a served model's info is one object, and hashing the dataclass costs more than the
        # rest of the lookup. The shape keeps its model alive, so the id cannot be reused while cached.
        key = (id(model), call.endpoint, call.variant, call.stream)
        shape = self._shapes.get(key)
        if shape is None or shape.model is not model:
            if len(self._shapes) >= _MAX_SHAPES:
                self._shapes.clear()
            series = (
                self.metrics.series(model.name, model.version or "", call.endpoint, call.variant or "")
                if self.metrics is not None
                else None
            )
            shape = self._shapes[key] = _Shape(call, series)
        return shape

    def begin(self, call: Call) -> object:
        try:
            shape = self._shape(call)
            if shape.series is not None:
                shape.series.in_flight.value += 1
        except Exception:
            _failed("begin", call)
            return None
        spans = self.spans
        if spans is None:
            return shape
        try:
            return self._open_span(call, shape, spans)
        except Exception:
            _failed("open the span of", call)
            return shape

    def _open_span(self, call: Call, shape: _Shape, spans: SpanPipeline) -> _Request:
        trace_id = call.trace_number
        if trace_id is None:  # a caller's trace (``traceparent``), or a call made without the service
            trace_id = int(call.trace_id, 16) if call.trace_id else random.getrandbits(128) or 1
        span: RootSpan | None
        current: OtelSpan
        if spans.sampler is ALWAYS_ON:  # the default (see providers): no need to ask
            span = current = RootSpan(
                shape.name, trace_id, True, None, call.started_ns, call.parent_span_id, call.vendor_state
            )
        else:
            span = self._sampled_root(call, shape, spans, trace_id)
            if span is not None:
                current = span
            else:  # dropped: the request still carries its trace on (outgoing calls, not sampled)
                current = NonRecordingSpan(root_context(trace_id, sampled=False, vendors=call.vendor_state))
        request = _Request(spans.tracer, self.capture_content, current, shape, span)
        context = otel_context.Context({_SPAN_KEY: current, REQUEST_KEY: request})
        request.token = _CURRENT.set(context) if _CURRENT is not None else otel_context.attach(context)
        return request

    def _sampled_root(self, call: Call, shape: _Shape, spans: SpanPipeline, trace_id: int) -> RootSpan | None:
        """The root span as the sampler decides (None: dropped), given what is known at the start. One of
        the SDK's samplers decides by the trace id and the caller's flag alone: its rule is applied here
        directly (see :mod:`~runtime.observability.sampling`); any other is asked, with the root's
        attributes, and what it adds to them is kept."""
        parent = call.parent_span_id
        own: dict[str, Any] | None = None
        decide = spans.decide_root
        if decide is not None:
            decision = decide(trace_id, call.parent_sampled if parent else None)
        else:
            attrs = root_attributes(shape.attributes, self._fields(call, None, None), None)
            remote = (
                _remote_parent(trace_id, parent, call.parent_sampled, call.vendor_state) if parent else None
            )
            result = spans.sampler.should_sample(remote, trace_id, shape.name, SpanKind.SERVER, attrs)
            decision = result.decision
            own = dict(result.attributes or {})  # the sampler's attributes; the runtime's come at the end
        if decision is _DROP:
            return None
        sampled = decision is _SAMPLE
        return RootSpan(shape.name, trace_id, sampled, own, call.started_ns, parent, call.vendor_state)

    def settle(self, call: Call, handle: object) -> None:
        request = handle if type(handle) is _Request else None
        if request is None or request.usage is None:
            return
        try:
            self._usage_from_spans(call, request)
        except Exception:
            _failed("settle", call)
        request.usage = None  # taken: ``end`` has nothing left to take

    def end(self, call: Call, handle: object) -> None:
        request = handle if type(handle) is _Request else None  # a traced request; else its shape
        shape = request.shape if request is not None else handle
        if type(shape) is not _Shape:
            return
        try:
            started = call.started
            latency = (call.ended or time.perf_counter()) - started
            first = call.first_event
            ttft = None if first is None else first - started
            # Time per output token: for a stream, between tokens after the first (vLLM's inter-token
            # latency); otherwise latency per token. Written out here: this runs for every request.
            tokens = call.output_tokens or 0
            tpot = None
            if tokens > 0 and call.status == CallStatus.OK:
                if not call.stream or ttft is None:
                    tpot = latency / tokens
                else:
                    tpot = (latency - ttft) / (tokens - 1) if tokens > 1 else None
            counted = False  # whether the request's metrics are counted from its root record
            if request is not None:
                if request.usage is not None:
                    self._usage_from_spans(call, request)
                if request.span is not None:
                    counted = self._close_span(call, request, request.span, latency, ttft, tpot)
            series = shape.series
            if counted:  # a writer counts the metrics: only the in-flight gauge is the server's
                assert series is not None  # the exporter counts only while there are metrics
                series.in_flight.value -= 1
            elif series is not None:
                series.record(call, latency, ttft, tpot)
        except Exception:
            _failed("end", call)
        finally:
            if request is not None:
                _detach(request.token)
                request.token = None

    def _usage_from_spans(self, call: Call, request: RequestTracing) -> None:
        assert request.usage is not None
        if self.usage is not None:
            self.usage.release(request.usage)
        if call.usage_estimated:
            totals = request.usage.totals()
            if totals is not None:
                call.input_tokens, call.output_tokens = totals
                call.usage_estimated = False

    def _fields(
        self, call: Call, ttft: float | None, tpot: float | None, prompts: list[str] | None = None
    ) -> RootFields:
        """What the root span says of ``call`` beyond what its model and endpoint share."""
        capture = self.capture_content
        error_type = error_message = None
        if call.status in CallStatus.FAILED:
            error_type = call.error_code or call.status.lower()
            # An agent's exception message may quote its input: it is content, kept only when content is.
            error_message = call.error_message if capture else None
        output = call.output_text if capture else None
        preview = call.input_preview if capture else None
        if preview is not None and len(preview) > PREVIEW_CHARS:  # the common case needs no call
            preview = _preview(preview)
        response = "".join(output) or None if output else None
        if response is not None and len(response) > PREVIEW_CHARS:
            response = _preview(response)
        return (
            call.request_id,
            call.session_id,
            call.user_id,
            preview or None,
            call.status,
            call.output_events,
            call.input_tokens,
            call.output_tokens,
            call.usage_estimated,
            ttft,
            tpot,
            response,
            tuple(prompts) if prompts else None,
            error_type,
            error_message,
        )

    def _close_span(
        self,
        call: Call,
        request: _Request,
        span: RootSpan,
        latency: float,
        ttft: float | None,
        tpot: float | None,
    ) -> bool:
        """End the request's root span; True if its metrics are counted from the record (see RootSink)."""
        spans = self.spans
        assert spans is not None  # a request has a span only when there are spans
        fields = self._fields(call, ttft, tpot, request.prompts)
        if fields[13] is not None:  # an error type: the call failed or timed out
            span.status = Status(StatusCode.ERROR, fields[14])
        elif call.status == CallStatus.OK:
            span.status = STATUS_OK
        end_ns = call.started_ns + int(latency * 1e9)
        attributes = request.shape.attributes
        if spans.roots is not None and request.sampled:
            return spans.roots.on_end_root(span.record(end_ns, spans.resource_attributes, attributes, fields))
        spans.processor.on_end(span.finish(end_ns, spans.resource, spans.scope, attributes, fields))
        return False


_last_failure = 0.0


def _failed(what: str, call: Call) -> None:
    """Log a telemetry bug with its traceback at most once a minute: a broken exporter must not turn
    into one traceback per request."""
    global _last_failure
    now = time.monotonic()
    if now - _last_failure >= 60.0:
        _last_failure = now
        log.exception(
            "telemetry failed to %s request %s (repeats are logged at debug)", what, call.request_id
        )
    else:
        log.debug("telemetry failed to %s request %s", what, call.request_id, exc_info=True)


def _remote_parent(
    trace_id: int, span_id: int, sampled: bool, vendors: VendorState | None
) -> otel_context.Context:
    """A context holding the caller's span, as a sampler reads a parent (see ``ParentBased``)."""
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    state = TraceState(vendors) if vendors else None
    span = NonRecordingSpan(
        SpanContext(trace_id, span_id, is_remote=True, trace_flags=flags, trace_state=state)
    )
    return set_span_in_context(span, otel_context.Context())


def _detach(token: Token[otel_context.Context] | None) -> None:
    """Undo ``attach`` where it happened; elsewhere (a generator finalized by another task) there is nothing
    to undo, and OpenTelemetry's own ``detach`` would log an error for it."""
    if token is None:
        return
    try:
        token.var.reset(token)
    except (ValueError, RuntimeError):
        return
