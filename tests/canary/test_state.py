"""Canary state in a real Redis: one running canary per model, compare-and-set decisions, exact counters."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

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


def test_credentials_redis_refuses_are_named_as_such(tmp_path: Path) -> None:
    """Not "Redis did not answer (...: AuthenticationError)": the operator's fix is the password."""
    server = shutil.which("redis-server")
    assert server, "redis-server is needed (the test command starts Redis from it)"
    port = free_port()
    args = [server, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", "right", "--save", ""]
    proc = subprocess.Popen([*args, "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:

        async def scenario() -> None:
            for _ in range(100):  # until it listens
                store = CanaryStore.from_url(f"redis://:wrong@127.0.0.1:{port}/0", "t", 1.0)
                try:
                    await store.ping()
                except Unavailable as exc:
                    if "refused the credentials" in exc.message:
                        assert "wrong" not in exc.message
                        return
                finally:
                    await store.close()
                await asyncio.sleep(0.05)
            raise AssertionError("Redis never refused the credentials")

        asyncio.run(scenario())
    finally:
        proc.terminate()
        proc.wait(10)
