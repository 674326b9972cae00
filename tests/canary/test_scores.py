"""Online-evaluation scores reach the canary through the evaluation engine's ``on_assessment`` hook, and a
challenger that scores better is promoted on them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from registry.client import RegistryClient
from registry.entities import Assessment, new_trace_id
from runtime.app import create_app
from runtime.canary.counters import ScoreObservation
from runtime.canary.model import AuditEntry, CanaryDefinition, new_canary_id
from runtime.canary.recorder import StatsRecorder
from runtime.canary.scores import score_feed
from runtime.canary.state import CanaryStore
from runtime.cli.main import main
from tests.canary.conftest import REDIS_URL, canary_settings
from tests.servers import serve_app, wait_until

SCORERS = """
from runtime.evaluation import scorer


@scorer
def says_v2(outputs):
    return outputs == "v2"
"""


def test_a_challenger_that_scores_better_is_promoted_on_its_scores(
    tmp_path: Path, prefix: str, registry: RegistryClient
) -> None:
    (tmp_path / "scorers.py").write_text(SCORERS)
    settings = canary_settings(
        tmp_path, prefix, canary_poll_interval=0.1, scorers=str(tmp_path / "scorers.py"), sse_ping_interval=0
    )
    options = ["--redis-url", REDIS_URL, "--store-url", settings.store_url, "--prefix", prefix]
    start = ["canary", "start", "bot", "--challenger", "2", "--weight", "50", "--sticky-by", "none"]
    with (
        serve_app(create_app(settings)) as url,
        httpx.Client(base_url=url) as http,
    ):
        assert main([*start, "--auto", "--min-requests", "10", *options]) == 0

        def promoted() -> bool:
            for _ in range(8):
                assert http.post("/v1/responses", json={"input": "hi"}).status_code == 200
            shown = http.get("/api/canaries/bot").json()
            return bool(shown["canary"]["status"] == "promoted")

        assert wait_until(promoted, timeout=30)
        shown = http.get("/api/canaries/bot").json()
        row = next(c for c in shown["comparisons"] if c["metric"] == "says_v2")
        assert row["primary"] and row["kind"] == "rate" and row["outcome"] == "better"
        assert (row["champion"], row["challenger"]) == (0.0, 1.0)
        decision = next(e for e in shown["audit"] if e["action"] == "promote")
        assert decision["reason"].startswith("auto: better on the primary metric")
        assert "says_v2" in decision["reason"]
        assert registry.store.get_model_version_by_alias("bot", "champion").version == 2


def test_scores_of_traces_outside_any_canary_are_not_counted(prefix: str) -> None:
    async def scenario() -> None:
        store = CanaryStore.from_url(REDIS_URL, prefix, timeout=2.0)
        recorder = StatsRecorder(store, replica_id="t", limit=10)
        recorder.score(ScoreObservation(model="bot", variant="champion", name="x", value=1.0, passed=True))
        assert await recorder.flush()
        assert recorder.held == 0
        assert await store.redis.keys(f"{prefix}:stats:*") == []
        await store.close()

    asyncio.run(scenario())


def test_a_worker_feeds_scores_to_the_running_canary(prefix: str) -> None:
    """What ``runtime worker`` needs: a hook that attributes scores to the canary running on their model."""
    d = CanaryDefinition(canary_id=new_canary_id(), model="bot", champion_version=1, challenger_version=2)

    async def scenario() -> None:
        store = CanaryStore.from_url(REDIS_URL, prefix, timeout=2.0)
        await store.create(d, AuditEntry(actor="t", action="start"))
        async with score_feed(REDIS_URL, prefix, "worker:test") as hook:
            for value in (True, True, False):
                meta = {"model_name": "bot", "variant": "challenger", "model_version": 2}
                hook(Assessment(trace_id=new_trace_id(), name="ok", value=value, metadata=meta))
        counters = await store.counters(d.canary_id, ("challenger",))
        assert (counters["challenger"]["score:ok:judged"], counters["challenger"]["score:ok:passed"]) == (
            3,
            2,
        )
        await store.close()

    asyncio.run(scenario())
