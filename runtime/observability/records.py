"""Finished OpenTelemetry spans -> the store's trace and span rows, in two steps, maybe in two processes.

:func:`compact` runs in the serving process (the request thread hands full batches over; the exporter
thread the rest), which shares the GIL with the event loop, so it does as little as it can: a request's root
record is plain already and goes as it is; of each ``ReadableSpan`` it copies what the store needs into a
plain tuple (cheap to send to the trace writer process, see :mod:`runtime.observability.writer_client`).
:func:`to_rows` runs in the writer process (or, in the in-thread fallback, in the exporter thread): it builds
the rows of ``SqlStore.log_trace_rows`` with the JSON columns encoded by orjson, without pydantic (the values
come from our own spans and already have the right types; a test holds the rows valid for ``TraceRecord`` and
``SpanRecord``). Importing this module pulls in no OpenTelemetry SDK: the writer does not need one.

A request's root span (the one carrying ``runtime.endpoint``) becomes the trace row that trace queries filter
on, its columns read back from the attributes the telemetry set, and the span itself is kept in that row
(``root_span``) rather than as a span row: most requests have no other span, and one insert per request
instead of two halves the writer's work. Every other span becomes a span row. So does the root of a
request that joined a caller's trace (``traceparent``), besides its row: the caller may send other
requests in that trace, whose row replaces it (one row per trace id), and no request's root is lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from registry.entities import TraceStatus
from registry.store.traces_repo import json_text
from runtime.observability import attributes as a

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = [
    "ROOT_RECORD_LENGTH",
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
#  attributes, events, the span's resource attributes, parent is in another process)
CompactSpan = tuple[
    int,
    int,
    int | None,
    str,
    int,
    int | None,
    str,
    str | None,
    dict[str, Any],
    tuple[CompactEvent, ...],
    dict[str, Any],
    bool,
]
# What a request's root span says beyond the attributes it shares with every request of its model and
# endpoint, in this order: request id, session, user, request preview, status, output events, input tokens,
# output tokens, usage estimated, time to first token, time per output token, response preview, prompts,
# error type, error message (see :func:`root_attributes`).
RootFields = tuple[
    str,
    str | None,
    str | None,
    str | None,
    str,
    int,
    int | None,
    int | None,
    bool,
    float | None,
    float | None,
    str | None,
    tuple[str, ...] | None,
    str | None,
    str | None,
]
# A request's root span as the telemetry hands it to the store exporter directly: (trace id, span id, name,
# start ns, end ns, status code name, status message, shared attributes, fields, attributes set by code
# inside the request or None, events, resource attributes, the caller's span id or None). Its attributes
# are built from its shared attributes, fields and those set by code only where they are written, by
# :func:`root_attributes`: in the writer process, not on the request path. It goes into a batch as it is.
RootRecord = tuple[
    int,
    int,
    str,
    int,
    int,
    str,
    str | None,
    dict[str, Any],
    RootFields,
    dict[str, Any] | None,
    tuple[CompactEvent, ...],
    dict[str, Any],
    int | None,
]
# What goes to the writer. Resource attributes and roots' shared attributes are few dicts (one per tracer
# provider, one per model and endpoint), each shared by many spans of a batch: ``marshal`` sends a dict
# once and refers back to it after (as it does for any object met twice), and decodes one object again.
SpanBatch = list[CompactSpan | RootRecord]
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
ROOT_RECORD_LENGTH = 13  # a RootRecord; a CompactSpan has 12 items
_NUMBERS = (int, float)  # for isinstance: ``int | float`` would build a union object at each call
_SEQUENCES = (tuple, list)


def trace_id_hex(trace_id: int) -> str:
    return f"tr-{trace_id:032x}"


# -- exporter thread ----------------------------------------------------------------------------------------


def root_attributes(
    shared: Mapping[str, Any], fields: RootFields, own: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The attributes of a request's root span: ``shared`` (its model's and endpoint's), then what is known
    when the request starts, then what code inside the request set (``own``), then what the end tells;
    later ones win, as they would have had each been set on the span when it became known."""
    attrs = dict(shared)
    _fill(fields, attrs, attrs, own)
    return attrs


def _fill(
    fields: RootFields, kept: dict[str, Any], extra: dict[str, Any], own: Mapping[str, Any] | None = None
) -> None:
    """Set the attributes ``fields`` stand for (present ones only): in ``kept`` those a trace row has a
    column for (``_PROMOTED``), in ``extra`` the others; for a root span's attributes, one dict for both.
    ``own``, what code inside the request set, goes between what its start and its end tell."""
    (
        request_id,
        session,
        user,
        request_preview,
        status,
        output_events,
        tokens_in,
        tokens_out,
        estimated,
        ttft,
        tpot,
        response_preview,
        prompts,
        error_type,
        error_message,
    ) = fields
    # Plain ifs rather than a loop over (key, value) pairs: the writer runs this for every request.
    extra[a.REQUEST_ID] = request_id
    if session:
        kept[a.CONVERSATION_ID] = session
    if user:
        kept[a.USER_ID] = user
    if request_preview:
        kept[a.REQUEST_PREVIEW] = request_preview
    if own:
        kept.update(own)
    kept[a.STATUS] = status
    extra[a.OUTPUT_EVENTS] = output_events
    if tokens_in is not None:
        kept[a.USAGE_INPUT_TOKENS] = tokens_in
    if tokens_out is not None:
        kept[a.USAGE_OUTPUT_TOKENS] = tokens_out
    if tokens_in is not None or tokens_out is not None:
        kept[a.USAGE_TOTAL_TOKENS] = (tokens_in or 0) + (tokens_out or 0)
    kept[a.USAGE_ESTIMATED] = estimated
    if ttft is not None:
        kept[a.TIME_TO_FIRST_TOKEN] = ttft
    if response_preview:
        kept[a.RESPONSE_PREVIEW] = response_preview
    if prompts:
        kept[a.PROMPTS] = prompts
    _fill_outcome(extra, tpot, error_type, error_message)


def _fill_outcome(
    extra: dict[str, Any], tpot: float | None, error_type: str | None, error_message: str | None
) -> None:
    if tpot is not None:
        extra[a.TIME_PER_OUTPUT_TOKEN] = tpot
    if error_type:
        extra[a.ERROR_TYPE] = error_type
    if error_message:
        extra[a.ERROR_MESSAGE] = error_message


def compact(spans: Iterable[ReadableSpan | RootRecord]) -> SpanBatch:
    """What the store needs of ``spans``, as plain values: no SDK object crosses to the writer.

    Root records are plain already and go as they are; an SDK span is copied into a :data:`CompactSpan`.
    """
    resources: dict[int, dict[str, Any]] = {}  # one attribute dict per SDK resource in the batch
    out: SpanBatch = []
    for span in spans:
        if type(span) is tuple:
            out.append(span)
            continue
        assert not isinstance(span, tuple)
        ctx = span.context
        parent = span.parent
        status = span.status
        sdk_resource = span.resource
        resource = resources.get(id(sdk_resource))
        if resource is None:
            resource = resources[id(sdk_resource)] = dict(sdk_resource.attributes)
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
                resource,
                parent is not None and parent.is_remote,
            )
        )
    return out


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


class _RootShape:
    """What the trace row of a request's root takes from the attributes its request shares with others (its
    model's and endpoint's) and from its resource; worked out once per batch for the root records of one
    model and endpoint."""

    __slots__ = (
        "endpoint",
        "extra",
        "kept",
        "model_id",
        "model_name",
        "model_version",
        "span_type",
        "variant",
    )

    def __init__(self, shared: Mapping[str, Any], resource: Mapping[str, Any]) -> None:
        get = shared.get
        self.model_id = _str_or_none(get(a.AGENT_ID))
        self.model_name = _str_or_none(get(a.AGENT_NAME))
        self.model_version = _int_or_none(get(a.AGENT_VERSION))
        self.endpoint = _str_or_none(get(a.ENDPOINT))
        self.variant = _str_or_none(get(a.VARIANT))
        self.span_type = str(get(a.SPAN_TYPE, "UNKNOWN"))
        self.kept = {k: shared[k] for k in shared.keys() & _KEPT_BY_ROOT}  # set operations: in C
        # The trace's other attributes: the shared ones without a column, then the resource's (no request's
        # own attribute has a resource attribute's name, so the request's may be added after them).
        self.extra = {k: shared[k] for k in shared.keys() - _PROMOTED}
        self.extra.update((k, resource[k]) for k in _RESOURCE_KEYS if k in resource)


def _trace_row(
    root: tuple[int, int, str, int, int | None, str, str | None],
    shape: _RootShape,
    kept: dict[str, Any],
    extra: dict[str, Any],
    events: list[dict[str, Any]],
    parent_id: int | None,
) -> dict[str, Any]:
    """The trace row of a request's root span ``root`` (trace id, span id, name, start, end, status code and
    message; ``parent_id``, the caller's span, when the request joined a trace), the span itself kept in it
    rather than as a spans row: ``shape`` says what the row takes from the attributes the request shares
    with others and from its resource; ``kept`` are the attributes with a trace column (and those a
    resource attribute took the key of), ``extra`` the others.

    The root span kept in the row is one JSON value (tuples, OpenTelemetry's sequences, become lists)
    holding only what the row does not already hold (see ``get_trace``): no start or end, a parent only when
    there is one, and of the attributes only ``kept``, less the previews (read back from their columns);
    the rest it inherits from the row's ``attributes``."""
    trace_id, span_id, name, start, end, status_code, message = root
    get = kept.get
    # The common types are checked inline (the writer runs this for every request); others are converted.
    ttft = get(a.TIME_TO_FIRST_TOKEN)
    tokens_in = get(a.USAGE_INPUT_TOKENS)
    if tokens_in is not None and type(tokens_in) is not int:
        tokens_in = _int_or_none(tokens_in)
    tokens_out = get(a.USAGE_OUTPUT_TOKENS)
    if tokens_out is not None and type(tokens_out) is not int:
        tokens_out = _int_or_none(tokens_out)
    status = _TRACE_STATUSES.get(str(get(a.STATUS)))
    if status is None:
        status = TraceStatus.ERROR.value if status_code == "ERROR" else TraceStatus.OK.value
    prompts = get(a.PROMPTS)
    session, user = get(a.CONVERSATION_ID), get(a.USER_ID)
    request_preview, response_preview = get(a.REQUEST_PREVIEW), get(a.RESPONSE_PREVIEW)
    if type(request_preview) is not str or not request_preview:
        request_preview = None
    if type(response_preview) is not str or not response_preview:
        response_preview = None
    span = {
        "span_id": f"{span_id:016x}",
        "name": name,
        "span_type": shape.span_type,
        "status_code": status_code,
        "status_message": message,
        "attributes": kept,
        "events": events,
        "inherit_attributes": True,
    }
    if parent_id is not None:
        span["parent_span_id"] = f"{parent_id:016x}"
    # The previews, often the largest values of a trace, are columns of the row: the span leaves them out
    # and says so (``column_attributes``, see ROOT_COLUMN_ATTRIBUTES), instead of holding each twice.
    if request_preview is not None:
        del kept[a.REQUEST_PREVIEW]
        span["column_attributes"] = True
    if response_preview is not None:
        del kept[a.RESPONSE_PREVIEW]
        span["column_attributes"] = True
    return {
        "trace_id": f"tr-{trace_id:032x}",
        "model_id": shape.model_id,
        "model_name": shape.model_name,
        "model_version": shape.model_version,
        "endpoint": shape.endpoint,
        "status": status,
        "start_time_ns": start,
        "end_time_ns": end,
        "latency_ms": (end - start) / 1e6 if end is not None else None,
        "ttft_ms": ttft * 1000.0 if isinstance(ttft, _NUMBERS) else None,
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "total_tokens": (tokens_in or 0) + (tokens_out or 0)
        if tokens_in is not None or tokens_out is not None
        else None,
        "tokens_estimated": bool(get(a.USAGE_ESTIMATED, False)),
        "session_id": session if isinstance(session, str) and session else None,
        "user_id": user if isinstance(user, str) and user else None,
        "request_preview": request_preview,
        "response_preview": response_preview,
        "attributes": json_text(extra),
        "variant": shape.variant,
        "prompts": json_text([str(p) for p in prompts])
        if isinstance(prompts, _SEQUENCES) and prompts
        else "[]",
        "root_span": json_text(span),
    }


def _events(events: tuple[CompactEvent, ...]) -> list[dict[str, Any]]:
    return [{"name": n, "time_ns": t, "attributes": e} for n, t, e in events] if events else []


def to_rows(batch: SpanBatch) -> TraceRows:
    """The store rows of a compacted batch: one span row per span, one trace row per request root."""
    trace_rows: list[dict[str, Any]] = []
    span_rows: list[dict[str, Any]] = []
    # By the identity of (shared attributes, resource): the batch holds them, so no id is reused meanwhile.
    shapes: dict[tuple[int, int], _RootShape] = {}
    for span in batch:
        if len(span) == ROOT_RECORD_LENGTH:  # a request's root as the telemetry recorded it
            root: RootRecord = span  # type: ignore[assignment] # its length says so
            shared, values, own, resource = root[7], root[8], root[9], root[11]
            # Nothing set inside could override shared ones, and no caller's trace that other requests may
            # share (their roots are kept as spans too, below).
            if not own and a.ENDPOINT in shared and root[12] is None:
                key = (id(shared), id(resource))
                shape = shapes.get(key)
                if shape is None:
                    shape = shapes[key] = _RootShape(shared, resource)
                kept, extra = dict(shape.kept), dict(shape.extra)
                _fill(values, kept, extra)
                events = root[10]
                event_list = _events(events) if events else []
                trace_rows.append(_trace_row(root[:7], shape, kept, extra, event_list, root[12]))
                continue
            plain: CompactSpan = (
                *root[:2],
                root[12],
                *root[2:7],
                root_attributes(shared, values, own),
                root[10],
                resource,
                root[12] is not None,
            )
        else:
            plain = span  # type: ignore[assignment] # its length says so
        trace_id, span_id, parent_id, name, start, end, status_code, message, attrs, events, res, remote = (
            plain
        )
        event_list = _events(events)
        # A request's whole root span (its shape is all its attributes): no parent in this process.
        if (parent_id is None or remote) and a.ENDPOINT in attrs:
            shape = _RootShape(attrs, res)
            row = (trace_id, span_id, name, start, end, status_code, message)
            trace_rows.append(_trace_row(row, shape, shape.kept, shape.extra, event_list, parent_id))
            if parent_id is None:
                continue
            # A request that joined a caller's trace: other requests of that caller may join it too, and
            # the trace has one row, the last one written. Every request's root is a span of the trace as
            # well, so that none of them is lost (``get_trace`` lists each span once).
        span_rows.append(
            {
                "trace_id": trace_id_hex(trace_id),
                "span_id": f"{span_id:016x}",
                "parent_span_id": f"{parent_id:016x}" if parent_id is not None else None,
                "name": name,
                "span_type": str(attrs.get(a.SPAN_TYPE, "UNKNOWN")),
                "start_ns": start,
                "end_ns": end,
                "status_code": status_code,
                "status_message": message,
                "attributes": json_text(attrs),
                "events": json_text(event_list) if event_list else "[]",
            }
        )
    return trace_rows, span_rows
