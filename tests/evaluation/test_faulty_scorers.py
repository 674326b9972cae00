"""Every way a scorer can misbehave ends as an assessment with an error; the engine keeps working."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from registry.client import RegistryClient
from registry.entities import Assessment, SpanRecord, TraceRecord, new_trace_id
from runtime.evaluation import Feedback, Trace, scorer
from runtime.evaluation.catalog import ScorerCatalog
from runtime.evaluation.counters import ScoringCounters
from runtime.evaluation.engine import ScoringEngine
from runtime.evaluation.execution import ScorerRunner
from runtime.evaluation.job import ScorerRef, ScoringJob
from tests.evaluation.conftest import stored_trace

release = threading.Event()  # lets the hung sync scorer's daemon thread end when the test is over
calls: dict[str, int] = {}


@scorer
def good(outputs: str) -> bool:
    return outputs == "fine"


@scorer
def raises(outputs: str) -> bool:
    calls["raises"] = calls.get("raises", 0) + 1
    raise RuntimeError("scorer broke")


@scorer
def flaky(outputs: str) -> bool:
    calls["flaky"] = calls.get("flaky", 0) + 1
    if calls["flaky"] < 2:
        raise ConnectionError("blip")
    return True


@scorer
def hangs_sync(outputs: str) -> bool:
    release.wait(30)
    return True


@scorer
async def hangs_async(outputs: str) -> bool:
    await asyncio.sleep(30)
    return True


@scorer
def returns_dict(outputs: str) -> Any:
    return {"score": 1}


@scorer
def returns_none(outputs: str) -> Any:
    return None


@scorer
def exits(outputs: str) -> bool:
    raise SystemExit(3)


@scorer
def several(outputs: str) -> list[Feedback]:
    return [Feedback(True, "a", name="several.a"), Feedback(0.25, "b", name="several.b")]


@scorer
def with_trace(trace: Trace) -> Feedback:
    return Feedback(trace.stored, f"{len(trace.spans)} spans")


@scorer
def with_expectations(outputs: str, expectations: Any) -> bool:
    return bool(expectations)


ALL = [
    good,
    raises,
    flaky,
    hangs_sync,
    hangs_async,
    returns_dict,
    returns_none,
    exits,
    several,
    with_trace,
    with_expectations,
]


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    calls.clear()
    release.clear()
    yield
    release.set()


def engine_for(client: RegistryClient, **kw: Any) -> ScoringEngine:
    runner = ScorerRunner(timeout=0.3, retries=2, backoff=0.01)
    return ScoringEngine(
        ScorerCatalog({s.name: s for s in ALL}),
        client,
        runner=runner,
        trace_wait=kw.pop("trace_wait", 2.0),
        **kw,
    )


def job(trace_id: str, *names: str, **kw: Any) -> ScoringJob:
    return ScoringJob(trace_id=trace_id, scorers=[ScorerRef(name=n) for n in names], outputs="fine", **kw)


def by_name(found: list[Assessment]) -> dict[str, Assessment]:
    return {a.name: a for a in found}


def test_every_faulty_scorer_records_an_error_and_the_others_still_score(client: RegistryClient) -> None:
    trace_id = stored_trace(client)
    counters = ScoringCounters()
    announced: list[Assessment] = []
    engine = engine_for(client, counters=counters, hooks=[announced.append])
    names = [s.name for s in ALL if s is not with_expectations] + ["missing_scorer", "relevance"]
    started = time.monotonic()
    result = asyncio.run(engine.process(job(trace_id, *names, variant="challenger")))
    assert time.monotonic() - started < 5  # hangs are cut at the 0.3 s timeout, concurrently
    stored = by_name(client.search_assessments(trace_id=trace_id))
    assert stored["good"].value is True and stored["good"].error is None
    assert stored["raises"].error == "RuntimeError: scorer broke"
    assert calls["raises"] == 3  # retried twice with backoff, then recorded
    assert stored["flaky"].value is True and stored["flaky"].metadata["attempts"] == 2
    assert stored["hangs_sync"].error == "scorer 'hangs_sync' did not finish within 0.3 s"
    assert stored["hangs_async"].error == "scorer 'hangs_async' did not finish within 0.3 s"
    assert "returned dict" in (stored["returns_dict"].error or "")
    assert "returned None" in (stored["returns_none"].error or "")
    assert stored["exits"].error == "RuntimeError: the scorer raised SystemExit"
    assert (stored["several.a"].value, stored["several.b"].value) == (True, 0.25)
    assert stored["with_trace"].value is True and stored["with_trace"].rationale == "0 spans"
    assert "no scorer named 'missing_scorer'" in (stored["missing_scorer"].error or "")
    assert "no LLM judge is configured" in (stored["relevance"].error or "")
    for a in stored.values():
        assert a.value is None or a.error is None
        assert a.metadata["variant"] == "challenger" and a.metadata["sample_rate"] == 1.0
    assert result.failures == 8 and len(result.stored) == len(stored) == len(announced)
    assert counters.failed[("hangs_sync", "timeout")] == 1
    assert counters.failed[("returns_dict", "bad_type")] == 1
    assert counters.failed[("raises", "error")] == 1
    assert counters.scored["good"] == 1

    # the same engine goes on scoring, and a second delivery of the same job writes nothing twice
    again = asyncio.run(engine.process(job(trace_id, "good", "several")))
    assert again.stored == [] and again.duplicates == 3
    assert len(client.search_assessments(trace_id=trace_id)) == len(stored)


def test_scorers_needing_expectations_skip_live_traffic(client: RegistryClient) -> None:
    trace_id = stored_trace(client)
    engine = engine_for(client)
    result = asyncio.run(engine.process(job(trace_id, "with_expectations", "good")))
    assert result.skipped == ["with_expectations"]
    assert [a.name for a in result.stored] == ["good"]
    offline = asyncio.run(engine.process(job(new_trace_id(), "with_expectations", expectations={"a": 1})))
    assert offline.stored[0].value is True


def test_a_trace_scorer_waits_for_the_stored_trace_and_gets_its_spans(client: RegistryClient) -> None:
    trace_id = new_trace_id()
    root = SpanRecord(trace_id=trace_id, span_id="1" * 16, name="invoke_agent bot", start_ns=1, end_ns=2)
    tool = SpanRecord(
        trace_id=trace_id,
        span_id="2" * 16,
        parent_span_id="1" * 16,
        name="execute_tool get_weather",
        span_type="TOOL",
        start_ns=1,
        end_ns=2,
        status_code="ERROR",
        status_message="timeout",
    )

    def export_later() -> None:
        time.sleep(0.3)  # the exporter's batch delay, simulated on purpose
        client.log_traces([TraceRecord(trace_id=trace_id, start_time_ns=1, latency_ms=5.0)], [root, tool])

    writer = threading.Thread(target=export_later)
    writer.start()
    catalog = ScorerCatalog({with_trace.name: with_trace})
    engine = ScoringEngine(catalog, client, trace_wait=5.0, trace_poll=0.05)
    result = asyncio.run(engine.process(job(trace_id, "with_trace", "no_tool_errors", "latency_slo")))
    writer.join()
    found = by_name(result.stored)
    assert found["with_trace"].rationale == "2 spans"
    assert found["no_tool_errors"].value is False
    assert "execute_tool get_weather: timeout" in (found["no_tool_errors"].rationale or "")
    assert found["latency_slo"].value is True
    assert {a.span_id for a in result.stored} == {"1" * 16}  # attached to the root span


def test_without_a_stored_trace_scorers_get_the_request_facts(client: RegistryClient) -> None:
    engine = ScoringEngine(ScorerCatalog({with_trace.name: with_trace}), client, trace_wait=0.0)
    result = asyncio.run(engine.process(job(new_trace_id(), "with_trace", "latency_slo", latency_ms=3000.0)))
    found = by_name(result.stored)
    assert found["with_trace"].value is False  # trace.stored
    assert found["latency_slo"].value is False
    assert found["latency_slo"].span_id is None


def test_scores_are_stored_at_once_and_exported_as_span_events_once_the_trace_is(
    client: RegistryClient,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine = ScoringEngine(
        ScorerCatalog({s.name: s for s in ALL}),
        client,
        tracer=provider.get_tracer("test"),
        trace_wait=5.0,
        trace_poll=0.05,
    )
    trace_id = new_trace_id()
    root = SpanRecord(trace_id=trace_id, span_id="3" * 16, name="invoke_agent bot", start_ns=1, end_ns=2)

    async def run() -> list[Assessment]:
        result = await engine.process(job(trace_id, "good", "raises"))
        assert exporter.get_finished_spans() == ()  # not stored yet: nothing to attach to
        await asyncio.to_thread(client.log_traces, [TraceRecord(trace_id=trace_id, start_time_ns=1)], [root])
        await engine.aclose()  # waits for the pending export
        return result.stored

    stored = asyncio.run(run())
    assert {a.name for a in stored} == {"good", "raises"} and {a.span_id for a in stored} == {None}
    [span] = exporter.get_finished_spans()
    assert span.name == "evaluate" and span.parent is not None
    assert f"{span.context.trace_id:032x}" == trace_id.removeprefix("tr-")
    assert f"{span.parent.span_id:016x}" == "3" * 16
    events = {e.attributes["gen_ai.evaluation.name"]: e for e in span.events if e.attributes}
    assert {e.name for e in span.events} == {"gen_ai.evaluation.result"}
    good_event = events["good"].attributes or {}
    assert good_event["gen_ai.evaluation.score.value"] == 1.0
    assert good_event["gen_ai.evaluation.score.label"] == "pass"
    assert (events["raises"].attributes or {})["error.type"] == "RuntimeError"
    provider.shutdown()
