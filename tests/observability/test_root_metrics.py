"""Request metrics counted from root records where they are written: the same ``/metrics``, exactly once."""

from __future__ import annotations

import math
import os
import signal
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from runtime.observability import attributes as a
from runtime.observability.metrics import RuntimeMetrics
from runtime.observability.prometheus import Snapshot
from runtime.observability.records import RootRecord, SpanBatch
from runtime.observability.root_metrics import fold_roots
from runtime.observability.store_export import StoreSpanProcessor, ThreadWriter
from runtime.observability.telemetry import RequestTelemetry, SpanPipeline
from runtime.observability.writer_client import ProcessWriter
from runtime.observability.writer_sink import Outcome
from runtime.protocol.call import Call, CallStatus, ModelInfo
from tests.observability.conftest import observability_of, settings_for
from tests.observability.test_writer_process import CountingStore, stored_traces
from tests.servers import wait_until

BOT = ModelInfo("bot", version="2")
UNVERSIONED = ModelInfo("echo")


class Roots:
    """A root sink that keeps the records; ``counts`` says whether it counts their metrics."""

    def __init__(self, counts: bool) -> None:
        self.counts = counts
        self.records: list[RootRecord] = []

    def on_end_root(self, record: RootRecord) -> bool:
        self.records.append(record)
        return self.counts


def telemetry(metrics: RuntimeMetrics, roots: Roots, sampler: Sampler = ALWAYS_ON) -> RequestTelemetry:
    provider = TracerProvider(shutdown_on_exit=False)
    spans = SpanPipeline(
        tracer=provider.get_tracer("test"),
        processor=SynchronousMultiSpanProcessor(),  # type: ignore[no-untyped-call]
        sampler=sampler,
        resource=provider.resource,
        scope=InstrumentationScope("test"),
        roots=roots,
    )
    return RequestTelemetry(spans=spans, metrics=metrics)


def serve(telemetry: RequestTelemetry) -> None:
    """Requests of every kind the metrics tell apart, through the telemetry's begin and end."""
    cases: list[dict[str, Any]] = [
        {"model": BOT, "endpoint": "/invocations", "latency": 0.0123, "tokens": (3, 5)},
        {"model": BOT, "endpoint": "/invocations", "latency": 2.5e-4, "tokens": (3, 1)},
        {"model": BOT, "endpoint": "/v1/responses", "stream": True, "latency": 0.31, "ttft": 0.0021},
        {"model": BOT, "endpoint": "/v1/responses", "stream": True, "latency": 1.7, "ttft": 0.4,
         "tokens": (12, 40)},
        {"model": BOT, "endpoint": "/v1/responses", "latency": 0.05, "status": CallStatus.ERROR,
         "code": "agent_error"},
        {"model": BOT, "endpoint": "/v1/responses", "latency": 30.2, "status": CallStatus.TIMEOUT},
        {"model": BOT, "endpoint": "/v1/responses", "stream": True, "latency": 0.9, "ttft": 0.1,
         "status": CallStatus.CANCELLED, "tokens": (4, 7)},
        {"model": UNVERSIONED, "endpoint": "/invocations", "latency": 0.0031, "variant": "challenger",
         "tokens": (2, 2)},
    ]  # fmt: skip
    for case in cases:
        call = Call(
            "r",
            case["endpoint"],
            case.get("stream", False),
            case["model"],
            variant=case.get("variant"),
            trace_id="ab" * 16,
        )
        handle = telemetry.begin(call)
        call.started = 1000.0
        call.ended = 1000.0 + case["latency"]
        if "ttft" in case:
            call.first_event = 1000.0 + case["ttft"]
        call.status = case.get("status", CallStatus.OK)
        call.error_code = case.get("code")
        call.input_tokens, call.output_tokens = case.get("tokens", (None, None))
        telemetry.end(call, handle)


def assert_same(mine: Snapshot, theirs: Snapshot) -> None:
    """Equal snapshots, histogram sums up to a nanosecond per request (latency crosses in nanoseconds)."""
    assert mine.keys() == theirs.keys()
    for name, values in mine.items():
        assert values.keys() == theirs[name].keys(), name
        for labels, value in values.items():
            other = theirs[name][labels]
            if isinstance(value, list):
                assert value[0] == other[0], (name, labels)
                assert math.isclose(value[1], other[1], rel_tol=0, abs_tol=1e-8), (name, labels)
            else:
                assert value == other, (name, labels)


def test_folding_the_root_records_gives_the_metrics_the_server_records() -> None:
    in_process, folded = RuntimeMetrics(), RuntimeMetrics()
    kept, counted = Roots(counts=False), Roots(counts=True)
    serve(telemetry(in_process, kept))
    serve(telemetry(folded, counted))
    assert len(kept.records) == len(counted.records) == 8
    before = folded.registry.snapshot()
    assert before[a.M_REQUESTS] == {}  # counted from the records: nothing recorded in the server
    assert all(v == 0 for v in before[a.M_IN_FLIGHT].values())  # but the in-flight gauge is its own

    folded.registry.add(fold_roots(counted.records))
    assert_same(in_process.registry.snapshot(), folded.registry.snapshot())
    requests = folded.registry.snapshot()[a.M_REQUESTS]
    timeouts = 'model_name="bot",model_version="2",endpoint="/v1/responses",variant="",status="TIMEOUT"'
    assert requests[timeouts] == 1
    errors = folded.registry.snapshot()[a.M_REQUEST_ERRORS]
    assert set(errors.values()) == {1} and len(errors) == 2  # agent_error and timeout; a cancel is no error
    # The duration's error type is the error's code, empty for the rest (the cancelled stream among them).
    durations = folded.registry.snapshot()[a.M_REQUEST_DURATION]
    by_type: dict[str, int] = {}
    for labels, histogram in durations.items():
        error_type = labels.rsplit('error_type="', 1)[1].rstrip('"')
        assert isinstance(histogram, list)
        by_type[error_type] = by_type.get(error_type, 0) + sum(histogram[0])
    assert by_type == {"": 6, "agent_error": 1, "timeout": 1}
    # Time to first token is of successful streams only (GenAI conventions): the cancelled one is not in it.
    ttft = folded.registry.snapshot()[a.M_TIME_TO_FIRST_TOKEN]
    [streamed] = [value for labels, value in ttft.items() if 'endpoint="/v1/responses"' in labels]
    assert isinstance(streamed, list) and streamed[1] == pytest.approx(0.4021)


def test_increments_add_up_and_other_items_of_a_batch_are_skipped() -> None:
    metrics = RuntimeMetrics()
    roots = Roots(counts=True)
    serve(telemetry(metrics, roots))
    batch: list[object] = [("not", "a", "root"), *roots.records, 42]
    assert fold_roots([]) == {} and fold_roots([("x",)]) == {}
    metrics.registry.add(fold_roots(batch[:4]))
    metrics.registry.add(fold_roots(batch[4:]))
    whole = RuntimeMetrics()
    serve(telemetry(whole, Roots(counts=False)))
    assert_same(whole.registry.snapshot(), metrics.registry.snapshot())


@pytest.fixture
def url(tmp_path: Path) -> str:
    from registry.store import SqlStore

    store_url = f"sqlite:///{tmp_path / 'traces.db'}"
    SqlStore(store_url).close()
    return store_url


def records(count: int = 1) -> SpanBatch:
    roots = Roots(counts=True)
    tel = telemetry(RuntimeMetrics(), roots)
    for _ in range(count):
        call = Call("r", "/invocations", False, BOT, trace_id=os.urandom(16).hex())
        handle = tel.begin(call)
        call.output_tokens = 3
        tel.end(call, handle)
    return list(roots.records)


def requests_in(increments: Sequence[Snapshot]) -> float:
    return sum(sum(s.get(a.M_REQUESTS, {}).values()) for s in increments)


def started(url: str, delivered: list[Snapshot]) -> tuple[ProcessWriter, list[Outcome]]:
    outcomes: list[Outcome] = []
    fallback = ThreadWriter(CountingStore(url), outcomes.append, delivered.append)
    writer = ProcessWriter(url, outcomes.append, fallback, on_metrics=delivered.append)
    writer.start()
    assert wait_until(lambda: writer._receive(0.05) or writer._ready, timeout=30)
    return writer, outcomes


def test_the_writer_process_sends_each_batch_s_metrics_once_before_its_write(url: str) -> None:
    delivered: list[Snapshot] = []
    writer, outcomes = started(url, delivered)
    try:
        writer.write(records(3), 3)
        writer.write(records(2), 2)
        assert writer.wait_folded(10)
        assert requests_in(delivered) == 5
        assert writer.wait(10)
        assert requests_in(delivered) == 5  # the acknowledgements bring nothing more
        assert sum(o.exported for o in outcomes) == 5 and not writer.degraded
    finally:
        writer.close(10)
    assert stored_traces(url) == 5


def test_a_writer_that_dies_before_counting_leaves_the_count_to_the_server(url: str) -> None:
    delivered: list[Snapshot] = []
    writer, outcomes = started(url, delivered)
    pid = writer.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # it reads nothing more: the next batch is neither counted nor written
    try:
        writer.write(records(4), 4)
        assert not writer.wait_folded(0.2)
        assert delivered == []
    finally:
        os.kill(pid, signal.SIGKILL)
    writer.wait(10)  # finds the writer gone: the batch is lost to the store, its requests still count
    assert writer.degraded
    assert requests_in(delivered) == 4
    assert outcomes[-1] == Outcome(0, 0, 0, None, writer_lost=4)
    writer.write(records(1), 1)  # from now on in this process: counted once, and written
    assert requests_in(delivered) == 5
    writer.close(1)


class BlockingStore(CountingStore):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.entered = threading.Event()
        self.release = threading.Event()

    def log_trace_rows(self, trace_rows: Sequence[Mapping[str, Any]], span_rows: Sequence[Any]) -> None:
        self.entered.set()
        assert self.release.wait(10)
        super().log_trace_rows(trace_rows, span_rows)


def test_records_not_queued_are_left_to_the_server_to_count(url: str) -> None:
    store = BlockingStore(url)
    delivered: list[Snapshot] = []
    processor = StoreSpanProcessor(
        store, max_queue_size=2, max_batch_size=1, schedule_delay=60, on_metrics=delivered.append
    )
    [first], [second], [third], [fourth] = records(), records(), records(), records()
    try:
        assert processor.on_end_root(first) is True  # queued: the writer counts it
        assert store.entered.wait(10)  # the worker writes it, and is held there
        assert processor.on_end_root(second) is True
        assert processor.on_end_root(third) is True
        assert processor.on_end_root(fourth) is False  # the queue is full: dropped, the server counts it
        assert processor.stats()[1]["queue_full"] == 1
    finally:
        store.release.set()
    assert processor.settle_metrics(10)
    assert requests_in(delivered) == 3
    processor.shutdown()
    assert processor.on_end_root(fourth) is False  # stopped: nothing is queued any more
    assert stored_traces(url) == 3


def test_metrics_off_means_the_server_counts_and_the_writer_does_not(url: str) -> None:
    processor = StoreSpanProcessor(CountingStore(url), schedule_delay=60)
    try:
        [record] = records()
        assert processor.on_end_root(record) is False
        assert processor.settle_metrics(0)  # nothing to wait for
    finally:
        processor.shutdown()


def test_metrics_are_settled_through_the_writer_before_a_scrape(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from runtime.app import create_app
    from tests.serving.agents import AsyncEcho, loaded

    app = create_app(settings_for(tmp_path), agent=loaded(AsyncEcho(), "echo"))
    with TestClient(app) as client:
        exporter = observability_of(app).exporter
        assert exporter is not None
        writer = exporter._writer
        assert isinstance(writer, ProcessWriter)
        client.post("/invocations", json={"input": [{"role": "user", "content": "warm up"}]})
        assert wait_until(lambda: writer._ready, timeout=30)  # then the batches go to the process
        for _ in range(5):
            client.post("/invocations", json={"input": [{"role": "user", "content": "hi"}]})
        text = client.get("/metrics").text
        assert not writer.degraded and not writer._unfolded
    labels = 'model_name="echo",model_version="",endpoint="/invocations",variant="",status="OK"'
    assert f"runtime_requests_total{{{labels}}} 6" in text


def test_with_a_ratio_sampler_each_request_is_counted_once_stored_or_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keeping a share of traces (the README's advice for tail latency) loses no request from the metrics:
    the writer counts the stored ones from their records, the server the others."""
    from starlette.testclient import TestClient

    from runtime.app import create_app
    from tests.serving.agents import AsyncEcho, loaded

    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.5")
    settings = settings_for(tmp_path)
    app = create_app(settings, agent=loaded(AsyncEcho(), "echo"))
    with TestClient(app) as client:
        writer = observability_of(app).exporter._writer  # type: ignore[union-attr]
        assert isinstance(writer, ProcessWriter)
        sent = 0

        def post() -> bool:
            nonlocal sent
            sent += 1
            return client.post("/invocations", json={"input": [{"role": "user", "content": "hi"}]}).is_success

        # The writer starts with the first stored trace, which an unsampled request does not make.
        assert wait_until(lambda: post() and writer._ready, timeout=30)
        for _ in range(40):
            post()
        text = client.get("/metrics").text
        assert observability_of(app).flush()
    labels = 'model_name="echo",model_version="",endpoint="/invocations",variant="",status="OK"'
    assert f"runtime_requests_total{{{labels}}} {sent}" in text
    # 40 or more requests at 0.5: some kept, some not (both at once by chance: 2 in 2^40)
    assert 0 < stored_traces(settings.resolved_store_url) < sent


def test_the_last_publish_of_a_worker_counts_its_last_requests(tmp_path: Path) -> None:
    import json

    from starlette.testclient import TestClient

    from runtime.app import create_app
    from tests.serving.agents import AsyncEcho, loaded

    folder = tmp_path / "metrics"
    app = create_app(settings_for(tmp_path, metrics_dir=str(folder)), agent=loaded(AsyncEcho(), "echo"))
    with TestClient(app) as client:
        for _ in range(3):
            client.post("/invocations", json={"input": [{"role": "user", "content": "hi"}]})
    [published] = folder.glob("*.metrics.json")
    counts = json.loads(published.read_text())[a.M_REQUESTS]
    assert sum(counts.values()) == 3


def test_a_served_writer_killed_under_load_loses_no_request_from_metrics(tmp_path: Path) -> None:
    """A real server whose trace writer is killed while requests flow: every request served is counted
    once, whether the writer counted its batch, or the server did after losing the writer."""
    import concurrent.futures
    import re

    import httpx

    from tests.observability.test_writer_process import writer_of
    from tests.servers import ServeProcess

    db = tmp_path / "store.db"
    env = {
        "RUNTIME_STORE_URL": f"sqlite:///{db}",
        "RUNTIME_HOME": str(tmp_path / "home"),
        "OTEL_BSP_SCHEDULE_DELAY": "20",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4",  # many small batches: some are in flight at the kill
    }
    echo = Path(__file__).resolve().parents[2] / "examples" / "echo_agent.py"
    with ServeProcess([str(echo)], env=env, cwd=tmp_path) as server:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=10) as client:

            def post(i: int) -> int:
                body = {"input": [{"role": "user", "content": f"message {i}"}]}
                return client.post("/invocations", json=body).status_code

            assert post(0) == 200  # a scheduled export: the writer starts
            assert wait_until(lambda: writer_of(server, db) is not None, timeout=30)
            pid = writer_of(server, db)
            assert pid is not None
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                counted_by_writer = list(pool.map(post, range(1, 101)))
                os.kill(pid, signal.SIGSTOP)  # it reads nothing more: what is sent now stays uncounted
                sent_to_a_stopped_writer = list(pool.map(post, range(101, 201)))
                os.kill(pid, signal.SIGKILL)
                after = list(pool.map(post, range(201, 301)))
            assert counted_by_writer + sent_to_a_stopped_writer + after == [200] * 300
            text = client.get("/metrics").text
    counted = re.search(r'runtime_requests_total\{[^}]*endpoint="/invocations"[^}]*status="OK"\} (\S+)', text)
    assert counted is not None and float(counted.group(1)) == 301
    spans = re.search(r'runtime_trace_spans_dropped_total\{reason="writer_lost"\} (\S+)', text)
    assert (
        spans is not None and float(spans.group(1)) > 0
    )  # the killed writer's batches, not the store's fault
    assert "writing traces in the server process from now on" in server.output()
