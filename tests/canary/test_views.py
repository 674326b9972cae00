"""Every view computes the verdict the deciding replicas compute, from the same inputs in Redis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.client import RegistryClient
from runtime.app import create_app
from runtime.cli.main import main
from tests.canary.conftest import REDIS_URL, canary_settings
from tests.servers import serve_app, wait_until

# ``judged`` stands for an LLM judge that errors on every call: no score of it ever arrives.
SCORERS = """
from runtime.evaluation import scorer


@scorer
def answered(outputs):
    return bool(outputs)


@scorer
def judged(outputs):
    raise RuntimeError("the judge answered 500")
"""
MIN_REQUESTS = 5


def test_status_and_the_api_say_what_an_auto_promotion_waits_for(
    tmp_path: Path, prefix: str, registry: RegistryClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """A judge erroring on every call: the replicas waited for its scores, status and the API said
    "not_worse -> promote" (they computed the verdict without the scorers the replicas wait for)."""
    (tmp_path / "scorers.py").write_text(SCORERS)
    settings = canary_settings(
        tmp_path,
        prefix,
        canary_poll_interval=0.1,
        scorers=str(tmp_path / "scorers.py"),
        scoring_workers=100,  # each job's failing scorer is retried with backoff for a second and a half
        sse_ping_interval=0,
    )
    options = ["--redis-url", REDIS_URL, "--store-url", settings.store_url, "--prefix", prefix]
    start = ["canary", "start", "bot", "--challenger", "2", "--weight", "50", "--sticky-by", "none"]
    with serve_app(create_app(settings)) as url, httpx.Client(base_url=url) as http:
        assert main([*start, "--auto", "--min-requests", str(MIN_REQUESTS), *options]) == 0

        def scored() -> bool:
            for _ in range(4):
                assert http.post("/v1/responses", json={"input": "hi"}).status_code == 200
            variants = http.get("/api/canaries/bot").json()["variants"].values()
            return all(v["scores"].get("answered", {"n": 0})["n"] >= MIN_REQUESTS for v in variants)

        assert wait_until(scored, timeout=30)
        waiting = f"waiting for scores: judged 0 of {MIN_REQUESTS} in the champion"
        shown: dict[str, Any] = http.get("/api/canaries/bot").json()
        assert shown["canary"]["status"] == "running"
        assert shown["verdict"]["decision"] == "continue" and waiting in shown["verdict"]["reason"]
        capsys.readouterr()
        assert main(["canary", "status", "bot", "--json", *options]) == 0
        assert json.loads(capsys.readouterr().out)["verdict"] == shown["verdict"]
        assert main(["canary", "status", "bot", *options]) == 0
        assert f"verdict: undecided -> continue: {waiting}" in capsys.readouterr().out
