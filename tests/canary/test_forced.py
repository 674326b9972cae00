"""Requests forced to a variant with the debug header (``x-runtime-variant``) are someone debugging: neither
they nor their online-evaluation scores are counted, wherever the scores are computed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from registry.client import RegistryClient
from registry.entities import Assessment, new_trace_id
from runtime.app import create_app
from runtime.canary.model import CHALLENGER, CHAMPION, AuditEntry, CanaryDefinition, new_canary_id
from runtime.canary.recorder import StatsRecorder
from runtime.canary.router import ROUTE_KEY, Assignment
from runtime.canary.scores import score_feed
from runtime.canary.state import CanaryStore
from runtime.cli.main import main
from runtime.protocol.call import Call, ModelInfo
from tests.canary.conftest import REDIS_URL, canary_settings
from tests.servers import serve_app, wait_until

SCORERS = """
from runtime.evaluation import scorer


@scorer
def answered(outputs):
    return bool(outputs)
"""


def test_scores_of_forced_requests_are_not_counted(
    tmp_path: Path, prefix: str, registry: RegistryClient
) -> None:
    """The requests were left out, their scores were not: the champion showed 0 requests and 5 scores."""
    (tmp_path / "scorers.py").write_text(SCORERS)
    settings = canary_settings(
        tmp_path,
        prefix,
        canary_poll_interval=0.1,
        canary_force_header=True,
        scorers=str(tmp_path / "scorers.py"),
        sse_ping_interval=0,
    )
    options = ["--redis-url", REDIS_URL, "--store-url", settings.store_url, "--prefix", prefix]
    start = ["canary", "start", "bot", "--challenger", "2", "--weight", "100", "--sticky-by", "none"]
    with serve_app(create_app(settings)) as url, httpx.Client(base_url=url) as http:
        assert main([*start, *options]) == 0

        def ask(forced: str | None = None) -> httpx.Response:
            headers = {"x-runtime-variant": forced} if forced else {}
            return http.post("/invocations", json={"input": "hi"}, headers=headers)

        assert wait_until(lambda: ask().headers.get("x-runtime-variant") == CHALLENGER)

        def counters() -> dict[str, dict[str, int]]:
            variants = http.get("/api/canaries/bot").json()["variants"]
            return {
                v: {"requests": s["requests"], "scores": s["scores"].get("answered", {"n": 0})["n"]}
                for v, s in variants.items()
            }

        assert wait_until(lambda: counters()[CHALLENGER]["scores"] >= 1)  # the probes are scored
        before = counters()
        forced = [ask(CHAMPION) for _ in range(5)]
        assert {(r.status_code, r.headers["x-runtime-variant"]) for r in forced} == {(200, CHAMPION)}
        traces = [r.headers["x-runtime-trace-id"] for r in forced]

        def scored(trace_id: str) -> bool:
            found = http.get("/api/assessments", params={"trace_id": trace_id}).json()["assessments"]
            return len(found) == 1

        assert wait_until(lambda: all(scored(t) for t in traces), timeout=15)
        # One request more once every forced one is scored: when its score is counted, theirs were seen.
        assert ask().headers["x-runtime-variant"] == CHALLENGER
        expected = before[CHALLENGER]["scores"] + 1
        assert wait_until(lambda: counters()[CHALLENGER]["scores"] >= expected, timeout=15)
        assert counters()[CHAMPION] == {"requests": 0, "scores": 0}


def test_a_worker_leaves_out_the_scores_of_requests_forced_on_a_server(prefix: str) -> None:
    """The server knows a request was forced; the worker that scores it knows only its trace id."""
    d = CanaryDefinition(canary_id=new_canary_id(), model="bot", champion_version=1, challenger_version=2)

    def call(forced: bool) -> Call:
        c = Call(request_id="r", endpoint="/invocations", stream=False, model=ModelInfo("bot", version="2"))
        c.trace_id, c.variant = new_trace_id().removeprefix("tr-"), CHALLENGER
        c.extra[ROUTE_KEY] = Assignment(d.canary_id, CHALLENGER, object(), forced=forced)
        return c

    async def scenario() -> None:
        store = CanaryStore.from_url(REDIS_URL, prefix, timeout=2.0)
        await store.create(d, AuditEntry(actor="t", action="start"))
        server = StatsRecorder(store, replica_id="server", limit=100)
        calls = [call(forced=True), call(forced=False), call(forced=True)]
        for c in calls:
            server.begin(c)
        assert await server.flush()
        async with score_feed(REDIS_URL, prefix, "worker:test") as hook:
            for c in calls:
                meta = {"model_name": "bot", "variant": CHALLENGER, "model_version": 2}
                hook(Assessment(trace_id=f"tr-{c.trace_id}", name="ok", value=True, metadata=meta))
        counters = await store.counters(d.canary_id, (CHALLENGER,))
        assert counters[CHALLENGER]["score:ok:n"] == 1
        await store.close()

    asyncio.run(scenario())
