"""The request's root span, recorded by the runtime itself rather than by the SDK's span class.

Why: the SDK's span validates, copies and locks every attribute as it is set, and the root span carries
some twenty of them on every request; that alone cost more than the rest of the request's telemetry and
a large share of serving the echo agent. Here the span holds only what other code sets through the
OpenTelemetry API (checked, as the SDK would); the attributes the runtime sets are known when the request
ends, from its :class:`~runtime.protocol.call.Call`, and are put together then by
:func:`~runtime.observability.records.root_attributes` with those its model and endpoint share. When the
request ends, :meth:`RootSpan.finish` builds the SDK's own ``ReadableSpan`` and the telemetry hands it to
the same span processors every other span goes to, so exporters (the store, OTLP, tests' in-memory
exporter) see an ordinary finished span.

The root also carries the trace id the service chose before the response started: its span context is
built from that id directly, so no id generator has to be steered.

When the store exporter is the only consumer of root spans (no OTLP exporter, no processor added by a
test), :meth:`RootSpan.record` skips the ``ReadableSpan`` and the processor fan-out: the telemetry hands the
exporter a plain record, which also spares the exporter thread (and its share of the GIL) the conversion,
and the attributes are put together in the trace writer process, off the server's GIL.

Deliberate divergence: ``end()`` from user code is ignored (the request ends its root span), and span
processors get no ``on_start`` for the root (ours do nothing there).
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState
from opentelemetry.util import types

from runtime.observability.records import STATUS_NAMES, RootFields, RootRecord, root_attributes
from runtime.protocol.traceparent import VendorState

__all__ = ["STATUS_OK", "RootSpan", "root_context"]

_SCALARS = (str, bool, int, float)
_FLAGS_SAMPLED = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
_FLAGS_UNSAMPLED = TraceFlags(TraceFlags.RANDOM_TRACE_ID)
_FLAGS_CALLER_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_FLAGS_CALLER_UNSAMPLED = TraceFlags(TraceFlags.DEFAULT)
_UNSET = Status(StatusCode.UNSET)  # Status is immutable: one instance serves every span
STATUS_OK = Status(StatusCode.OK)
_NO_EVENTS: tuple[Event, ...] = ()
_NO_LINKS: tuple[Link, ...] = ()


def root_context(trace_id: int, sampled: bool, vendors: VendorState | None = None) -> SpanContext:
    """A new root span context in the given trace (the service's id), with a fresh random span id, carrying
    the caller's ``tracestate`` when it sent one."""
    return SpanContext(
        trace_id,
        random.getrandbits(64) or 1,
        is_remote=False,
        trace_flags=_FLAGS_SAMPLED if sampled else _FLAGS_UNSAMPLED,
        trace_state=TraceState(vendors) if vendors else None,
    )


def _clean(value: Any) -> Any:
    """A valid attribute value (sequences become tuples of one scalar type), or None to drop it."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        items = tuple(value)
        if all(isinstance(v, _SCALARS) for v in items) and len({type(v) for v in items}) <= 1:
            return items
    return None


class RootSpan(Span):
    __slots__ = (
        "_context",
        "_ended",
        "attributes",
        "events",
        "name",
        "parent_id",
        "sampled",
        "span_id",
        "start_ns",
        "status",
        "trace_id",
        "vendors",
    )

    kind = SpanKind.SERVER

    def __init__(
        self,
        name: str,
        trace_id: int,
        sampled: bool,
        attributes: dict[str, Any] | None,
        start_ns: int,
        parent_id: int | None = None,
        vendors: VendorState | None = None,
    ) -> None:
        self.name = name
        self.trace_id = trace_id
        self.span_id = random.getrandbits(64) or 1
        self.parent_id = parent_id  # the caller's span (``traceparent``), in another process
        self.vendors = vendors  # the caller's ``tracestate``, carried on by calls made inside the request
        self.sampled = sampled
        self._context: SpanContext | None = None  # built when asked for: most requests never ask
        self.attributes = attributes  # what code inside the request set; None until it sets one
        self.start_ns = start_ns
        self.events: list[Event] | None = None  # most requests add none: no list until one is added
        self.status = _UNSET
        self._ended = False

    # -- the OpenTelemetry API, for code running inside the request ------------------------------------------

    def get_span_context(self) -> SpanContext:
        context = self._context
        if context is None:
            flags = _FLAGS_SAMPLED if self.sampled else _FLAGS_UNSAMPLED
            if self.parent_id is not None:  # the caller's trace id: not ours to say it is random
                flags = _FLAGS_CALLER_SAMPLED if self.sampled else _FLAGS_CALLER_UNSAMPLED
            vendors = TraceState(self.vendors) if self.vendors else None
            context = self._context = SpanContext(self.trace_id, self.span_id, False, flags, vendors)
        return context

    def is_recording(self) -> bool:
        return not self._ended

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        cleaned = _clean(value)
        if cleaned is not None and not self._ended and isinstance(key, str) and key:
            if self.attributes is None:
                self.attributes = {}
            self.attributes[key] = cleaned

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        if not self._ended:
            cleaned = {k: c for k, v in (attributes or {}).items() if (c := _clean(v)) is not None}
            if self.events is None:
                self.events = []
            self.events.append(Event(name, cleaned, timestamp or time.time_ns()))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        return None  # links are set at span creation; a root span has none

    def update_name(self, name: str) -> None:
        if not self._ended:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._ended or self.status.status_code is StatusCode.OK:
            return  # OK is final, as in the SDK
        self.status = status if isinstance(status, Status) else Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        details: dict[str, Any] = {
            "exception.type": type(exception).__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        details.update(attributes or {})
        self.add_event("exception", details, timestamp)

    def end(self, end_time: int | None = None) -> None:
        return None  # the request ends its root span, see finish()

    # -- the telemetry's side --------------------------------------------------------------------------

    def record(
        self, end_ns: int, resource: dict[str, Any], shared: dict[str, Any], fields: RootFields
    ) -> RootRecord:
        """Stop recording and return the span as the store exporter's plain record: what :meth:`finish`
        builds for span processors, made cheaper for when the store is the only one that wants root spans:
        a tuple, its attributes left in parts (``shared`` by every request of the model and endpoint, the
        request's ``fields``, what code set on the span) for the writer to put together."""
        self._ended = True
        status = self.status
        events = self.events
        if status is STATUS_OK:  # the shared instances: no enum property reads on the common path
            code, description = "OK", None
        elif status is _UNSET:
            code, description = "UNSET", None
        else:
            code, description = STATUS_NAMES.get(status.status_code.value, "UNSET"), status.description
        return (
            self.trace_id,
            self.span_id,
            self.name,
            self.start_ns,
            end_ns,
            code,
            description,
            shared,
            fields,
            self.attributes or None,
            tuple((e.name, e.timestamp, dict(e.attributes or ())) for e in events) if events else (),
            resource,
            self.parent_id,
        )

    def _remote_parent(self) -> SpanContext | None:
        if self.parent_id is None:
            return None
        flags = self.get_span_context().trace_flags  # the caller's trace: the same flags as ours
        vendors = self.get_span_context().trace_state
        return SpanContext(
            self.trace_id, self.parent_id, is_remote=True, trace_flags=flags, trace_state=vendors
        )

    def finish(
        self,
        end_ns: int,
        resource: Resource,
        scope: InstrumentationScope,
        shared: dict[str, Any],
        fields: RootFields,
    ) -> ReadableSpan:
        """Stop recording and return the finished span for the span processors."""
        self._ended = True
        return ReadableSpan(
            name=self.name,
            context=self.get_span_context(),
            parent=self._remote_parent(),
            resource=resource,
            attributes=root_attributes(shared, fields, self.attributes),
            events=tuple(self.events) if self.events else _NO_EVENTS,
            links=_NO_LINKS,
            kind=self.kind,
            status=self.status,
            start_time=self.start_ns,
            end_time=end_ns,
            instrumentation_scope=scope,
        )
