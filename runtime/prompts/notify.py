"""Prompt change notifications over Redis pub/sub, so an alias move reaches every replica within a second.

Whoever changes a prompt through the runtime (CLI, admin API) publishes ``{"name", "alias"}`` (an alias
moved or was deleted; a new version moves ``latest``) or ``{"name", "version"}`` (tags or commit message
edited). Every server subscribes and invalidates that entry of its prompt cache; the next ``load_prompt``
reads the store. The store stays the truth: a message only says "read again".

Redis is optional and may fail at any time. Publishing never fails the write it announces (the TTL still
bounds staleness), and a subscriber that loses its connection reconnects with backoff and, once subscribed
again, invalidates every alias, because it cannot know what it missed.

Pub/sub channels are shared by all Redis databases, unlike keys, so the channel name carries the database
number of ``RUNTIME_REDIS_URL``: deployments (and test runs) separated by database number stay separated.

redis-py is imported where a client is made, not with this module: the prompt service imports it in every
server, most servers run without Redis, and the import takes a tenth of a cold start.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["AliasPublisher", "AliasSubscriber", "Change", "channel_for"]

log = logging.getLogger("runtime.prompts.notify")

CHANNEL = "runtime:{db}:prompt-changes"
# (name, alias, version): an alias of a prompt, a version of a prompt, or (None, None, None) for everything.
Change = tuple[str | None, str | None, int | None]
OnChange = Callable[[str | None, str | None, int | None], None]


def channel_for(redis_url: str) -> str:
    from redis.connection import parse_url

    options = parse_url(redis_url)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
    return CHANNEL.format(db=options.get("db", 0))


def encode(name: str, alias: str | None = None, version: int | None = None) -> str:
    return json.dumps({"name": name, "alias": alias, "version": version})


def decode(data: Any) -> Change:
    """A message from the channel; anything unreadable means "invalidate everything", never an error."""
    try:
        body = json.loads(data)
        name, alias, version = body["name"], body.get("alias"), body.get("version")
        valid_version = version is None or (isinstance(version, int) and not isinstance(version, bool))
        if isinstance(name, str) and (alias is None or isinstance(alias, str)) and valid_version:
            return name, alias, version
    except (ValueError, TypeError, KeyError):
        pass
    return None, None, None


class AliasPublisher:
    """Sync publisher for the CLI and the admin API (which calls it from its thread pool)."""

    def __init__(self, redis_url: str, *, timeout: float = 1.0) -> None:
        import redis

        self.channel = channel_for(redis_url)
        self._client: redis.Redis = redis.Redis.from_url(
            redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    def publish(self, name: str, alias: str | None = None, version: int | None = None) -> bool:
        """True when Redis took the message; False (logged) when it is down."""
        from redis import RedisError

        try:
            self._client.publish(self.channel, encode(name, alias, version))
        except RedisError as exc:
            log.warning("could not announce the change of prompt %s on Redis: %s", name, exc)
            return False
        return True

    def close(self) -> None:
        self._client.close()


class AliasSubscriber:
    """Runs as a task of the server's lifespan; ``on_change`` is called for every message."""

    def __init__(
        self,
        redis_url: str,
        on_change: OnChange,
        *,
        min_backoff: float = 0.2,
        max_backoff: float = 5.0,
        client_name: str = "runtime-prompt-notifications",
    ) -> None:
        self.redis_url = redis_url
        self.client_name = client_name  # what CLIENT LIST shows an operator
        self.channel = channel_for(redis_url)
        self.on_change = on_change
        self.subscribed = asyncio.Event()
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff

    async def run(self) -> None:
        from redis import RedisError

        backoff = self._min_backoff
        while True:
            try:
                await self._listen()
            except (RedisError, OSError) as exc:
                if self.subscribed.is_set():
                    log.warning("prompt notifications lost (%s); reconnecting", exc)
                    backoff = self._min_backoff
                self.subscribed.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(
            self.redis_url, socket_connect_timeout=2.0, health_check_interval=10, client_name=self.client_name
        )
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    self._handle(message)
        finally:
            await client.aclose()

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "subscribe":
            self.on_change(None, None, None)  # whatever moved while we were not listening
            self.subscribed.set()
        elif kind == "message":
            self.on_change(*decode(message.get("data")))
