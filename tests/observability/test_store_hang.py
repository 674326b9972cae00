"""A store that stops answering without closing its connections (a frozen PostgreSQL, a stalled proxy): API
calls answer 503 ``store_unavailable`` after their deadline instead of hanging, too many waiting calls are
refused at once, ``/metrics`` and the agent routes keep answering, and the threads left waiting never hold
the process at exit (daemon threads).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from registry.errors import StoreUnavailable
from registry.store import SqlStore
from runtime import store_calls
from runtime.app import create_app
from tests.observability.conftest import settings_for
from tests.servers import serve_app
from tests.serving.agents import AsyncEcho, loaded


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Trace queries block until the event is set (set at the end, so no thread outlives the test)."""
    thaw = threading.Event()

    def hang(self: SqlStore, **filters: Any) -> Any:
        thaw.wait(30)
        raise StoreUnavailable("thawed")

    monkeypatch.setattr(SqlStore, "search_traces", hang)
    monkeypatch.setattr(store_calls.api_calls, "timeout", 0.5)
    yield thaw
    thaw.set()


def test_a_frozen_store_gets_503_not_a_hung_api(tmp_path: Any, frozen: threading.Event) -> None:
    app = create_app(settings_for(tmp_path), agent=loaded(AsyncEcho(), "echo"))
    with serve_app(app) as url, httpx.Client(base_url=url, timeout=20) as client:
        first = client.get("/api/traces", params={"limit": 1})
        assert first.status_code == 503
        assert first.json()["error"]["code"] == "store_unavailable"
        assert "did not answer within 0.5 s" in first.json()["error"]["message"]
        # The store's threads are its own: metrics and the agent are not waiting behind them.
        assert client.get("/metrics").status_code == 200
        assert client.post("/v1/responses", json={"input": "still here"}).status_code == 200
        assert all(t.daemon for t in threading.enumerate() if t.name == "runtime-store-call")


def test_calls_past_the_limit_are_refused_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    thaw = threading.Event()
    monkeypatch.setattr(store_calls.api_calls, "limit", 2)

    async def scenario() -> list[str]:
        waiting = [asyncio.create_task(store_calls.store_call(thaw.wait, within=5)) for _ in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(StoreUnavailable, match="2 calls are waiting"):
            await store_calls.store_call(lambda: 1)
        thaw.set()
        results = [str(r) for r in await asyncio.gather(*waiting)]
        assert await store_calls.store_call(lambda: 7) == 7  # room again
        return results

    try:
        assert asyncio.run(scenario()) == ["True", "True"]
    finally:
        thaw.set()


def test_background_calls_have_a_budget_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scoring stuck behind a slow store fills its own budget; an API call still runs."""
    thaw = threading.Event()
    monkeypatch.setattr(store_calls.background_calls, "limit", 2)
    monkeypatch.setattr(store_calls.api_calls, "limit", 2)

    async def scenario() -> int:
        background = store_calls.background_calls
        waiting = [asyncio.create_task(background.call(thaw.wait, within=5)) for _ in range(2)]
        await asyncio.sleep(0)  # both tasks run up to their wait: each has taken its slot
        assert background.waiting == 2
        with pytest.raises(StoreUnavailable, match="2 calls are waiting"):
            await background.call(lambda: 1)
        answer = await store_calls.store_call(lambda: 7)  # the API's budget is untouched
        thaw.set()
        assert await asyncio.gather(*waiting) == [True, True]
        return answer

    try:
        assert asyncio.run(scenario()) == 7
    finally:
        thaw.set()


def test_an_error_in_the_call_reaches_the_caller() -> None:
    def broken() -> None:
        raise StoreUnavailable("down")

    with pytest.raises(StoreUnavailable, match="down"):
        asyncio.run(store_calls.store_call(broken))
