"""What operators do: start with checks, decide once (a concurrent decision is a conflict), read history."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from registry.client import RegistryClient
from runtime.app import create_app
from runtime.cli.main import main
from tests.canary.conftest import canary_settings, cli_options, delete_prefix, registry_with
from tests.servers import ROOT, serve_app


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryClient]:
    with registry_with(tmp_path, ("v1", "v2", "v3")) as client:
        yield client


@pytest.fixture
def options(tmp_path: Path, prefix: str) -> list[str]:
    return cli_options(tmp_path, prefix)


def start(capsys: pytest.CaptureFixture[str], options: list[str], *args: str) -> str:
    capsys.readouterr()
    assert main(["canary", "start", "bot", "--challenger", "2", *args, "--json", *options]) == 0
    return str(json.loads(capsys.readouterr().out)["canary_id"])


def test_start_checks_its_arguments_and_the_registry(
    registry: RegistryClient, options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    cases: list[tuple[list[str], int, str]] = [
        (["--challenger", "9"], 1, "version 9 of model 'bot' not found"),
        (["--challenger", "1"], 2, "version 1 is already the champion"),
        (["--challenger", "2", "--champion", "1"], 2, "--champion must name an alias"),
        (["--challenger", "2", "--weight", "0"], 2, "invalid weight"),
        (["--challenger", "2", "--sticky-by", "cookie"], 2, "sticky_by must be"),
        (["--challenger", "2", "--max-duration", "soon"], 2, "invalid duration 'soon'"),
    ]
    for args, code, message in cases:
        capsys.readouterr()
        assert main(["canary", "start", "bot", *args, *options]) == code, args
        assert message in capsys.readouterr().err, args
    cid = start(capsys, options)
    assert main(["canary", "start", "bot", "--challenger", "3", *options]) == 1
    assert f"canary {cid} is already running for bot" in capsys.readouterr().err
    assert main(["canary", "status", "bot", "--redis-url", ""]) == 2  # no Redis configured
    assert "canaries need Redis" in capsys.readouterr().err


def test_two_operators_deciding_at_once_get_one_winner_and_one_conflict(
    registry: RegistryClient, options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    cid = start(capsys, options)
    commands = [
        [sys.executable, "-m", "runtime.cli.main", "canary", action, cid, "--actor", action, *options]
        for action in ("promote", "rollback")
    ]
    procs = [
        subprocess.Popen(c, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in commands
    ]
    results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, _, err in results if code == 1)
    assert f"error: canary {cid} is already" in loser and "nothing was changed" in loser
    capsys.readouterr()
    assert main(["canary", "status", cid, "--json", *options]) == 0
    shown = json.loads(capsys.readouterr().out)
    decisions = [e["action"] for e in shown["audit"] if e["action"] in ("promote", "rollback")]
    assert len(decisions) == 1
    expected_alias = 2 if decisions == ["promote"] else 1
    assert registry.store.get_model_version_by_alias("bot", "champion").version == expected_alias


def test_history_lists_canaries_with_their_outcomes_from_the_store(
    registry: RegistryClient, options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    first = start(capsys, options)
    assert main(["canary", "rollback", "bot", "--reason", "not today", "--actor", "ann", *options]) == 0
    second = start(capsys, options, "--mode", "shadow")
    assert main(["canary", "promote", second, "--actor", "bob", *options]) == 0
    capsys.readouterr()
    assert main(["canary", "history", "bot", "--json", *options]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [(h["canary_id"], h["status"], h["decided_by"]) for h in history] == [
        (second, "promoted", "bob"),
        (first, "rolled_back", "ann"),
    ]
    assert history[1]["reason"] == "not today"
    assert main(["canary", "history", *options]) == 0
    text = capsys.readouterr().out
    assert first in text and "rolled_back" in text and "shadow 10%" in text
    assert [e.action for e in registry.store.canary_events(first)] == ["start", "rollback"]
    edges = {(e.dst_id) for e in registry.get_lineage("canary", second, "downstream")}
    assert edges == {"models:/bot/1", "models:/bot/2"}


def test_a_canary_lost_with_redis_can_still_be_closed_in_the_history(
    registry: RegistryClient, options: list[str], prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Redis restarted without its data mid-canary: replicas stop routing to it, but the store's history
    said "running" forever and a rollback answered "no canary"."""
    cid = start(capsys, options)
    delete_prefix(prefix)  # what a Redis restart without persistence leaves
    capsys.readouterr()
    assert main(["canary", "rollback", cid, "--actor", "ops", "--reason", "redis restarted", *options]) == 0
    assert f"rolled back canary {cid}" in capsys.readouterr().out
    record = registry.store.get_canary(cid)
    assert (record.status, record.decided_by) == ("rolled_back", "ops")
    assert record.reason == "redis restarted; its state was lost from Redis"
    assert record.ended_time is not None
    assert [e.action for e in registry.store.canary_events(cid)] == ["start", "rollback"]
    assert registry.store.get_model_version_by_alias("bot", "champion").version == 1  # never moved
    assert main(["canary", "rollback", cid, *options]) == 1  # closed: nothing left to roll back
    assert f"canary {cid!r} not found" in capsys.readouterr().err


def test_the_http_api_shows_canaries_and_answers_409_to_the_second_decision(
    tmp_path: Path,
    prefix: str,
    registry: RegistryClient,
    options: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = canary_settings(tmp_path, prefix, admin_keys=("admin",))
    with serve_app(create_app(settings)) as url:
        cid = start(capsys, options)
        listed = httpx.get(url + "/api/canaries").json()["canaries"]
        for bad in ("abc", "0", "-5"):  # a 400 naming the parameter, never a 500 or a silent clamp
            refused = httpx.get(url + "/api/canaries", params={"limit": bad})
            assert (refused.status_code, refused.json()["error"]["param"]) == (400, "limit")
        assert [(c["canary_id"], c["status"]) for c in listed] == [(cid, "running")]
        shown = httpx.get(f"{url}/api/canaries/{cid}").json()
        assert set(shown) == {"canary", "variants", "comparisons", "verdict", "audit"}
        assert httpx.post(f"{url}/api/canaries/{cid}/rollback", json={}).status_code == 403
        admin = {"authorization": "Bearer admin"}

        def decide(action: str) -> int:
            body = {"reason": f"{action} via API"}
            return httpx.post(f"{url}/api/canaries/{cid}/{action}", json=body, headers=admin).status_code

        with ThreadPoolExecutor(2) as pool:
            codes = sorted(pool.map(decide, ["promote", "rollback"]))
        assert codes == [200, 409]
        assert httpx.get(f"{url}/api/canaries/c-nope").status_code == 404
