"""Canary state in a real Redis: one running canary per model, compare-and-set decisions, exact counters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from runtime.canary.model import AuditEntry, CanaryDefinition, Status, new_canary_id
from runtime.canary.state import CanaryStore
from runtime.errors import Conflict, NotFound, Unavailable
from tests.canary.conftest import REDIS_URL
from tests.servers import free_port


def definition(**fields: object) -> CanaryDefinition:
    values: dict[str, object] = {"canary_id": new_canary_id(), "model": "bot", "challenger_version": 2}
    return CanaryDefinition.model_validate(values | fields)


def with_store(prefix: str, scenario: Callable[[CanaryStore], Awaitable[None]]) -> None:
    async def main() -> None:
        store = CanaryStore.from_url(REDIS_URL, prefix, timeout=2.0)
        try:
            await scenario(store)
        finally:
            await store.close()

    asyncio.run(main())


def entry(action: str, actor: str = "test") -> AuditEntry:
    return AuditEntry(actor=actor, action=action)


def test_only_one_canary_runs_per_model(prefix: str) -> None:
    async def scenario(store: CanaryStore) -> None:
        first = definition()
        await store.create(first, entry("start"))
        with pytest.raises(Conflict, match=f"{first.canary_id} is already running for bot"):
            await store.create(definition(), entry("start"))
        await store.create(definition(model="other"), entry("start"))  # another model is free
        current = await store.current("bot")
        assert (
            current is not None and current.canary_id == first.canary_id and current.status is Status.RUNNING
        )

    with_store(prefix, scenario)


def test_an_ended_canary_frees_its_model_and_stays_in_history(prefix: str) -> None:
    async def scenario(store: CanaryStore) -> None:
        first = definition()
        await store.create(first, entry("start"))
        await store.transition(
            first.canary_id, (Status.RUNNING,), Status.ROLLED_BACK, entry("rollback"), end=True
        )
        assert await store.current("bot") is None
        second = definition()
        await store.create(second, entry("start"))
        assert [s.canary_id for s in await store.history(model="bot")] == [second.canary_id, first.canary_id]
        assert (await store.find(first.canary_id)).status is Status.ROLLED_BACK
        assert (await store.find("bot")).canary_id == second.canary_id
        assert [e.action for e in await store.audit(first.canary_id)] == ["start", "rollback"]

    with_store(prefix, scenario)


def test_concurrent_decisions_have_exactly_one_winner(prefix: str) -> None:
    async def scenario(store: CanaryStore) -> None:
        for _ in range(5):
            d = definition()
            await store.create(d, entry("start"))

            async def decide(to: Status, actor: str, cid: str = d.canary_id) -> str:
                try:
                    await store.transition(cid, (Status.RUNNING,), to, entry(to.value, actor), end=True)
                except Conflict as exc:
                    return f"conflict: {exc.message}"
                return "won"

            moves = [Status.PROMOTING, Status.ROLLED_BACK] * 4
            results = await asyncio.gather(*(decide(to, f"op{i}") for i, to in enumerate(moves)))
            assert results.count("won") == 1, results
            assert all("is already" in r for r in results if r != "won")
            audit = await store.audit(d.canary_id)
            assert len(audit) == 2  # the start and the one decision that happened

    with_store(prefix, scenario)


def test_transition_of_an_unknown_canary_is_not_found(prefix: str) -> None:
    async def scenario(store: CanaryStore) -> None:
        with pytest.raises(NotFound, match="c-nope"):
            await store.transition(
                "c-nope", (Status.RUNNING,), Status.ROLLED_BACK, entry("rollback"), end=True
            )

    with_store(prefix, scenario)


def test_counter_batches_add_up_exactly_and_apply_once(prefix: str) -> None:
    async def scenario(store: CanaryStore) -> None:
        cid = new_canary_id()

        async def writer(worker: int) -> None:
            for i in range(20):
                batch = {(cid, "champion"): ({"requests": 1, "ok": 1}, {"latency_sum": 0.25})}
                assert await store.add_counters(f"w{worker}-{i}", batch)

        await asyncio.gather(*(writer(w) for w in range(10)))
        assert not await store.add_counters("w0-0", {(cid, "champion"): ({"requests": 1}, {})})  # a retry
        counters = await store.counters(cid, ("champion", "challenger"))
        assert counters["champion"] == {"requests": 200, "ok": 200, "latency_sum": 50.0}
        assert counters["challenger"] == {}

    with_store(prefix, scenario)


def test_an_unreachable_redis_is_unavailable_within_the_timeout() -> None:
    async def scenario() -> None:
        dead = CanaryStore.from_url(f"redis://127.0.0.1:{free_port()}/0", "test:canary:dead", timeout=0.3)
        started = time.monotonic()
        with pytest.raises(Unavailable, match="Redis did not answer"):
            await dead.current("bot")
        assert time.monotonic() - started < 1.0
        await dead.close()

    asyncio.run(scenario())
