"""Finished OpenTelemetry spans -> the store's trace and span rows, in two steps, maybe in two processes.

:func:`compact` runs in the serving process's exporter thread, which shares the GIL with the event loop, so
it does as little as it can: it copies what the store needs out of each ``ReadableSpan`` into plain tuples
(cheap to pickle to the trace writer process, see :mod:`runtime.observability.writer_client`). :func:`to_rows`
runs in the writer process (or, in the in-thread fallback, in the exporter thread): it builds the rows of
``SqlStore.log_trace_rows`` with the JSON columns encoded by orjson, without pydantic (the values come from
our own spans and already have the right types; a test holds the rows valid for ``TraceRecord`` and
``SpanRecord``). Importing this module pulls in no OpenTelemetry SDK: the writer does not need one.

A request's root span (the one carrying ``runtime.endpoint``) becomes the trace row that trace queries filter
on, its columns read back from the attributes the telemetry set, and the span itself is kept in that row
(``root_span``) rather than as a span row: most requests have no other span, and one insert per request
instead of two halves the writer's work. Every other span becomes a span row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from registry.entities import TraceStatus
from registry.store.traces_repo import json_text
from runtime.observability import attributes as a

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = [
    "STATUS_NAMES",
    "CompactSpan",
    "RootRecord",
    "SpanBatch",
    "TraceRows",
    "compact",
    "to_rows",
    "trace_id_hex",
]

# (name, time ns, attributes)
CompactEvent = tuple[str, int, Mapping[str, Any]]
# (trace id, span id, parent span id, name, start ns, end ns, status code name, status message,
#  attributes, events, index of the span's resource attributes in the batch)
CompactSpan = tuple[
    int, int, int | None, str, int, int | None, str, str | None, dict[str, Any], tuple[CompactEvent, ...], int
]
# A request's root span as the telemetry hands it to the store exporter directly: a compact span whose last
# item is the span's resource itself (``compact`` turns it into an index).
RootRecord = tuple[
    int, int, None, str, int, int, str, str | None, dict[str, Any], tuple[CompactEvent, ...], "Resource"
]
# (resource attributes, spans): resources are few (one per tracer provider), so each is sent once per batch.
SpanBatch = tuple[list[dict[str, Any]], list[CompactSpan]]
# (trace rows, span rows) for SqlStore.log_trace_rows
TraceRows = tuple[list[dict[str, Any]], list[dict[str, Any]]]

STATUS_NAMES = {0: "UNSET", 1: "OK", 2: "ERROR"}  # opentelemetry.trace.StatusCode values
_RESOURCE_KEYS = (a.SERVICE_NAME, a.SERVICE_VERSION, a.HOST_NAME, a.RUNTIME_VERSION)
# Root attributes that become trace columns; the trace row's ``attributes`` keep the rest, and the root span
# kept in the row only these (it inherits the rest), so no value is encoded and written twice but these.
_PROMOTED = frozenset(
    {
        a.REQUEST_PREVIEW,
        a.RESPONSE_PREVIEW,
        a.AGENT_ID,
        a.AGENT_NAME,
        a.AGENT_VERSION,
        a.ENDPOINT,
        a.STATUS,
        a.TIME_TO_FIRST_TOKEN,
        a.USAGE_INPUT_TOKENS,
        a.USAGE_OUTPUT_TOKENS,
        a.USAGE_TOTAL_TOKENS,
        a.USAGE_ESTIMATED,
        a.CONVERSATION_ID,
        a.USER_ID,
        a.VARIANT,
        a.PROMPTS,
        a.SPAN_TYPE,
    }
)
_KEPT_BY_ROOT = _PROMOTED | frozenset(_RESOURCE_KEYS)  # what a root span kept in its trace row holds itself
_TRACE_STATUSES = {s.value: s.value for s in TraceStatus}
_NO_EVENTS: tuple[CompactEvent, ...] = ()


def trace_id_hex(trace_id: int) -> str:
    return f"tr-{trace_id:032x}"


# -- exporter thread ----------------------------------------------------------------------------------------


def compact(spans: Iterable[ReadableSpan | RootRecord]) -> SpanBatch:
    """What the store needs of ``spans``, as plain values: no SDK object crosses to the writer.

    Root records are compact already; only their resource becomes an index.
    """
    resources: list[dict[str, Any]] = []
    seen: dict[int, int] = {}
    out: list[CompactSpan] = []
    for span in spans:
        if type(span) is tuple:
            resource = span[10]
            index = seen.get(id(resource))
            if index is None:
                index = seen[id(resource)] = len(resources)
                resources.append(dict(resource.attributes))
            out.append((*span[:10], index))  # the same ten items, then the index
            continue
        assert not isinstance(span, tuple)
        ctx = span.context
        parent = span.parent
        status = span.status
        resource = span.resource
        index = seen.get(id(resource))
        if index is None:
            index = seen[id(resource)] = len(resources)
            resources.append(dict(resource.attributes))
        events = span.events
        compact_events = (
            tuple((e.name, e.timestamp, dict(e.attributes or ())) for e in events) if events else _NO_EVENTS
        )
        out.append(
            (
                ctx.trace_id,
                ctx.span_id,
                parent.span_id if parent is not None else None,
                span.name,
                span.start_time or 0,
                span.end_time,
                STATUS_NAMES.get(status.status_code.value, "UNSET"),
                status.description,
                dict(span.attributes or ()),  # one copy: SDK spans' attribute reads take a lock each
                compact_events,
                index,
            )
        )
    return resources, out


# -- writer -------------------------------------------------------------------------------------------------


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _root_span(fields: dict[str, Any], attrs: Mapping[str, Any], events: list[dict[str, Any]]) -> str:
    """A request's root span as its trace row keeps it: one JSON value (tuples, OpenTelemetry's sequences,
    become lists) holding only what the row does not already hold (see ``get_trace``): no start, end or
    parent, and of the attributes only those with a column of their own or whose key a resource attribute
    took in the row's ``attributes``; the rest it inherits from there."""
    del fields["start_ns"], fields["end_ns"], fields["parent_span_id"]
    own = {k: attrs[k] for k in attrs.keys() & _KEPT_BY_ROOT}
    return json_text({**fields, "attributes": own, "events": events, "inherit_attributes": True})


def _trace_row(
    span: CompactSpan,
    trace_id: str,
    resource: Mapping[str, Any],
    fields: dict[str, Any],
    events: list[dict[str, Any]],
) -> dict[str, Any]:
    """The trace row of a request's root span, the span itself kept in it rather than as a spans row."""
    _, _, _, _, start, end, status_code, _, attrs, _, _ = span
    get = attrs.get
    ttft = get(a.TIME_TO_FIRST_TOKEN)
    tokens_in = _int_or_none(get(a.USAGE_INPUT_TOKENS))
    tokens_out = _int_or_none(get(a.USAGE_OUTPUT_TOKENS))
    status = _TRACE_STATUSES.get(str(get(a.STATUS)))
    if status is None:
        status = TraceStatus.ERROR.value if status_code == "ERROR" else TraceStatus.OK.value
    extra = {k: attrs[k] for k in attrs.keys() - _PROMOTED}  # set operations: in C, not per key in Python
    extra.update({k: resource[k] for k in _RESOURCE_KEYS if k in resource})
    prompts = get(a.PROMPTS)
    return {
        "trace_id": trace_id,
        "model_id": _str_or_none(get(a.AGENT_ID)),
        "model_name": _str_or_none(get(a.AGENT_NAME)),
        "model_version": _int_or_none(get(a.AGENT_VERSION)),
        "endpoint": _str_or_none(get(a.ENDPOINT)),
        "status": status,
        "start_time_ns": start,
        "end_time_ns": end,
        "latency_ms": (end - start) / 1e6 if end is not None else None,
        "ttft_ms": ttft * 1000.0 if isinstance(ttft, int | float) else None,
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "total_tokens": (tokens_in or 0) + (tokens_out or 0)
        if tokens_in is not None or tokens_out is not None
        else None,
        "tokens_estimated": bool(get(a.USAGE_ESTIMATED, False)),
        "session_id": _str_or_none(get(a.CONVERSATION_ID)),
        "user_id": _str_or_none(get(a.USER_ID)),
        "request_preview": _str_or_none(get(a.REQUEST_PREVIEW)),
        "response_preview": _str_or_none(get(a.RESPONSE_PREVIEW)),
        "attributes": json_text(extra),
        "variant": _str_or_none(get(a.VARIANT)),
        "prompts": json_text([str(p) for p in prompts])
        if isinstance(prompts, tuple | list) and prompts
        else "[]",
        "root_span": _root_span(fields, attrs, events),
    }


def to_rows(batch: SpanBatch) -> TraceRows:
    """The store rows of a compacted batch: one span row per span, one trace row per request root."""
    resources, spans = batch
    trace_rows: list[dict[str, Any]] = []
    span_rows: list[dict[str, Any]] = []
    for span in spans:
        trace_id_int, span_id, parent_id, name, start, end, status_code, message, attrs, events, res = span
        trace_id = trace_id_hex(trace_id_int)
        fields = {
            "span_id": f"{span_id:016x}",
            "parent_span_id": f"{parent_id:016x}" if parent_id is not None else None,
            "name": name,
            "span_type": str(attrs.get(a.SPAN_TYPE, "UNKNOWN")),
            "start_ns": start,
            "end_ns": end,
            "status_code": status_code,
            "status_message": message,
        }
        event_list = [{"name": n, "time_ns": t, "attributes": e} for n, t, e in events] if events else []
        if parent_id is None and a.ENDPOINT in attrs:
            trace_rows.append(_trace_row(span, trace_id, resources[res], fields, event_list))
            continue
        fields["trace_id"] = trace_id
        fields["attributes"] = json_text(attrs)
        fields["events"] = json_text(event_list) if event_list else "[]"
        span_rows.append(fields)
    return trace_rows, span_rows
