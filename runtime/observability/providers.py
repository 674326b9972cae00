"""Build the observability of one app from its settings: tracer provider, exporters, metrics, telemetry.

Called by the composition root, which alone decides what becomes process-global (the global tracer
provider, the openai patch). Everything built here belongs to one app and is closed by
:meth:`Observability.shutdown` from the app's lifespan.

Standard OpenTelemetry configuration applies: ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` (the SDK's
resource detection), ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` (the SDK's sampler), the
``OTEL_EXPORTER_OTLP_*`` variables (an additional OTLP/HTTP exporter when an endpoint is set), the
``OTEL_BSP_*`` batch settings (also used by the store exporter) and ``OTEL_SDK_DISABLED``.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, SynchronousMultiSpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from runtime.config import Settings
from runtime.errors import Unavailable
from runtime.observability import attributes as a
from runtime.observability.lazy_store import LazyStore
from runtime.observability.metrics import RuntimeMetrics
from runtime.observability.store_export import StoreSpanProcessor
from runtime.observability.telemetry import RequestTelemetry, SpanPipeline
from runtime.observability.usage import RecordInsideRequests, UsageCollector
from runtime.protocol.call import NullTelemetry, Telemetry
from runtime.version import __version__

__all__ = ["METRICS_WAIT", "Observability", "build_observability", "build_resource", "otlp_processor"]

log = logging.getLogger("runtime.observability")

METRICS_WAIT = 1.0  # seconds /metrics waits for the trace writer to count the requests ended before it


@dataclass(slots=True, eq=False)
class Observability:
    telemetry: Telemetry
    store: LazyStore
    metrics: RuntimeMetrics | None = None
    tracer_provider: TracerProvider | None = None
    exporter: StoreSpanProcessor | None = None
    pipeline: SynchronousMultiSpanProcessor | None = None
    _closed: bool = False

    def add_span_processor(self, processor: SpanProcessor) -> None:
        """Send every finished span (root spans included) to ``processor`` too: tests, extra exporters."""
        if self.pipeline is None:
            raise RuntimeError("tracing is off: there are no spans to process")
        self.pipeline.add_span_processor(processor)
        telemetry = self.telemetry
        if isinstance(telemetry, RequestTelemetry) and telemetry.spans is not None:
            telemetry.spans = dataclasses.replace(telemetry.spans, roots=None)  # roots go to every processor

    def open_store(self) -> None:
        """Open the trace store ahead of the first batch (and of SIGTERM); if it is down, say so and go on.

        Blocking (it may migrate the schema): the lifespan calls it in a thread, once the app is built.
        """
        if self.exporter is None:
            return
        try:
            self.store.get()
        except Unavailable as exc:
            log.warning("%s; traces are dropped until it is back", exc.message)

    def settle_metrics(self, timeout: float = METRICS_WAIT) -> bool:
        """Wait (blocking, up to ``timeout``) until the request metrics of every request ended so far are
        counted: the trace writer counts those of traced requests (see root_metrics). Before rendering
        ``/metrics`` or publishing them to other workers; past the timeout, they show up a little later."""
        if self.exporter is None or self.metrics is None:
            return True
        return self.exporter.settle_metrics(timeout)

    def flush(self, timeout: float = 30.0) -> bool:
        if self.tracer_provider is None:
            return True
        return self.tracer_provider.force_flush(int(timeout * 1000))

    def shutdown(self) -> None:
        """Drain every exporter (the store's, OTLP's), then close the store. Blocking: call it in a thread."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.tracer_provider is not None:
                self.tracer_provider.shutdown()
        finally:
            self.store.close()


def build_resource() -> Resource:
    """The SDK's resource (``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` win: ``service.version`` and
    ``host.name`` included, as a deployment names its release and pod) over our defaults: service name,
    version and host; ``runtime.version`` is always the runtime's own."""
    detected = Resource.create()
    defaults: dict[str, str] = {a.SERVICE_VERSION: __version__, a.HOST_NAME: socket.gethostname()}
    if str(detected.attributes.get(a.SERVICE_NAME, "")).startswith("unknown_service"):
        defaults[a.SERVICE_NAME] = a.DEFAULT_SERVICE_NAME
        detected = Resource({k: v for k, v in detected.attributes.items() if k != a.SERVICE_NAME})
    return Resource(defaults).merge(detected).merge(Resource({a.RUNTIME_VERSION: __version__}))


def _env_number(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        log.warning("ignoring %s=%r: not an integer", name, raw)
        return default


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def otlp_processor(environ: Mapping[str, str]) -> SpanProcessor | None:
    """An OTLP/HTTP batch exporter when an OTLP endpoint is configured; the exporter reads the rest itself."""
    if not (environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return None
    if "none" in environ.get("OTEL_TRACES_EXPORTER", "").lower():
        return None
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
    )
    if protocol and protocol != "http/protobuf":
        log.warning("OTLP protocol %r is not bundled; exporting with http/protobuf", protocol)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return _OtlpProcessor(OTLPSpanExporter())


OTLP_SHUTDOWN_SECONDS = 5.0


class _OtlpProcessor(BatchSpanProcessor):
    """The SDK's batch processor, whose shutdown gives the collector :data:`OTLP_SHUTDOWN_SECONDS` rather
    than 30 s of retries: a collector that is down must not hold a stopping server past its grace period
    (the traces are in the store either way)."""

    def shutdown(self) -> None:
        inner = getattr(self, "_batch_processor", None)  # the SDK's worker; older SDKs have none
        if inner is None:
            super().shutdown()  # type: ignore[no-untyped-call]  # the SDK leaves it untyped
            return
        inner.shutdown(timeout_millis=int(OTLP_SHUTDOWN_SECONDS * 1000))


def _writer_process(settings: Settings) -> bool:
    """Write traces from a writer process, unless told not to or the store lives in this process' memory."""
    mode = settings.trace_writer.strip().lower()  # process or thread: Settings checked it
    if mode == "thread":
        return False
    url = settings.resolved_store_url
    if not url.startswith("sqlite"):
        return True
    path = url.split("://", 1)[-1].split("?", 1)[0]
    return path not in ("", "/", "/:memory:") and "mode=memory" not in url


def _sampler_from_env() -> Sampler:
    """The sampler ``OTEL_TRACES_SAMPLER`` configures, made to record (not sample) the spans it drops inside
    a request: a request's token usage is summed from its spans whether or not it is kept."""
    provider = TracerProvider(shutdown_on_exit=False)  # the SDK reads the variables; nothing else is kept
    return RecordInsideRequests(provider.sampler)


def build_observability(settings: Settings, environ: Mapping[str, str]) -> Observability:
    store = LazyStore(settings.resolved_store_url)
    metrics = RuntimeMetrics() if settings.metrics else None
    if metrics is not None and settings.metrics_dir:
        metrics.share(settings.metrics_dir)
    tracing = settings.tracing and not _truthy(environ.get("OTEL_SDK_DISABLED"))
    if not tracing:
        telemetry: Telemetry = (
            RequestTelemetry(metrics=metrics, capture_content=settings.capture_content)
            if metrics is not None
            else NullTelemetry()
        )
        return Observability(telemetry=telemetry, store=store, metrics=metrics)
    # Unless a sampler is configured, every request is recorded, even one whose caller (``traceparent``) did
    # not sample its own span: the store is the runtime's record of what it served. (The SDK's default,
    # ``parentbased_always_on``, would follow the caller; configured, it does.)
    sampler = _sampler_from_env() if environ.get("OTEL_TRACES_SAMPLER") else ALWAYS_ON
    provider = TracerProvider(resource=build_resource(), sampler=sampler, shutdown_on_exit=False)
    # Every span goes here, the telemetry's root spans included. (The SDK leaves __init__ unannotated.)
    pipeline = SynchronousMultiSpanProcessor()  # type: ignore[no-untyped-call]
    provider.add_span_processor(pipeline)
    usage = UsageCollector()
    pipeline.add_span_processor(usage)
    exporter = StoreSpanProcessor(
        store,
        max_queue_size=_env_number(environ, "OTEL_BSP_MAX_QUEUE_SIZE", 2048),
        max_batch_size=_env_number(environ, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512),
        schedule_delay=_env_number(environ, "OTEL_BSP_SCHEDULE_DELAY", 1000) / 1000,
        on_write=metrics.record_store_write if metrics is not None else None,
        store_url=store.url if _writer_process(settings) else None,
        on_metrics=metrics.registry.add if metrics is not None else None,
    )
    pipeline.add_span_processor(exporter)
    otlp = otlp_processor(environ)
    if otlp is not None:
        pipeline.add_span_processor(otlp)
    if metrics is not None:
        metrics.watch_exporter(exporter.stats)
    spans = SpanPipeline(
        tracer=provider.get_tracer("runtime", __version__),
        processor=pipeline,
        sampler=provider.sampler,
        resource=provider.resource,
        scope=InstrumentationScope("runtime", __version__),
        roots=exporter if otlp is None else None,  # the exporter alone wants roots: hand them over plainly
    )
    telemetry = RequestTelemetry(
        spans=spans,
        usage=usage,
        metrics=metrics,
        capture_content=settings.capture_content,
    )
    return Observability(
        telemetry=telemetry,
        store=store,
        metrics=metrics,
        tracer_provider=provider,
        exporter=exporter,
        pipeline=pipeline,
    )
