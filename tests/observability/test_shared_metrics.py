"""``/metrics`` with several worker processes: whichever worker answers counts all of them."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from runtime.observability import attributes as a
from runtime.observability.metrics import RuntimeMetrics
from runtime.observability.shared_metrics import SharedMetrics, start_afresh
from runtime.protocol.call import Call, CallStatus, ModelInfo
from tests.servers import ServeProcess, wait_until

MODEL = ModelInfo(name="bot", version="2")
LABELS = {"model_name": "bot", "model_version": "2", "endpoint": "/invocations", "variant": ""}


def parsed(text: bytes | str) -> dict[str, Any]:
    raw = text.decode() if isinstance(text, bytes) else text
    return {f.name: f for f in text_string_to_metric_families(raw)}


def sample(families: dict[str, Any], name: str, **labels: str) -> float:
    family = families[name.removesuffix("_total").removesuffix("_count").removesuffix("_sum")]
    found = [s.value for s in family.samples if s.name == name and s.labels == {**LABELS, **labels}]
    assert len(found) == 1, (name, labels, family.samples)
    return float(found[0])


def worker(
    folder: Path, name: str, latencies: list[float], in_flight: int, endpoint: str = "/invocations"
) -> tuple[RuntimeMetrics, SharedMetrics]:
    """One worker's metrics after serving ``latencies`` and with ``in_flight`` requests still running."""
    metrics = RuntimeMetrics()
    shared = SharedMetrics(folder, metrics.registry, name=name)
    metrics.shared = shared
    series = metrics.series(MODEL.name, MODEL.version or "", endpoint, "")
    for latency in latencies:
        call = Call(
            request_id="r", endpoint=endpoint, stream=False, model=MODEL, input_tokens=3, output_tokens=5
        )
        series.in_flight.value += 1
        series.record(call, latency, None, None)
    series.in_flight.value += in_flight
    failed = Call(request_id="r", endpoint=endpoint, stream=False, model=MODEL, status=CallStatus.ERROR)
    series.in_flight.value += 1
    series.record(failed, 0.5, None, None)
    return metrics, shared


def test_a_scrape_of_one_worker_counts_every_worker(tmp_path: Path) -> None:
    first, first_shared = worker(tmp_path, "w1", [0.02, 0.3, 4.0], in_flight=2)
    second, second_shared = worker(tmp_path, "w2", [0.02, 0.02], in_flight=1)
    first_shared.publish()
    second_shared.publish()
    only_first, _ = worker(tmp_path, "w3", [], in_flight=0, endpoint="/v1/responses")
    assert only_first.shared is not None
    only_first.shared.publish()

    for metrics in (first, second):  # whichever worker answers, the same totals
        m = parsed(metrics.render())
        assert sample(m, "runtime_requests_total", status="OK") == 5
        assert sample(m, "runtime_requests_total", status="ERROR") == 2
        assert sample(m, "runtime_request_errors_total", code="error") == 2
        assert sample(m, "runtime_requests_in_flight") == 3
        assert sample(m, a.M_REQUEST_DURATION + "_count", error_type="") == 5
        assert abs(sample(m, a.M_REQUEST_DURATION + "_sum", error_type="") - 4.36) < 1e-9
        assert sample(m, a.M_REQUEST_DURATION + "_count", error_type="error") == 2
        assert sample(m, a.M_REQUEST_DURATION + "_sum", error_type="error") == 1.0
        buckets = {
            s.labels["le"]: s.value
            for s in m[a.M_REQUEST_DURATION].samples
            if s.name.endswith("_bucket")
            and s.labels["endpoint"] == "/invocations"
            and not s.labels["error_type"]
        }
        assert (buckets["0.02"], buckets["0.32"], buckets["5.12"], buckets["+Inf"]) == (3, 4, 5, 5)
        tokens = m[a.M_TOKEN_USAGE]
        assert any(s.labels.get("gen_ai_token_type") == "output" and s.value == 5 * 5 for s in tokens.samples)
        # A label set only another worker has seen is there too.
        assert sample(m, "runtime_requests_total", endpoint="/v1/responses", status="ERROR") == 1


def test_a_stopped_worker_keeps_its_counts_not_its_gauges(tmp_path: Path) -> None:
    _, gone = worker(tmp_path, "gone", [0.1, 0.1], in_flight=4)
    live, _ = worker(tmp_path, "live", [0.1], in_flight=1)
    gone.publish()
    old = time.time() - 60
    os.utime(gone.path, (old, old))
    (tmp_path / "torn.metrics.json").write_text('{"runtime_requests": {')  # half a file: skipped
    (tmp_path / "other.metrics.json").write_text('{"runtime_requests": {"x": [1, 2, 3]}, "nope": 1}')
    m = parsed(live.render())
    assert sample(m, "runtime_requests_total", status="OK") == 3  # totals never go down
    assert sample(m, "runtime_requests_in_flight") == 1  # its requests are not in flight any more


def test_a_new_run_starts_from_zero(tmp_path: Path) -> None:
    _, shared = worker(tmp_path, "old", [0.1], in_flight=0)
    shared.publish()
    (tmp_path / "keep.txt").write_text("not ours")
    start_afresh(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_two_served_workers_answer_with_the_same_totals(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "999.metrics.json").write_text('{"runtime_requests": {"stale": 1000}}')  # an earlier run's
    env = {"RUNTIME_HOME": str(tmp_path / "home"), "RUNTIME_METRICS_DIR": str(folder)}
    requests = 40
    with ServeProcess(["examples/echo_agent.py", "--workers", "2"], env=env) as server:
        server.wait_ready(timeout=60)
        for i in range(requests):  # a connection each: the kernel spreads them over the workers
            with httpx.Client(base_url=server.url) as client:
                assert client.post("/invocations", json={"input": f"n{i}"}).status_code == 200

        def total() -> float:
            with httpx.Client(base_url=server.url) as client:
                m = parsed(client.get("/metrics").text)
            return sum(s.value for s in m["runtime_requests"].samples if s.name == "runtime_requests_total")

        # Every scrape, whichever worker takes it, sees all the requests (others' within a second).
        assert wait_until(lambda: all(total() == requests for _ in range(10)), timeout=15), total()
        assert len(list(folder.glob("*.metrics.json"))) == 2
        assert server.terminate(timeout=30) == 0
    counted = 0.0
    for path in folder.glob("*.metrics.json"):  # each worker published its last counts on the way out
        m = parsed(RuntimeMetrics().registry.render([(json.loads(path.read_text()), True)]))
        counted += sum(s.value for s in m["runtime_requests"].samples if s.name == "runtime_requests_total")
    assert counted == requests
