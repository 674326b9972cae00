"""The request metrics of a batch of root records, folded where the batch is written (spanmetrics-style).

A request's root record (see :data:`~runtime.observability.records.RootRecord`) holds everything its metrics
need: model, version, endpoint and variant (its shared attributes), status, error code, latency, time to
first token, time per output token and token counts (its fields). So the serving process does not record
the metrics of a traced request itself: the trace writer process folds every batch it receives into one
:data:`~runtime.observability.prometheus.Snapshot` of increments, sends it back before writing the batch
(a slow store does not delay metrics), and the server adds it to its registry
(:meth:`~runtime.observability.prometheus.Registry.add`). That takes ~11k of the ~40k instructions of
telemetry per request off the event loop's thread, onto the core the writer runs on.

The result is the same ``/metrics`` as recording each request in the server
(:meth:`~runtime.observability.metrics.RequestSeries.record`, which still counts every request whose record
does not reach a writer: unsampled, dropped with a full queue, exported over OTLP; a test holds the two
equal). Exactly once: the server keeps each batch it sent until its increments arrive, and folds it itself
(:func:`fold_roots`, in its exporter thread) if the writer died first.

The writer process runs this module: it imports no more of the server than the records do.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from runtime.observability import attributes as a
from runtime.observability.prometheus import Snapshot, bucket_bounds, labels_text
from runtime.observability.records import ROOT_RECORD_LENGTH
from runtime.protocol.call import CallStatus

__all__ = ["fold_into", "fold_roots"]

log = logging.getLogger("runtime.observability.export")

_DURATION = bucket_bounds(a.DURATION_BUCKETS)
_TTFT = bucket_bounds(a.TTFT_BUCKETS)
_TPOT = bucket_bounds(a.TPOT_BUCKETS)
_TOKENS = bucket_bounds(a.TOKEN_BUCKETS)
_STATUS_LABELS = (*a.REQUEST_LABELS, a.L_STATUS)
_CODE_LABELS = (*a.REQUEST_LABELS, a.L_CODE)
_TOKEN_LABELS = (*a.REQUEST_LABELS, a.L_TOKEN_TYPE)
_DURATION_LABELS = (*a.REQUEST_LABELS, a.L_ERROR_TYPE)


class _Histogram:
    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # as HistogramChild.observe: "le" buckets
        self.total += value


class _Series:
    """The increments of one (model name, version, endpoint, variant) within a batch."""

    __slots__ = ("durations", "errors", "input_tokens", "output_tokens", "requests", "tpot", "ttft", "values")

    def __init__(self, values: tuple[str, str, str, str]) -> None:
        self.values = values
        self.requests: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.durations: dict[str, _Histogram] = {}  # by error type ("": no error)
        self.ttft = _Histogram(_TTFT)
        self.tpot = _Histogram(_TPOT)
        self.input_tokens = _Histogram(_TOKENS)
        self.output_tokens = _Histogram(_TOKENS)


def _label(shared: Mapping[str, Any], key: str) -> str:
    value = shared.get(key)
    return str(value) if value else ""


def fold_roots(batch: Iterable[object]) -> Snapshot:
    """The metric increments of the root records in ``batch`` (other items are skipped); empty if none."""
    series: dict[tuple[str, str, str, str], _Series] = {}
    shapes: dict[int, tuple[_Series, bool]] = {}  # by the identity of the shared attributes in the batch
    for item in batch:
        if type(item) is not tuple or len(item) != ROOT_RECORD_LENGTH:
            continue
        shared: Mapping[str, Any] = item[7]
        shape = shapes.get(id(shared))
        if shape is None:
            values = (
                _label(shared, a.AGENT_NAME),
                _label(shared, a.AGENT_VERSION),
                _label(shared, a.ENDPOINT),
                _label(shared, a.VARIANT),
            )
            one = series.get(values)
            if one is None:
                one = series[values] = _Series(values)
            shape = shapes[id(shared)] = (one, bool(shared.get(a.REQUEST_STREAM)))
        one, stream = shape
        fields = item[8]
        status = fields[4]
        one.requests[status] = one.requests.get(status, 0) + 1
        error_type = (fields[13] or status.lower()) if status in CallStatus.FAILED else ""
        duration = one.durations.get(error_type)
        if duration is None:
            duration = one.durations[error_type] = _Histogram(_DURATION)
        duration.observe((item[4] - item[3]) / 1e9)
        ttft, tpot, tokens_in, tokens_out = fields[9], fields[10], fields[6], fields[7]
        if ttft is not None and stream and status == CallStatus.OK:  # GenAI: of successful responses
            one.ttft.observe(ttft)
        if tpot is not None:
            one.tpot.observe(tpot)
        if tokens_in is not None:
            one.input_tokens.observe(tokens_in)
        if tokens_out is not None:
            one.output_tokens.observe(tokens_out)
        if error_type:
            one.errors[error_type] = one.errors.get(error_type, 0) + 1
    return _snapshot(series.values())


def fold_into(deliver: Callable[[Snapshot], None], batch: Iterable[object]) -> None:
    """Hand ``deliver`` the increments of ``batch``, if any; never raises (metrics never break a write)."""
    try:
        increments = fold_roots(batch)
    except Exception:
        log.debug("could not fold the metrics of a batch of spans", exc_info=True)
        return
    if increments:
        deliver(increments)


def _snapshot(series: Iterable[_Series]) -> Snapshot:
    out: Snapshot = {}
    for one in series:
        values = one.values
        if one.requests:
            requests = out.setdefault(a.M_REQUESTS, {})
            for status, count in one.requests.items():
                requests[labels_text(_STATUS_LABELS, (*values, status))] = count
        if one.errors:
            errors = out.setdefault(a.M_REQUEST_ERRORS, {})
            for code, count in one.errors.items():
                errors[labels_text(_CODE_LABELS, (*values, code))] = count
        for error_type, histogram in one.durations.items():
            key = labels_text(_DURATION_LABELS, (*values, error_type))
            out.setdefault(a.M_REQUEST_DURATION, {})[key] = [histogram.counts, histogram.total]
        labels = labels_text(a.REQUEST_LABELS, values)
        for name, histogram in (
            (a.M_TIME_TO_FIRST_TOKEN, one.ttft),
            (a.M_TIME_PER_OUTPUT_TOKEN, one.tpot),
        ):
            if any(histogram.counts):
                out.setdefault(name, {})[labels] = [histogram.counts, histogram.total]
        for token_type, histogram in (("input", one.input_tokens), ("output", one.output_tokens)):
            if any(histogram.counts):
                key = labels_text(_TOKEN_LABELS, (*values, token_type))
                out.setdefault(a.M_TOKEN_USAGE, {})[key] = [histogram.counts, histogram.total]
    return out
