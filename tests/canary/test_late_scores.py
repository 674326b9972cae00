"""An ``--auto`` canary never promotes on scores that have not arrived: a slow judge holds the decision back
until both variants have enough scores, then the scores decide (the exploratory tester's reproduction)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.client import RegistryClient
from runtime.app import create_app
from runtime.cli.main import main
from tests.canary.conftest import REDIS_URL, canary_settings, register
from tests.servers import serve_app, wait_until

# A judge that answers at once for the champion ("v1") and, for the challenger, only once the test creates
# the release file: the challenger's scores are in flight for as long as the test wants.
SCORERS = """
import asyncio
from pathlib import Path

from runtime.evaluation import scorer

RELEASE = Path({release!r})


@scorer
async def lowercase(outputs):
    while outputs != "v1" and not RELEASE.exists():
        await asyncio.sleep(0.05)
    return outputs == outputs.lower()
"""
MIN_REQUESTS = 10


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryClient]:
    with RegistryClient(f"sqlite:///{tmp_path / 'runtime.db'}", tmp_path / "artifacts") as client:
        register(client, tmp_path, "v1")
        register(client, tmp_path, "v2")  # lower-case like the champion: scores as well
        register(client, tmp_path, "V3")  # upper-case: fails the scorer
        client.set_alias("bot", "champion", 1)
        yield client


@pytest.mark.parametrize(("challenger", "outcome"), [(2, "promoted"), (3, "rolled_back")])
def test_an_auto_canary_waits_for_late_scores_then_decides_on_them(
    tmp_path: Path, prefix: str, registry: RegistryClient, challenger: int, outcome: str
) -> None:
    release = tmp_path / "release"
    (tmp_path / "scorers.py").write_text(SCORERS.format(release=str(release)))
    settings = canary_settings(
        tmp_path,
        prefix,
        canary_poll_interval=0.1,
        scorers=str(tmp_path / "scorers.py"),
        scoring_workers=500,  # every held challenger job waits in a worker; the champion's still flow
        sse_ping_interval=0,
    )
    options = ["--redis-url", REDIS_URL, "--store-url", settings.store_url, "--prefix", prefix]
    start = ["canary", "start", "bot", "--challenger", str(challenger), "--weight", "50"]
    start += ["--sticky-by", "none", "--min-requests", str(MIN_REQUESTS), "--auto"]
    with (
        serve_app(create_app(settings)) as url,
        httpx.Client(base_url=url) as http,
    ):
        assert main([*start, *options]) == 0

        def shown() -> dict[str, Any]:
            report: dict[str, Any] = http.get("/api/canaries/bot").json()
            return report

        def champion_scored() -> bool:
            for _ in range(8):
                assert http.post("/v1/responses", json={"input": "hi"}).status_code == 200
            variants = shown()["variants"]
            scores = variants["champion"]["scores"].get("lowercase", {"n": 0})
            requests = min(v["requests"] for v in variants.values())
            return bool(requests >= MIN_REQUESTS and scores["n"] >= MIN_REQUESTS)

        # Enough requests in both variants and enough champion scores: the old policy promoted here on
        # the error rate, ignoring a score the challenger had not reported yet.
        assert wait_until(champion_scored, timeout=30)
        held_until = time.monotonic() + 3.0  # three policy rounds (one a second)
        while time.monotonic() < held_until:
            report = shown()
            assert report["canary"]["status"] == "running", report["verdict"]
            time.sleep(0.1)
        assert "lowercase 0 of 10 in the challenger" in report["verdict"]["reason"]

        release.write_text("")  # the judge answers for the challenger now
        assert wait_until(lambda: shown()["canary"]["status"] in ("promoted", "rolled_back"), timeout=30)
        report = shown()
        assert report["canary"]["status"] == outcome
        row = next(c for c in report["comparisons"] if c["metric"] == "lowercase")
        assert row["primary"] and row["guarded"] and row["kind"] == "rate"
        decision = next(e for e in report["audit"] if e["action"] in ("promote", "rollback"))
        assert "lowercase" in decision["reason"]
        if outcome == "promoted":
            assert decision["reason"].startswith("auto: not worse on any guarded metric")
            assert registry.store.get_model_version_by_alias("bot", "champion").version == 2
        else:
            assert decision["reason"].startswith("auto: challenger is worse on lowercase 0.0% vs 100.0%")
            assert registry.store.get_model_version_by_alias("bot", "champion").version == 1
