"""Human feedback in a canary's scores: attributed by the trace it is about, never by what the caller says,
and counted once per request however often it is posted (security review: one user with the serving key
posted 60 feedbacks on one trace and rolled an --auto canary back)."""

from __future__ import annotations

from pathlib import Path

import httpx

from registry.client import RegistryClient
from runtime.app import create_app
from runtime.canary.model import CHALLENGER, CHAMPION
from runtime.cli.main import main
from tests.canary.conftest import REDIS_URL, canary_settings
from tests.servers import serve_app, wait_until


def test_feedback_counts_once_per_request_for_the_variant_its_trace_had(
    tmp_path: Path, prefix: str, registry: RegistryClient
) -> None:
    settings = canary_settings(tmp_path, prefix, canary_poll_interval=0.1, sse_ping_interval=0, tracing=True)
    options = ["--redis-url", REDIS_URL, "--store-url", settings.store_url, "--prefix", prefix]
    start = ["canary", "start", "bot", "--challenger", "2", "--weight", "100", "--sticky-by", "none"]
    with serve_app(create_app(settings)) as url, httpx.Client(base_url=url, timeout=10) as http:
        before = http.post("/invocations", json={"input": "before the canary"})
        assert before.status_code == 200
        assert main([*start, *options]) == 0

        def ask() -> httpx.Response:
            return http.post("/invocations", json={"input": "hi"})

        assert wait_until(lambda: ask().headers.get("x-runtime-variant") == CHALLENGER)
        challenger_trace = ask().headers["x-runtime-trace-id"]
        lie = {"model_name": "bot", "variant": CHAMPION, "model_version": "1"}
        for trace_id, value in [(challenger_trace, False)] * 20 + [
            (before.headers["x-runtime-trace-id"], True)
        ] * 5:
            feedback = {"name": "thumbs", "value": value, "metadata": lie}
            r = http.post(f"/api/traces/{trace_id}/feedback", json=feedback)
            assert r.status_code == 201, r.text
            stored = r.json()["assessment"]["metadata"]
            assert stored.get("variant") != CHAMPION  # the trace's variant, or none: never the caller's

        def thumbs() -> dict[str, int]:
            variants = http.get("/api/canaries/bot").json()["variants"]
            return {v: s["scores"].get("thumbs", {"n": 0})["n"] for v, s in variants.items()}

        assert wait_until(lambda: thumbs()[CHALLENGER] >= 1)
        http.post("/api/traces/" + challenger_trace + "/feedback", json={"name": "thumbs", "value": False})
        for _ in range(3):  # give the recorder rounds to (wrongly) count more
            ask()
        assert wait_until(lambda: False, timeout=1.0) is False
        assert thumbs() == {CHAMPION: 0, CHALLENGER: 1}
