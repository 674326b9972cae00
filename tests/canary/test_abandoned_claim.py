"""A promotion claimed by a replica (or an operator's CLI) that died before finishing it: killed, its node
lost, Redis unreachable from it just then. The canary stayed ``promoting`` for good: promote and rollback
answered "already promoting", no canary could start for the model, and the replicas kept splitting traffic.
A claim older than the claim timeout is now settled by whoever meets it: finished if its holder had moved the
alias, given back otherwise.

A dead holder is made here exactly as it leaves Redis: its claim (``running -> promoting``, with its audit
entry) written by the canary store at the time it was made, and nothing after it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from registry.client import RegistryClient
from runtime.app import create_app
from runtime.canary.control import CLAIM_TIMEOUT_S, CanaryControl
from runtime.canary.model import AuditEntry, CanaryDefinition, Status, new_canary_id, now_ms
from runtime.canary.state import CanaryStore
from runtime.errors import Conflict
from tests.canary.conftest import REDIS_URL, canary_settings, cli_options, registry_with
from tests.canary.test_operators import start
from tests.servers import serve_app, wait_until

T = TypeVar("T")

LONG_AGO_MS = int(CLAIM_TIMEOUT_S * 1000) + 60_000


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryClient]:
    with registry_with(tmp_path, ("v1", "v2", "v3")) as client:
        yield client


def run(prefix: str, body: Callable[[CanaryStore], Awaitable[T]]) -> T:
    async def go() -> T:
        store = CanaryStore.from_url(REDIS_URL, prefix, timeout=5.0)
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(go())


async def claimed_by_the_dead(store: CanaryStore, canary_id: str, ago_ms: int = LONG_AGO_MS) -> None:
    """What a holder that died right after claiming the promotion ``ago_ms`` ago leaves in Redis: its claim,
    timed (as every status change is) on Redis's clock."""
    claimed_at = await store.server_ms() - ago_ms
    claim = AuditEntry(actor="replica:dead", action="promote", reason="auto", at_ms=claimed_at)
    await store.transition(canary_id, (Status.RUNNING,), Status.PROMOTING, claim, end=False)
    await store.redis.hset(store.key("canary", canary_id), "updated_ms", str(claimed_at))


async def started(control: CanaryControl, challenger: int = 2) -> str:
    definition = CanaryDefinition(canary_id=new_canary_id(), model="bot", challenger_version=challenger)
    return (await control.start(definition)).canary_id


def audit_of(store: CanaryStore, canary_id: str) -> Awaitable[list[AuditEntry]]:
    return store.audit(canary_id)


def test_a_rollback_settles_a_claim_whose_holder_died_before_moving_the_alias(
    prefix: str, registry: RegistryClient
) -> None:
    async def body(store: CanaryStore) -> tuple[str, Status, list[AuditEntry]]:
        control = CanaryControl(store, registry)
        cid = await started(control)
        await claimed_by_the_dead(store, cid)
        state = await control.rollback(cid, "ops", "stuck")
        return cid, state.status, await audit_of(store, cid)

    cid, status, audit = run(prefix, body)
    assert status is Status.ROLLED_BACK
    assert [(e.action, e.actor) for e in audit] == [
        ("start", "unknown"),
        ("promote", "replica:dead"),
        ("promote_abandoned", "ops"),
        ("rollback", "ops"),
    ]
    assert audit[2].reason is not None
    assert "replica:dead claimed the promotion" in audit[2].reason
    assert "@champion still points at version 1" in audit[2].reason
    assert registry.store.get_model_version_by_alias("bot", "champion").version == 1
    events = [(e.action, e.actor) for e in registry.store.canary_events(cid)]
    assert events == [("start", "unknown"), ("promote_abandoned", "ops"), ("rollback", "ops")]
    assert registry.store.get_canary(cid).status == "rolled_back"


def test_promote_finishes_a_claim_whose_holder_moved_the_alias_then_died(
    prefix: str, registry: RegistryClient
) -> None:
    """Its holder moved @champion and died before marking the canary promoted: promoting again would be
    refused as a hand move; the promotion is finished instead, and a new canary can start from there."""

    async def body(store: CanaryStore) -> tuple[str, Status, str | None, list[AuditEntry], int | None]:
        control = CanaryControl(store, registry)
        cid = await started(control)
        await claimed_by_the_dead(store, cid)
        registry.set_alias("bot", "champion", 2)  # as far as the holder got
        state = await control.promote(cid, "ops")
        following = await control.start(
            CanaryDefinition(canary_id=new_canary_id(), model="bot", challenger_version=3)
        )
        return (
            cid,
            state.status,
            state.decided_by,
            await audit_of(store, cid),
            following.definition.champion_version,
        )

    cid, status, decided_by, audit, next_champion = run(prefix, body)
    assert (status, decided_by) == (Status.PROMOTED, "ops")
    assert [(e.action, e.actor) for e in audit] == [
        ("start", "unknown"),
        ("promote", "replica:dead"),
        ("promoted", "ops"),
    ]
    assert audit[2].numbers == {"claimed_by": "replica:dead"}
    assert registry.store.get_model_version_by_alias("bot", "champion").version == 2
    events = [(e.action, e.actor) for e in registry.store.canary_events(cid)]
    assert events == [("start", "unknown"), ("promote", "replica:dead"), ("promoted", "ops")]
    assert registry.store.get_canary(cid).status == "promoted"
    assert next_champion == 2


def test_start_settles_the_abandoned_claim_of_the_models_last_canary(
    prefix: str, registry: RegistryClient
) -> None:
    async def body(store: CanaryStore) -> tuple[str, Status | None, list[str]]:
        control = CanaryControl(store, registry)
        cid = await started(control)
        await claimed_by_the_dead(store, cid)
        registry.set_alias("bot", "champion", 2)
        following = await started(control, challenger=3)
        old = await store.get(cid)
        return following, old.status if old else None, [e.action for e in await audit_of(store, cid)]

    following, old_status, actions = run(prefix, body)
    assert following and old_status is Status.PROMOTED
    assert actions == ["start", "promote", "promoted"]


def test_a_claim_younger_than_the_timeout_is_left_to_its_holder(
    prefix: str, registry: RegistryClient
) -> None:
    async def body(store: CanaryStore) -> tuple[str, Status | None, list[str]]:
        control = CanaryControl(store, registry)
        cid = await started(control)
        await claimed_by_the_dead(store, cid, ago_ms=1_000)
        with pytest.raises(Conflict, match="already promoting by replica:dead"):
            await control.rollback(cid, "ops")
        with pytest.raises(Conflict, match="already promoting"):
            await control.promote(cid, "ops")
        state = await store.get(cid)
        return cid, state.status if state else None, [e.action for e in await audit_of(store, cid)]

    _, status, actions = run(prefix, body)
    assert status is Status.PROMOTING
    assert actions == ["start", "promote"]


def test_a_live_claim_is_not_taken_for_abandoned_by_a_replica_whose_clock_runs_ahead(
    prefix: str, registry: RegistryClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim's age is read on Redis's clock, which timed it: a replica whose own clock is an hour ahead
    (no NTP) would otherwise give back a promotion that is moving the alias right now."""
    from runtime.canary import control as control_module

    async def body(store: CanaryStore) -> tuple[Status, list[str]]:
        control = CanaryControl(store, registry)
        cid = await started(control)
        live = AuditEntry(actor="replica:alive", action="promote", reason="auto")
        await store.transition(cid, (Status.RUNNING,), Status.PROMOTING, live, end=False)
        monkeypatch.setattr(control_module, "now_ms", lambda: now_ms() + 3_600_000)
        seen = await store.get(cid)
        assert seen is not None
        settled = await control.settle_claim(seen, "replica:skewed")
        return settled.status, [e.action for e in await audit_of(store, cid)]

    status, actions = run(prefix, body)
    assert status is Status.PROMOTING
    assert actions == ["start", "promote"]


def test_of_replicas_meeting_one_abandoned_claim_at_once_exactly_one_settles_it(
    prefix: str, registry: RegistryClient
) -> None:
    async def body(store: CanaryStore) -> tuple[list[Status], list[tuple[str, str]]]:
        cid = await started(CanaryControl(store, registry))
        await claimed_by_the_dead(store, cid)
        seen = await store.get(cid)
        assert seen is not None
        replicas = [CanaryControl(store, registry) for _ in range(4)]
        settled = await asyncio.gather(
            *(r.settle_claim(seen, f"replica:{i}") for i, r in enumerate(replicas))
        )
        return [s.status for s in settled], [(e.action, e.actor) for e in await audit_of(store, cid)]

    statuses, audit = run(prefix, body)
    assert statuses == [Status.RUNNING] * 4
    assert [action for action, _ in audit] == ["start", "promote", "promote_abandoned"]


def test_an_old_view_of_an_abandoned_claim_does_not_settle_a_newer_claim(
    prefix: str, registry: RegistryClient
) -> None:
    """A replica read the abandoned claim, then another settled it and a third claimed the promotion anew:
    the same status, another claim, which the first must not give back."""

    async def body(store: CanaryStore) -> tuple[Status, str | None, list[tuple[str, str]]]:
        control = CanaryControl(store, registry)
        cid = await started(control)
        await claimed_by_the_dead(store, cid)
        old_view = await store.get(cid)
        assert old_view is not None
        await control.settle_claim(old_view, "replica:a")
        fresh = AuditEntry(actor="replica:c", action="promote", reason="auto")
        await store.transition(cid, (Status.RUNNING,), Status.PROMOTING, fresh, end=False)
        late = CanaryControl(store, registry, claim_timeout=0.0)  # would settle any claim it is shown
        now = await late.settle_claim(old_view, "replica:b")
        return now.status, now.decided_by, [(e.action, e.actor) for e in await audit_of(store, cid)]

    status, holder, audit = run(prefix, body)
    assert (status, holder) == (Status.PROMOTING, "replica:c")
    assert audit == [
        ("start", "unknown"),
        ("promote", "replica:dead"),
        ("promote_abandoned", "replica:a"),
        ("promote", "replica:c"),
    ]


def test_a_serving_replica_finishes_an_abandoned_promotion_and_serves_the_challenger(
    tmp_path: Path, prefix: str, registry: RegistryClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """No operator acts: the replica's own poll finds the claim abandoned, finishes it (its holder moved the
    alias), ends its router and serves version 2 as its champion."""
    settings = canary_settings(
        tmp_path, prefix, canary_poll_interval=0.1, alias_poll_interval=3600, sse_ping_interval=0
    )
    with serve_app(create_app(settings)) as url, httpx.Client(base_url=url) as http:
        cid = start(capsys, cli_options(tmp_path, prefix), "--weight", "50", "--sticky-by", "none")

        def answers() -> set[str]:
            found = set()
            for _ in range(8):
                r = http.post("/v1/responses", json={"input": "hi"})
                assert r.status_code == 200
                found.add(r.json()["output"][0]["content"][0]["text"])
            return found

        assert wait_until(lambda: answers() == {"v1", "v2"})  # the replica routes the canary
        run(prefix, lambda store: claimed_by_the_dead(store, cid))
        registry.set_alias("bot", "champion", 2)
        assert wait_until(lambda: http.get(f"/api/canaries/{cid}").json()["canary"]["status"] == "promoted")
        shown = http.get(f"/api/canaries/{cid}").json()
        assert shown["canary"]["decided_by"].startswith("replica:")
        assert [e["action"] for e in shown["audit"]] == ["start", "promote", "promoted"]
        assert wait_until(lambda: answers() == {"v2"})
        assert "x-runtime-variant" not in http.post("/v1/responses", json={"input": "hi"}).headers
