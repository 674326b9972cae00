from __future__ import annotations

import pytest

from registry.entities import Assessment, LineageEdge, LineageKind, SourceType, SpanEvent, TraceStatus
from registry.errors import AlreadyExists, InvalidArgument, NotFound
from registry.store import SqlStore
from tests.registry.helpers import span, trace

BASE_MS = 1_700_000_000_000


def test_bulk_write_round_trips_traces_and_span_trees(store: SqlStore) -> None:
    record = trace(
        BASE_MS,
        model_id="m-" + "1" * 32,
        model_name="bot",
        model_version=3,
        endpoint="/v1/responses",
        status="OK",
        end_time_ns=BASE_MS * 1_000_000 + 5_000_000,
        latency_ms=5.0,
        ttft_ms=1.5,
        input_tokens=10,
        output_tokens=20,
        total_tokens=30,
        tokens_estimated=True,
        session_id="s1",
        user_id="u1",
        request_preview="hi",
        response_preview="hello",
        attributes={"gen_ai.request.stream": True, "nested": {"a": [1, 2]}},
        variant="champion",
        prompts=["prompts:/greet/1"],
    )
    root = span(record.trace_id, "invoke_agent bot", span_type="AGENT", start_ns=1, end_ns=9)
    child = span(
        record.trace_id,
        "chat gpt",
        parent=root.span_id,
        span_type="LLM",
        start_ns=2,
        status_code="ERROR",
        status_message="boom",
        attributes={"gen_ai.usage.input_tokens": 10},
        events=[SpanEvent(name="gen_ai.evaluation.result", time_ns=3, attributes={"score": 0.5})],
    )
    store.log_traces([record], [child, root])
    stored, spans = store.get_trace(record.trace_id)
    assert stored == record
    assert spans == [root, child]


def test_writes_are_idempotent_and_spans_may_arrive_before_their_trace(store: SqlStore) -> None:
    record = trace(BASE_MS, status="OK")
    early = span(record.trace_id, "tool", start_ns=5)
    store.log_traces([], [early])
    store.log_traces([record], [early])
    updated = record.model_copy(update={"status": TraceStatus.CANCELLED, "output_tokens": 7})
    store.log_traces([updated, updated], [early])
    stored, spans = store.get_trace(record.trace_id)
    assert (stored.status, stored.output_tokens) == (TraceStatus.CANCELLED, 7)
    assert spans == [early]
    store.log_traces([], [])


def test_a_bad_record_in_a_batch_writes_nothing(store: SqlStore) -> None:
    good = trace(BASE_MS)
    bad = trace(BASE_MS, input_tokens=2**70)
    with pytest.raises(InvalidArgument, match="log traces: invalid value"):
        store.log_traces([good, bad], [span(good.trace_id)])
    with pytest.raises(NotFound):
        store.get_trace(good.trace_id)
    assert store.search_traces() == ([], None)


def test_unknown_trace_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound, match="trace 'tr-missing' not found"):
        store.get_trace("tr-missing")


@pytest.fixture
def traffic(store: SqlStore) -> list[str]:
    """Ten traces one second apart; ids in start order."""
    records = [
        trace(
            BASE_MS + i * 1000,
            model_id="m-" + ("a" if i % 2 else "b") * 32,
            model_name="bot" if i < 8 else "other",
            status="ERROR" if i == 3 else "OK",
            session_id=f"s{i % 3}",
            user_id="u1" if i < 5 else "u2",
            latency_ms=float(i * 10),
        )
        for i in range(10)
    ]
    store.log_traces(records)
    return [r.trace_id for r in records]


def ids(store: SqlStore, **filters: object) -> list[str]:
    found, _ = store.search_traces(**filters)  # type: ignore[arg-type]
    return [t.trace_id for t in found]


def test_search_filters_combine(store: SqlStore, traffic: list[str]) -> None:
    newest_first = traffic[::-1]
    assert ids(store) == newest_first
    assert ids(store, model_id="m-" + "a" * 32) == [traffic[i] for i in (9, 7, 5, 3, 1)]
    assert ids(store, name="other") == [traffic[9], traffic[8]]
    assert ids(store, status="ERROR") == [traffic[3]]
    assert ids(store, status=TraceStatus.OK, user="u1") == [traffic[i] for i in (4, 2, 1, 0)]
    assert ids(store, session="s0") == [traffic[i] for i in (9, 6, 3, 0)]
    assert ids(store, since_ms=BASE_MS + 7000) == [traffic[9], traffic[8], traffic[7]]
    assert ids(store, until_ms=BASE_MS + 2000) == [traffic[1], traffic[0]]
    assert ids(store, min_latency_ms=75) == [traffic[9], traffic[8]]
    assert ids(store, name="bot", session="s1", min_latency_ms=40) == [traffic[7], traffic[4]]


def test_pagination_walks_every_trace_once(store: SqlStore, traffic: list[str]) -> None:
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        found, token = store.search_traces(limit=3, page_token=token)
        pages.append([t.trace_id for t in found])
        if token is None:
            break
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    assert [t for page in pages for t in page] == traffic[::-1]


def test_pagination_is_stable_when_start_times_tie(store: SqlStore) -> None:
    records = [trace(BASE_MS) for _ in range(5)]
    store.log_traces(records)
    first, token = store.search_traces(limit=2)
    rest, end = store.search_traces(limit=10, page_token=token)
    assert end is None
    assert sorted(t.trace_id for t in first + rest) == sorted(r.trace_id for r in records)


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"page_token": "not-a-token"}, "invalid page_token"),
        ({"limit": 0}, "limit must be between"),
        ({"status": "WEIRD"}, "invalid trace status"),
    ],
)
def test_bad_search_arguments_are_invalid(store: SqlStore, filters: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        store.search_traces(**filters)  # type: ignore[arg-type]


def test_trace_stats_aggregate_in_sql(store: SqlStore, traffic: list[str]) -> None:
    stats = store.trace_stats(model_id="m-" + "a" * 32)
    assert (stats.count, stats.errors, stats.max_latency_ms) == (5, 1, 90.0)
    assert stats.mean_latency_ms == pytest.approx(50.0)
    assert store.trace_stats(name="nobody").count == 0


def test_assessments_crud_and_search(store: SqlStore, traffic: list[str]) -> None:
    passing = store.log_assessment(Assessment(trace_id=traffic[1], name="relevance", value=True))
    judged = store.log_assessment(
        Assessment(
            trace_id=traffic[1],
            span_id="0" * 16,
            name="quality",
            value=0.75,
            rationale="mostly right",
            source_type=SourceType.LLM_JUDGE,
            source_id="gpt-judge",
            scorer_version="2",
            metadata={"tokens": 120, "cost_usd": 0.001},
        )
    )
    human = store.log_assessment(
        Assessment(trace_id=traffic[2], name="relevance", value="bad", source_type="HUMAN", source_id="ana")
    )
    failed = store.log_assessment(Assessment(trace_id=traffic[2], name="pii", error="TimeoutError: 5s"))

    assert store.get_assessment(judged.assessment_id) == judged
    assert store.get_assessment(passing.assessment_id).value is True
    assert store.get_assessment(failed.assessment_id).value is None
    assert [a.assessment_id for a in store.search_assessments(trace_id=traffic[1])] == [
        passing.assessment_id,
        judged.assessment_id,
    ]
    assert {a.assessment_id for a in store.search_assessments(name="relevance")} == {
        passing.assessment_id,
        human.assessment_id,
    }
    by_model = store.search_assessments(model_id="m-" + "a" * 32)
    assert {a.assessment_id for a in by_model} == {passing.assessment_id, judged.assessment_id}
    assert store.search_assessments(since_ms=human.creation_time + 10**9) == []

    updated = store.update_assessment(human.assessment_id, value="good", rationale="re-read it")
    assert (updated.value, updated.rationale, updated.source_id) == ("good", "re-read it", "ana")
    assert store.get_assessment(human.assessment_id) == updated
    with pytest.raises(AlreadyExists):
        store.log_assessment(passing)
    store.delete_assessment(failed.assessment_id)
    with pytest.raises(NotFound, match=r"assessment .* not found"):
        store.get_assessment(failed.assessment_id)
    with pytest.raises(NotFound):
        store.delete_assessment(failed.assessment_id)


def test_lineage_edges_are_idempotent_and_queryable_both_ways(store: SqlStore) -> None:
    model = "m-" + "c" * 32
    edges = [
        LineageEdge(src_kind="prompt_version", src_id="prompts:/greet/1", dst_kind="model", dst_id=model),
        LineageEdge(src_kind=LineageKind.MODEL, src_id=model, dst_kind=LineageKind.TRACE, dst_id="tr-1"),
        LineageEdge(src_kind="trace", src_id="tr-1", dst_kind="assessment", dst_id="a-1"),
    ]
    store.add_lineage(edges)
    store.add_lineage(edges[:2])
    store.add_lineage([])
    upstream = store.get_lineage("model", model, "upstream")
    downstream = store.get_lineage(LineageKind.MODEL, model, "downstream")
    assert [(e.src_id, e.dst_id) for e in upstream] == [("prompts:/greet/1", model)]
    assert [(e.src_id, e.dst_id) for e in downstream] == [(model, "tr-1")]
    assert len(store.get_lineage("trace", "tr-1")) == 2
    with pytest.raises(ValueError, match="is not a valid LineageKind"):
        store.get_lineage("nonsense", "x")
