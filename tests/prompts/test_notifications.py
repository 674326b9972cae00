"""Alias moves reach every server through a real Redis: two `runtime serve` processes follow one move.

The servers run with a 600 s cache TTL, so only the pub/sub notification can explain a prompt changing
within the bounded wait. Redis pub/sub channels ignore database numbers, so ours carry it in their name;
these tests use their own database number.
"""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from registry import RegistryClient
from runtime.cli.main import main
from runtime.prompts.cache import PromptCache
from runtime.prompts.notify import AliasPublisher, AliasSubscriber, channel_for, decode
from tests.servers import ServeProcess, wait_until

pytestmark = pytest.mark.redis

REDIS_URL = "redis://127.0.0.1:6379/13"

AGENT = textwrap.dedent(
    """
    from runtime.agents import ResponsesAgent, ResponsesAgentRequest, ResponsesAgentResponse, set_agent
    from runtime.prompts import load_prompt


    class PromptEcho(ResponsesAgent):
        def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
            prompt = load_prompt("prompts:/support@production")
            text = f"{prompt.version}:{prompt.template}"
            return ResponsesAgentResponse(output=[self.create_text_output_item(text, "m1")])


    set_agent(PromptEcho())
    """
)


def _answer(url: str) -> str:
    r = httpx.post(url + "/invocations", json={"input": [{"role": "user", "content": "hi"}]}, timeout=5)
    assert r.status_code == 200, r.text
    return str(r.json()["output"][0]["content"][0]["text"])


def _subscribed(url: str) -> bool:
    body = httpx.get(url + "/ready", timeout=2).json()
    return "prompt_notifications" not in body.get("degraded", {})


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryClient]:
    with RegistryClient(f"sqlite:///{tmp_path / 'shared.db'}", tmp_path / "artifacts") as client:
        client.register_prompt("support", "first")
        client.register_prompt("support", "second")
        client.set_prompt_alias("support", "production", 1)
        yield client


@pytest.fixture
def two_servers(tmp_path: Path, registry: RegistryClient) -> Iterator[list[str]]:
    agent = tmp_path / "prompt_agent.py"
    agent.write_text(AGENT)
    args = [str(agent), "--store-url", registry.store_url, "--redis-url", REDIS_URL]
    env = {"RUNTIME_PROMPT_CACHE_TTL": "600", "RUNTIME_HOME": str(tmp_path / "home")}
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(ServeProcess(args, env=env)) for _ in range(2)]
        for server in servers:
            server.wait_ready()
        urls = [s.url for s in servers]
        for url in urls:
            assert wait_until(lambda u=url: _subscribed(u), timeout=10), f"{url} never subscribed"
        yield urls


def test_an_alias_move_reaches_both_servers_within_a_second(
    two_servers: list[str], registry: RegistryClient
) -> None:
    assert [_answer(u) for u in two_servers] == ["1:first", "1:first"]  # both caches are warm

    code = main(
        [
            "prompts",
            "--store-url",
            registry.store_url,
            "--redis-url",
            REDIS_URL,
            "alias",
            "support",
            "production",
            "2",
        ]
    )
    assert code == 0
    for url in two_servers:
        assert wait_until(lambda u=url: _answer(u) == "2:second", timeout=1.5, interval=0.05)

    # The admin API of one server announces to the other as well.
    r = httpx.put(two_servers[0] + "/api/prompts/support/aliases/production", json={"version": 1}, timeout=5)
    assert r.status_code == 200 and r.json()["prompt_version"]["version"] == 1
    for url in two_servers:
        assert wait_until(lambda u=url: _answer(u) == "1:first", timeout=1.5, interval=0.05)


def test_subscriber_invalidates_on_messages_and_on_every_subscribe() -> None:
    seen: list[tuple[Any, ...]] = []
    cache = PromptCache(ttl=600)

    def on_change(name: str | None, alias: str | None, version: int | None) -> None:
        seen.append((name, alias, version))
        cache.forget(name, alias, version)

    async def scenario() -> None:
        subscriber = AliasSubscriber(REDIS_URL, on_change)
        task = asyncio.create_task(subscriber.run())
        try:
            await asyncio.wait_for(subscriber.subscribed.wait(), timeout=5)
            publisher = AliasPublisher(REDIS_URL)
            try:
                assert publisher.publish("support", alias="production")
                assert publisher.publish("support", version=3)
                with redis.Redis.from_url(REDIS_URL) as raw:
                    raw.publish(channel_for(REDIS_URL), b"not json")
                    raw.publish("runtime:12:prompt-changes", '{"name": "other-db"}')  # another database
                for _ in range(100):
                    if len(seen) >= 4:
                        break
                    await asyncio.sleep(0.02)
            finally:
                publisher.close()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(scenario())
    assert seen == [
        (None, None, None),
        ("support", "production", None),
        ("support", None, 3),
        (None, None, None),
    ]


def test_a_lost_subscription_reconnects_and_forgets_every_alias() -> None:
    """Messages sent while disconnected are lost, so a resubscribed replica must re-read every alias."""
    seen: list[tuple[Any, ...]] = []
    name = f"prompts-test-{uuid.uuid4().hex[:8]}"

    async def scenario() -> None:
        subscriber = AliasSubscriber(
            REDIS_URL, lambda *change: seen.append(change), min_backoff=0.05, client_name=name
        )
        task = asyncio.create_task(subscriber.run())
        try:
            await asyncio.wait_for(subscriber.subscribed.wait(), timeout=5)
            with redis.Redis.from_url(REDIS_URL) as raw:
                (ours,) = [c for c in raw.client_list() if c.get("name") == name]
                raw.client_kill_filter(_id=ours["id"])
            for _ in range(250):
                if len(seen) >= 2 and subscriber.subscribed.is_set():
                    break
                await asyncio.sleep(0.02)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(scenario())
    assert seen == [(None, None, None), (None, None, None)]


def test_channels_follow_the_database_number_and_bad_messages_mean_everything() -> None:
    assert channel_for("redis://127.0.0.1:6379/13") == "runtime:13:prompt-changes"
    assert channel_for("redis://127.0.0.1:6379") == "runtime:0:prompt-changes"
    assert channel_for("redis://h/?db=4") == "runtime:4:prompt-changes"
    for bad in (b"{", b'{"alias": "a"}', b'{"name": 3}', b'{"name": "p", "version": true}', None):
        assert decode(bad) == (None, None, None)
    assert decode(b'{"name": "p", "alias": "a", "version": null}') == ("p", "a", None)


def test_a_dead_redis_never_fails_a_write() -> None:
    publisher = AliasPublisher("redis://127.0.0.1:9/0", timeout=0.2)
    try:
        assert publisher.publish("support", alias="production") is False
    finally:
        publisher.close()
