"""A canary whose Redis state was lost (Redis restarted empty): every view says so from the store's history,
and the HTTP API closes it as the CLI does."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from registry.client import RegistryClient
from runtime.app import create_app
from runtime.cli.main import main
from tests.canary.conftest import REDIS_URL, canary_settings, delete_prefix
from tests.servers import serve_app


def test_a_canary_lost_from_redis_is_shown_from_the_store_and_closed_through_the_api(
    tmp_path: Path, prefix: str, registry: RegistryClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """Status and GET /api/canaries/bot said "no canary", the list was empty and the API's rollback a 404,
    while `canary history` listed it as running and `canary rollback <id>` closed it."""
    settings = canary_settings(tmp_path, prefix, admin_keys=("admin",), sse_ping_interval=0)
    options = ["--redis-url", REDIS_URL, "--store-url", settings.store_url, "--prefix", prefix]
    with serve_app(create_app(settings)) as url, httpx.Client(base_url=url) as http:
        capsys.readouterr()
        assert main(["canary", "start", "bot", "--challenger", "2", "--json", *options]) == 0
        cid = json.loads(capsys.readouterr().out)["canary_id"]
        delete_prefix(prefix)  # what a Redis restart without persistence leaves

        close = f"close it with `runtime canary rollback {cid}`"
        assert main(["canary", "status", "bot", *options]) == 0
        text = capsys.readouterr().out
        assert f"canary {cid}  bot  running  (live state lost from Redis)" in text
        assert "its live state was lost from Redis" in text and close in text
        assert main(["canary", "status", "bot", "--json", *options]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert http.get("/api/canaries/bot").json() == shown
        assert (shown["redis_state"], shown["canary"]["status"]) == ("lost", "running")
        assert [e["action"] for e in shown["audit"]] == ["start"]
        listed = http.get("/api/canaries", params={"model": "bot"}).json()["canaries"]
        assert [(c["canary_id"], c["status"], c["redis_state"]) for c in listed] == [(cid, "running", "lost")]

        admin = {"authorization": "Bearer admin"}
        closed = http.post(f"/api/canaries/{cid}/rollback", json={"reason": "redis lost"}, headers=admin)
        assert closed.status_code == 200 and closed.json()["canary"]["status"] == "rolled_back"
        record = registry.store.get_canary(cid)
        assert (record.status, record.reason) == ("rolled_back", "redis lost; its state was lost from Redis")
        again = http.post(f"/api/canaries/{cid}/rollback", json={}, headers=admin)
        assert again.status_code == 404
        assert main(["canary", "status", cid, *options]) == 0
        assert f"canary {cid} of bot rolled_back" in capsys.readouterr().out
        assert http.get("/api/canaries/c-nope").status_code == 404
