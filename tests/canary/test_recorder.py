"""The statistics tap: exact counters, nothing from outside a canary, held while Redis is down, scores."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from registry.entities import Assessment, new_trace_id
from runtime.canary.model import AuditEntry, CanaryDefinition, new_canary_id
from runtime.canary.recorder import StatsRecorder
from runtime.canary.report import VARIANTS
from runtime.canary.router import ROUTE_KEY, Assignment
from runtime.canary.scores import assessment_hook
from runtime.canary.state import CanaryStore
from runtime.protocol.call import Call, CallStatus, ModelInfo
from tests.canary.conftest import REDIS_URL
from tests.canary.proxy import redis_proxy


def call(
    cid: str, variant: str, *, status: str = CallStatus.OK, code: str | None = None, **extra: object
) -> Call:
    c = Call(request_id="r", endpoint="/invocations", stream=True, model=ModelInfo("bot"), variant=variant)
    c.extra[ROUTE_KEY] = Assignment(cid, variant, agent=None, **extra)  # type: ignore[arg-type]
    c.first_event = c.started + 0.01
    c.ended = c.started + 0.05
    c.status, c.error_code = status, code
    c.input_tokens, c.output_tokens = 2, 3
    return c


def run(url: str, prefix: str, scenario: Callable[[CanaryStore], Awaitable[None]]) -> None:
    async def main() -> None:
        store = CanaryStore.from_url(url, prefix, timeout=0.3)
        try:
            await scenario(store)
        finally:
            await store.close()

    asyncio.run(main())


def test_finished_calls_become_exact_counters(prefix: str) -> None:
    cid = new_canary_id()

    async def scenario(store: CanaryStore) -> None:
        recorder = StatsRecorder(store, replica_id="t", limit=1000)
        for _ in range(7):
            recorder.end(call(cid, "champion"), None)
        for _ in range(3):
            recorder.end(call(cid, "challenger", status=CallStatus.ERROR, code="agent_error"), None)
        recorder.end(call(cid, "challenger", forced=True), None)  # someone debugging: not a sample
        outside = Call(request_id="r", endpoint="/invocations", stream=False, model=ModelInfo("bot"))
        recorder.end(outside, None)
        assert await recorder.flush()
        counters = await store.counters(cid, VARIANTS)
        champion, challenger = counters["champion"], counters["challenger"]
        assert (champion["requests"], champion["ok"], champion["ttft_count"]) == (7, 7, 7)
        assert (champion["input_tokens"], champion["output_tokens"]) == (14, 21)
        assert champion["latency_sum"] == pytest.approx(0.35)
        assert (challenger["requests"], challenger["errors"], challenger["error:agent_error"]) == (3, 3, 3)
        assert recorder.held == 0

    run(REDIS_URL, prefix, scenario)


def test_statistics_wait_in_memory_while_redis_is_silent_and_count_what_overflows(prefix: str) -> None:
    """The first write's reply is lost while the proxy is paused; the retry must not count it twice."""
    cid = new_canary_id()
    with redis_proxy() as proxy:

        async def scenario(store: CanaryStore) -> None:
            recorder = StatsRecorder(store, replica_id="t", limit=10)
            await store.ping()
            proxy.pause()
            for _ in range(4):
                recorder.end(call(cid, "champion"), None)
            started = time.monotonic()
            assert not await recorder.flush()
            assert time.monotonic() - started < 1.5  # bounded by the store's timeout
            assert recorder.last_error is not None
            for _ in range(9):
                recorder.end(call(cid, "challenger"), None)
            assert (recorder.held, recorder.dropped) == (10, 3)
            assert not await recorder.flush()
            proxy.resume()
            for _ in range(50):  # bounded: the first flush after resume may meet a connection still closing
                if await recorder.flush():
                    break
            assert recorder.last_error is None and recorder.held == 0
            counters = await store.counters(cid, VARIANTS)
            assert counters["champion"]["requests"] == 4
            assert counters["challenger"]["requests"] == 6
            assert counters["challenger"]["dropped"] == 3

        run(proxy.url, prefix, scenario)


def test_scores_reach_the_canary_of_their_model_and_version(prefix: str) -> None:
    d = CanaryDefinition(canary_id=new_canary_id(), model="bot", champion_version=1, challenger_version=2)

    def assessment(value: object, variant: str, version: str, name: str = "helpful") -> Assessment:
        meta = {"model_name": "bot", "variant": variant, "model_version": version}
        return Assessment(trace_id=new_trace_id(), name=name, value=value, metadata=meta)  # type: ignore[arg-type]

    async def scenario(store: CanaryStore) -> None:
        await store.create(d, AuditEntry(actor="t", action="start"))
        recorder = StatsRecorder(store, replica_id="t", limit=1000)
        hook = assessment_hook(recorder)
        hook(assessment(True, "champion", "1"))
        hook(assessment(False, "champion", "1"))
        hook(assessment(0.75, "challenger", "2", name="relevance"))
        hook(assessment(0.25, "challenger", "2", name="relevance"))
        hook(assessment(True, "challenger", "3"))  # a version this canary does not compare
        hook(assessment("great", "challenger", "2"))  # text is not a score
        assert await recorder.flush()
        counters = await store.counters(d.canary_id, VARIANTS)
        champion, challenger = counters["champion"], counters["challenger"]
        assert (champion["score:helpful:n"], champion["score:helpful:passed"]) == (2, 1)
        assert challenger["score:relevance:sum"] == 1.0 and challenger["score:relevance:sq"] == 0.625
        assert "score:helpful:n" not in challenger

    run(REDIS_URL, prefix, scenario)
