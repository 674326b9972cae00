"""``/metrics``, parsed with ``prometheus_client``'s own text parser."""

from __future__ import annotations

import math
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from runtime.observability import attributes as a
from runtime.observability.prometheus import CallbackMetric, Counter, Gauge, Histogram, Registry
from tests.observability.conftest import TracedApp
from tests.serving.agents import AsyncEcho, Failing, Sleeper, loaded

ECHO = {"model_name": "echo", "model_version": "", "variant": ""}


def families(app: TracedApp) -> dict[str, Any]:
    r = app.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def samples(family: Any, suffix: str = "", **labels: str) -> list[Sample]:
    return [
        s
        for s in family.samples
        if s.name == family.name + suffix and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def value(family: Any, suffix: str = "", **labels: str) -> float:
    found = samples(family, suffix, **labels)
    assert len(found) == 1, (suffix, labels, family.samples)
    return float(found[0].value)


def test_request_metrics_by_model_endpoint_and_status(traced: Any) -> None:
    app = traced(loaded(AsyncEcho(), "echo"))
    for _ in range(3):
        app.client.post("/v1/responses", json={"input": "one two three"})
    app.client.post("/v1/responses", json={"input": "one two three", "stream": True})
    app.client.post("/invocations", json={"input": [{"role": "user", "content": "hi"}]})
    m = families(app)

    requests = m["runtime_requests"]
    assert requests.type == "counter"
    assert value(requests, "_total", endpoint="/v1/responses", status="OK", **ECHO) == 4
    assert value(requests, "_total", endpoint="/invocations", status="OK", **ECHO) == 1
    assert value(m["runtime_requests_in_flight"], endpoint="/v1/responses", **ECHO) == 0

    duration = m[a.M_REQUEST_DURATION]
    assert duration.type == "histogram"
    assert value(duration, "_count", endpoint="/v1/responses", **ECHO) == 4
    # error.type (GenAI conventions): empty for a request that did not fail, and no other series yet
    assert {s.labels["error_type"] for s in duration.samples} == {""}
    assert value(duration, "_sum", endpoint="/v1/responses", **ECHO) > 0
    les = [s.labels["le"] for s in samples(duration, "_bucket", endpoint="/v1/responses", **ECHO)]
    assert les[0] == "0.01" and "81.92" in les and "1310.72" in les and les[-1] == "+Inf"
    counts = [s.value for s in samples(duration, "_bucket", endpoint="/v1/responses", **ECHO)]
    assert counts == sorted(counts) and counts[-1] == 4  # cumulative

    ttft = m[a.M_TIME_TO_FIRST_TOKEN]
    assert value(ttft, "_count", endpoint="/v1/responses", **ECHO) == 1  # streams only
    assert "320.0" in [s.labels["le"] for s in samples(ttft, "_bucket", endpoint="/v1/responses", **ECHO)]
    assert value(m[a.M_TIME_PER_OUTPUT_TOKEN], "_count", endpoint="/v1/responses", **ECHO) >= 3

    tokens = m[a.M_TOKEN_USAGE]
    assert value(tokens, "_count", endpoint="/v1/responses", gen_ai_token_type="input", **ECHO) == 4
    assert value(tokens, "_sum", endpoint="/v1/responses", gen_ai_token_type="output", **ECHO) > 0
    token_les = [float(s.labels["le"]) for s in samples(tokens, "_bucket", gen_ai_token_type="input")]
    assert token_les[:3] == [1.0, 4.0, 16.0] and 67108864.0 in token_les and math.isinf(token_les[-1])


def test_errors_by_code(traced: Any) -> None:
    failing = traced(loaded(Failing(), "bad"))
    failing.client.post("/v1/responses", json={"input": "x"})
    failing.client.post("/v1/responses", json={"input": "x", "stream": True})
    m = families(failing)
    labels = {"model_name": "bad", "model_version": "", "variant": "", "endpoint": "/v1/responses"}
    assert value(m["runtime_request_errors"], "_total", code="agent_error", **labels) == 2
    assert value(m["runtime_requests"], "_total", status="ERROR", **labels) == 2
    # The request duration of failed requests is told apart by error type (the code above).
    duration = m[a.M_REQUEST_DURATION]
    assert value(duration, "_count", error_type="agent_error", **labels) == 2
    assert value(duration, "_count", error_type="", **labels) == 0  # none succeeded

    slow = traced(loaded(Sleeper(), "slow"), request_timeout=0.1)
    slow.client.post("/v1/responses", json={"input": "x"})
    m = families(slow)
    labels["model_name"] = "slow"
    assert value(m["runtime_request_errors"], "_total", code="timeout", **labels) == 1
    assert value(m[a.M_REQUEST_DURATION], "_count", error_type="timeout", **labels) == 1
    assert value(m[a.M_REQUEST_DURATION], "_sum", error_type="timeout", **labels) >= 0.1


def test_rejected_requests_count_as_http_errors(traced: Any) -> None:
    app = traced(loaded(AsyncEcho(), "echo"))
    app.client.post("/v1/responses", content=b"{", headers={"content-type": "application/json"})
    app.client.post("/v1/responses", json={"input": []})
    app.client.post("/v1/responses", content=b"x", headers={"content-type": "text/plain"})
    app.client.get("/no/such/path/123")
    app.client.get("/api/traces/nope")
    m = families(app)
    errors = m["runtime_http_errors"]
    assert value(errors, "_total", endpoint="/v1/responses", status="400") == 2
    assert value(errors, "_total", endpoint="/v1/responses", status="415") == 1
    assert value(errors, "_total", endpoint="other", status="404") == 1
    assert value(errors, "_total", endpoint="/api/traces", status="404") == 1


def test_exporter_health_metrics(traced: Any) -> None:
    app = traced(loaded(AsyncEcho(), "echo"))
    app.client.post("/v1/responses", json={"input": "hi"})
    app.flush()
    m = families(app)
    assert value(m["runtime_trace_spans_exported"], "_total") == 1
    assert value(m["runtime_trace_spans_dropped"], "_total", reason="queue_full") == 0
    assert value(m["runtime_trace_export_queue_depth"]) == 0
    assert value(m[a.M_STORE_WRITE_DURATION], "_count") >= 1


def test_metrics_off_means_no_route(traced: Any) -> None:
    app = traced(loaded(AsyncEcho(), "echo"), metrics=False)
    assert app.client.post("/v1/responses", json={"input": "hi"}).status_code == 200
    assert app.client.get("/metrics").status_code == 404


def test_registry_escapes_labels_and_renders_every_kind() -> None:
    registry = Registry()
    counter = registry.register(Counter("c", "a counter", ("path",)))
    gauge = registry.register(Gauge("g", "a gauge"))
    hist = registry.register(Histogram("h", 'help with "quotes"\nand lines', ("k",), (0.5, 1, 2)))
    registry.register(CallbackMetric("cb", "read late", "gauge", ("q",), lambda: [(("x",), 7)]))
    counter.labels('a"b\\c\nd').inc(2)
    gauge.labels().set(-1.5)
    child = hist.labels("v")
    for observed in (0.5, 0.7, 2, 9):
        child.observe(observed)
    parsed = {f.name: f for f in text_string_to_metric_families(registry.render().decode())}
    assert parsed["c"].samples[0].labels == {"path": 'a"b\\c\nd'}
    assert parsed["c"].samples[0].value == 2
    assert parsed["g"].samples[0].value == -1.5
    buckets = {s.labels["le"]: s.value for s in parsed["h"].samples if s.name == "h_bucket"}
    assert buckets == {"0.5": 1, "1.0": 2, "2.0": 3, "+Inf": 4}  # "le" is inclusive
    assert parsed["h"].documentation == 'help with "quotes"\nand lines'
    assert parsed["cb"].samples[0].value == 7
