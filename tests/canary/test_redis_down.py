"""Redis down never fails a request: the champion serves alone within a bound, /ready says degraded, and the
statistics held meanwhile reach Redis when it answers again."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from registry.client import RegistryClient
from runtime.app import create_app
from runtime.cli.main import main
from runtime.config import Settings
from tests.canary.conftest import REDIS_URL, canary_settings
from tests.canary.proxy import redis_proxy
from tests.servers import free_port, serve_app, wait_until

STALE_AFTER = 1.0
BODY = {"input": [{"role": "user", "content": "hi"}]}


def settings_for(tmp_path: Path, redis_url: str, prefix: str) -> Settings:
    return canary_settings(
        tmp_path,
        prefix,
        redis_url,
        canary_poll_interval=0.1,
        canary_stale_after=STALE_AFTER,
        sse_ping_interval=0,
    )


def test_redis_going_silent_falls_back_to_the_champion_within_the_bound(
    tmp_path: Path, prefix: str, registry: RegistryClient
) -> None:
    with redis_proxy() as proxy:
        settings = settings_for(tmp_path, proxy.url, prefix)
        with serve_app(create_app(settings)) as url, httpx.Client(base_url=url, timeout=10) as http:
            options = ["--redis-url", REDIS_URL, "--store-url", settings.store_url, "--prefix", prefix]
            assert main(["canary", "start", "bot", "--challenger", "2", "--weight", "100", *options]) == 0
            assert wait_until(lambda: http.post("/invocations", json=BODY).headers.get("x-runtime-variant"))
            before = [http.post("/invocations", json=BODY) for _ in range(5)]
            assert {r.headers["x-runtime-variant"] for r in before} == {"challenger"}

            proxy.pause()
            paused_at = time.monotonic()
            replies: list[tuple[float, httpx.Response]] = []

            def champion_only() -> bool:
                started = time.monotonic()
                r = http.post("/invocations", json=BODY)
                replies.append((time.monotonic() - started, r))
                return "x-runtime-variant" not in r.headers

            assert wait_until(champion_only, timeout=10)
            assert time.monotonic() - paused_at < STALE_AFTER + 1.0  # the poll timeout and one poll
            assert all(r.status_code == 200 for _, r in replies)
            assert max(elapsed for elapsed, _ in replies) < 0.5  # no request waits on Redis
            after = [http.post("/invocations", json=BODY) for _ in range(5)]
            assert {
                (r.json()["output"][0]["content"][0]["text"], "x-runtime-variant" in r.headers) for r in after
            } == {("v1", False)}
            ready = http.get("/ready")
            assert ready.status_code == 200 and ready.json()["status"] == "degraded"
            assert "Redis unreachable" in ready.json()["degraded"]["canary"]

            proxy.resume()
            assert wait_until(lambda: http.get("/ready").json()["status"] == "ready", timeout=10)
            challenger = 5 + sum(r.headers.get("x-runtime-variant") == "challenger" for _, r in replies)

            def counted() -> bool:  # +1: the probe that saw the canary first
                shown = http.get("/api/canaries/bot").json()["variants"]["challenger"]["requests"]
                return bool(shown == challenger + 1)

            assert wait_until(counted, timeout=10)


def test_a_server_starts_and_serves_with_redis_unreachable(
    tmp_path: Path, prefix: str, registry: RegistryClient
) -> None:
    settings = settings_for(tmp_path, f"redis://127.0.0.1:{free_port()}/0", prefix)
    with serve_app(create_app(settings)) as url:
        r = httpx.post(url + "/invocations", json=BODY)
        assert r.status_code == 200 and "x-runtime-variant" not in r.headers
        ready = httpx.get(url + "/ready")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert httpx.get(url + "/api/canaries").status_code == 503
