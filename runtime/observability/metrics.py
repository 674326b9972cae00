"""The runtime's metrics: GenAI server histograms per model, request counters, and the exporter's health.

``RuntimeMetrics.series(...)`` returns a :class:`RequestSeries`: every child a request updates, resolved
once per (model, endpoint, variant) and then cached by the telemetry, so recording a request is a handful
of attribute loads and lock-free increments (one writer: the event loop), never a label lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from runtime.observability import attributes as a
from runtime.observability.prometheus import (
    CallbackMetric,
    Counter,
    CounterChild,
    Gauge,
    GaugeChild,
    Histogram,
    HistogramChild,
    Registry,
)
from runtime.observability.shared_metrics import SharedMetrics
from runtime.protocol.call import Call, CallStatus

__all__ = ["ExportStats", "RequestSeries", "RuntimeMetrics"]

# What the store exporter reports at scrape time: (spans exported, drops by reason, queue depth).
ExportStats = Callable[[], tuple[int, dict[str, int], int]]


class RequestSeries:
    """The metric children of one (model name, version, endpoint, variant)."""

    __slots__ = (
        "_duration_family",
        "_errors",
        "_errors_family",
        "_failed_durations",
        "_label_values",
        "_requests",
        "_requests_family",
        "duration",
        "in_flight",
        "input_tokens",
        "output_tokens",
        "tpot",
        "ttft",
    )

    def __init__(self, metrics: RuntimeMetrics, values: tuple[str, ...]) -> None:
        self._label_values = values
        self.in_flight: GaugeChild = metrics.in_flight.labels(*values)
        self.duration: HistogramChild = metrics.duration.labels(*values, "")  # no error
        self.ttft: HistogramChild = metrics.ttft.labels(*values)
        self.tpot: HistogramChild = metrics.tpot.labels(*values)
        self.input_tokens: HistogramChild = metrics.tokens.labels(*values, "input")
        self.output_tokens: HistogramChild = metrics.tokens.labels(*values, "output")
        self._requests_family = metrics.requests
        self._errors_family = metrics.errors
        self._duration_family = metrics.duration
        self._requests: dict[str, CounterChild] = {}
        self._errors: dict[str, CounterChild] = {}
        self._failed_durations: dict[str, HistogramChild] = {}

    def requests(self, status: str) -> CounterChild:
        child = self._requests.get(status)
        if child is None:
            child = self._requests[status] = self._requests_family.labels(*self._label_values, status)
        return child

    def errors(self, code: str) -> CounterChild:
        child = self._errors.get(code)
        if child is None:
            child = self._errors[code] = self._errors_family.labels(*self._label_values, code)
        return child

    def failed_duration(self, error_type: str) -> HistogramChild:
        """The request duration of the calls that failed with ``error_type`` (the conventions' error.type)."""
        child = self._failed_durations.get(error_type)
        if child is None:
            child = self._duration_family.labels(*self._label_values, error_type)
            self._failed_durations[error_type] = child
        return child

    def record(self, call: Call, latency: float, ttft: float | None, tpot: float | None) -> None:
        """Count one finished call, no longer in flight (it went up in ``begin``)."""
        self.in_flight.value -= 1
        status = call.status
        requests = self._requests.get(status)
        (requests or self.requests(status)).value += 1
        failed = status in CallStatus.FAILED
        error_type = (call.error_code or status.lower()) if failed else ""
        (self.failed_duration(error_type) if failed else self.duration).observe(latency)
        if ttft is not None and call.stream and status == CallStatus.OK:  # GenAI: of successful responses
            self.ttft.observe(ttft)
        if tpot is not None:
            self.tpot.observe(tpot)
        if call.input_tokens is not None:
            self.input_tokens.observe(call.input_tokens)
        if call.output_tokens is not None:
            self.output_tokens.observe(call.output_tokens)
        if failed:
            self.errors(error_type).inc()


class RuntimeMetrics:
    def __init__(self) -> None:
        labels = a.REQUEST_LABELS
        self.registry = Registry()
        reg = self.registry.register
        self.requests = reg(
            Counter(a.M_REQUESTS, "Agent requests served, by outcome.", (*labels, a.L_STATUS))
        )
        self.errors = reg(
            Counter(a.M_REQUEST_ERRORS, "Agent requests that failed, by error code.", (*labels, a.L_CODE))
        )
        self.in_flight = reg(Gauge(a.M_IN_FLIGHT, "Agent requests being served now.", labels))
        self.duration = reg(
            Histogram(
                a.M_REQUEST_DURATION,
                "Time to serve an agent request, by error type (empty: no error).",
                (*labels, a.L_ERROR_TYPE),
                a.DURATION_BUCKETS,
            )
        )
        self.ttft = reg(
            Histogram(
                a.M_TIME_TO_FIRST_TOKEN,
                "Time from request start to the first streamed event.",
                labels,
                a.TTFT_BUCKETS,
            )
        )
        self.tpot = reg(
            Histogram(
                a.M_TIME_PER_OUTPUT_TOKEN,
                "Time per output token after the first one.",
                labels,
                a.TPOT_BUCKETS,
            )
        )
        self.tokens = reg(
            Histogram(
                a.M_TOKEN_USAGE,
                "Tokens per agent request, by token type.",
                (*labels, a.L_TOKEN_TYPE),
                a.TOKEN_BUCKETS,
            )
        )
        self.http_errors = reg(
            Counter(a.M_HTTP_ERRORS, "HTTP responses with status >= 400.", (a.L_ENDPOINT, a.L_STATUS))
        )
        self.store_write = reg(
            Histogram(
                a.M_STORE_WRITE_DURATION,
                "Time to write one batch of spans to the store.",
                (),
                a.STORE_WRITE_BUCKETS,
            )
        )
        self._export_stats: ExportStats | None = None
        self.shared: SharedMetrics | None = None

    def share(self, directory: str) -> SharedMetrics:
        """Render every worker's metrics on ``/metrics`` through ``directory`` (see shared_metrics)."""
        self.shared = SharedMetrics(directory, self.registry)
        return self.shared

    def series(self, model_name: str, model_version: str, endpoint: str, variant: str) -> RequestSeries:
        return RequestSeries(self, (model_name, model_version, endpoint, variant))

    def watch_exporter(self, stats: ExportStats) -> None:
        """Expose the store exporter's counters, read at scrape time so the exporter keeps no metric state."""
        if self._export_stats is not None:
            return
        self._export_stats = stats

        def exported() -> Iterable[tuple[Sequence[str], float]]:
            return [((), stats()[0])]

        def dropped() -> Iterable[tuple[Sequence[str], float]]:
            return [((reason,), count) for reason, count in sorted(stats()[1].items())]

        def depth() -> Iterable[tuple[Sequence[str], float]]:
            return [((), stats()[2])]

        reg = self.registry.register
        reg(CallbackMetric(a.M_SPANS_EXPORTED, "Spans written to the store.", "counter", (), exported))
        reg(
            CallbackMetric(
                a.M_SPANS_DROPPED,
                "Spans not stored: queue full, store error, invalid.",
                "counter",
                (a.L_REASON,),
                dropped,
            )
        )
        reg(CallbackMetric(a.M_EXPORT_QUEUE_DEPTH, "Spans waiting for the store.", "gauge", (), depth))

    def record_store_write(self, seconds: float) -> None:
        self.store_write.labels().observe(seconds)

    def render(self) -> bytes:
        return self.shared.render() if self.shared is not None else self.registry.render()
