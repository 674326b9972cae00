"""Someone moves the champion alias by hand during a canary (a hotfix): promotion would silently undo that
move, so it is refused, by an operator or a replica, and every view says the alias moved."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.client import RegistryClient
from runtime.app import create_app
from runtime.canary.assignment import assign
from runtime.canary.control import CanaryControl
from runtime.canary.model import CHALLENGER, CHAMPION, CanaryDefinition, new_canary_id
from runtime.canary.state import CanaryStore
from runtime.cli.main import main
from runtime.errors import Conflict
from tests.canary.conftest import REDIS_URL, canary_settings, cli_options, registry_with
from tests.canary.test_operators import start
from tests.servers import serve_app, wait_until


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryClient]:
    with registry_with(tmp_path, ("v1", "v2", "v3")) as client:
        yield client


def test_promoting_after_the_champion_alias_moved_by_hand_is_refused_and_audited(
    tmp_path: Path, prefix: str, registry: RegistryClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """``canary promote`` moved @champion to the challenger, silently reverting the hotfix's move."""
    opts = cli_options(tmp_path, prefix)
    settings = canary_settings(tmp_path, prefix, admin_keys=("admin",), sse_ping_interval=0)
    with serve_app(create_app(settings)) as url:
        cid = start(capsys, opts)
        registry.set_alias("bot", "champion", 3)  # the hotfix
        moved = f"@champion was moved from v1 to v3 during canary {cid}"
        for _ in range(2):
            assert main(["canary", "promote", "bot", "--actor", "ops", *opts]) == 1
            err = capsys.readouterr().err
            assert moved in err and "roll the canary back or restart it" in err and err.count("\n") == 1
        refused = httpx.post(
            f"{url}/api/canaries/{cid}/promote", json={}, headers={"authorization": "Bearer admin"}
        )
        assert refused.status_code == 409 and moved in refused.json()["error"]["message"]
        assert registry.store.get_model_version_by_alias("bot", "champion").version == 3

        assert main(["canary", "status", "bot", "--json", *opts]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["canary"]["status"] == "running" and shown["canary"]["decided_by"] is None
        assert shown["champion_alias"] | {"message": ""} == {
            "alias": "champion",
            "canary_version": 1,
            "version": 3,
            "moved": True,
            "message": "",
        }
        refusals = [(e["actor"], e["numbers"]) for e in shown["audit"] if e["action"] == "promote_refused"]
        numbers = {"champion_version": 1, "alias_version": 3}
        assert refusals[0] == ("ops", numbers) and len(refusals) == 2  # once per actor: ops, the API's
        events = [e.action for e in registry.store.canary_events(cid)]
        assert events == ["start", "promote_refused", "promote_refused"]
        assert main(["canary", "status", "bot", *opts]) == 0
        assert f"champion alias moved: {moved}" in capsys.readouterr().out

        assert main(["canary", "rollback", "bot", *opts]) == 0  # what is left to do
        assert registry.store.get_model_version_by_alias("bot", "champion").version == 3


def test_a_replica_does_not_auto_promote_over_a_hand_moved_champion_alias(
    tmp_path: Path, prefix: str, registry: RegistryClient, capsys: pytest.CaptureFixture[str]
) -> None:
    # The server has not followed the move yet (it checks the alias hourly here): its champion is still
    # v1, its statistics say promote.
    settings = canary_settings(
        tmp_path, prefix, canary_poll_interval=0.1, alias_poll_interval=3600, sse_ping_interval=0
    )
    opts = cli_options(tmp_path, prefix)
    with serve_app(create_app(settings)) as url, httpx.Client(base_url=url) as http:
        cid = start(capsys, opts, "--auto", "--min-requests", "3", "--weight", "50", "--sticky-by", "none")
        registry.set_alias("bot", "champion", 3)

        def audit() -> list[dict[str, Any]]:
            for _ in range(4):
                assert http.post("/invocations", json={"input": "hi"}).status_code == 200
            return list(http.get(f"/api/canaries/{cid}").json()["audit"])

        assert wait_until(lambda: any(e["action"] == "promote_refused" for e in audit()), timeout=30)
        entry = next(e for e in audit() if e["action"] == "promote_refused")
        assert (
            entry["actor"].startswith("replica:") and "@champion was moved from v1 to v3" in entry["reason"]
        )
        assert http.get(f"/api/canaries/{cid}").json()["canary"]["status"] == "running"
        assert registry.store.get_model_version_by_alias("bot", "champion").version == 3


def test_requests_the_hand_moved_champion_answers_are_not_counted_as_the_canarys_champion(
    tmp_path: Path, prefix: str, registry: RegistryClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """The champion column mixed v1's and v3's requests."""
    settings = canary_settings(
        tmp_path, prefix, canary_poll_interval=0.1, alias_poll_interval=0.1, sse_ping_interval=0
    )
    with serve_app(create_app(settings)) as url, httpx.Client(base_url=url) as http:
        cid = start(capsys, cli_options(tmp_path, prefix), "--weight", "50")
        users = {assign(cid, f"u{i}", 50): f"u{i}" for i in range(50)}

        def ask(variant: str) -> tuple[str, str | None]:
            body = {"input": "hi", "user": users[variant]}
            r = http.post("/v1/responses", json=body)
            return r.json()["output"][0]["content"][0]["text"], r.headers.get("x-runtime-variant")

        def requests() -> dict[str, int]:
            variants = http.get(f"/api/canaries/{cid}").json()["variants"]
            return {v: s["requests"] for v, s in variants.items()}

        def counted_after_one_more(n: int) -> int:
            """The champion's count once a challenger request sent now is counted (it was queued last)."""
            assert ask(CHALLENGER) == ("v2", CHALLENGER)
            assert wait_until(lambda: requests()[CHALLENGER] == n)
            return requests()[CHAMPION]

        assert wait_until(lambda: ask(CHAMPION) == ("v1", CHAMPION))
        assert counted_after_one_more(1) >= 1
        registry.set_alias("bot", "champion", 3)
        assert wait_until(lambda: ask(CHAMPION) == ("v3", CHAMPION))
        counted = counted_after_one_more(2)
        for _ in range(3):
            assert ask(CHAMPION) == ("v3", CHAMPION)
        assert counted_after_one_more(3) == counted


def test_a_replica_that_loses_the_race_to_promote_records_no_refusal(
    prefix: str, registry: RegistryClient
) -> None:
    """Two replicas decide to promote at once: B reads the canary running, then A claims it, moves the
    alias and ends it, then B reads the alias A moved. B must not take that for a hand move (it was
    audited as ``promote_refused`` once in CI): it loses to A's decision, and the audit shows A's alone."""

    async def race() -> tuple[str, list[str], int | None]:
        store = CanaryStore.from_url(REDIS_URL, prefix, timeout=5.0)
        a, b = CanaryControl(store, registry), CanaryControl(store, registry)
        try:
            state = await a.start(
                CanaryDefinition(canary_id=new_canary_id(), model="bot", challenger_version=2)
            )
            cid = state.canary_id
            read_alias = b.champion_now

            async def a_promotes_first(d: CanaryDefinition) -> int | None:
                await a.promote(cid, "replica-a")
                return await read_alias(d)

            b.champion_now = a_promotes_first  # type: ignore[method-assign] # the interleaving under test
            with pytest.raises(Conflict):
                await b.promote(cid, "replica-b")
            audit = [f"{e.action} {e.actor}" for e in await store.audit(cid)]
            return cid, audit, await read_alias(state.definition)
        finally:
            await store.close()

    cid, audit, alias = asyncio.run(race())
    assert alias == 2
    assert audit == ["start unknown", "promote replica-a", "promoted replica-a"]
    events = [(e.action, e.actor) for e in registry.store.canary_events(cid)]
    assert events == [("start", "unknown"), ("promote", "replica-a"), ("promoted", "replica-a")]


def test_an_alias_already_at_the_challenger_lets_the_promotion_finish(
    tmp_path: Path, prefix: str, registry: RegistryClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """The alias was moved to the challenger, by a promotion whose store call finished after its caller gave
    up on it (and gave its claim back), or by hand. Promoting undoes nobody's move, yet it was refused as a
    hand move, and only a rollback, against the alias, could end the canary."""
    opts = cli_options(tmp_path, prefix)
    cid = start(capsys, opts)
    registry.set_alias("bot", "champion", 2)
    assert main(["canary", "status", "bot", "--json", *opts]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["champion_alias"] == {
        "alias": "champion",
        "canary_version": 1,
        "version": 2,
        "moved": True,
        "message": "@champion already points at the challenger (v2): promote to end the canary",
    }
    assert main(["canary", "promote", "bot", "--actor", "ops", *opts]) == 0
    assert "promoted" in capsys.readouterr().out
    assert main(["canary", "status", cid, "--json", *opts]) == 0
    canary = json.loads(capsys.readouterr().out)["canary"]
    assert (canary["status"], canary["decided_by"]) == ("promoted", "ops")
    assert registry.store.get_model_version_by_alias("bot", "champion").version == 2
    events = [e.action for e in registry.store.canary_events(cid)]
    assert events == ["start", "promote", "promoted"]
