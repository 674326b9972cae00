"""The server side of prompts: what ``create_app`` builds and its lifespan runs.

While the app runs, ``load_prompt`` in the served agent reads through the app's registry client with the
configured TTL, and (when ``RUNTIME_REDIS_URL`` is set) a subscriber task keeps the cache in step with
alias moves announced by any replica, CLI or admin API. Writes made through the admin API go through
:attr:`writer`, which announces them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator

from registry.client import RegistryClient
from runtime.config import Settings
from runtime.prompts import api
from runtime.prompts.loader import PromptLoader
from runtime.prompts.notify import AliasPublisher, AliasSubscriber
from runtime.prompts.writer import PromptWriter
from runtime.state import Degraded

__all__ = ["PromptService"]


class PromptService:
    def __init__(self, settings: Settings, registry: RegistryClient) -> None:
        self.settings = settings
        self.registry = registry
        self.loader: PromptLoader | None = None
        self.subscriber: AliasSubscriber | None = None
        self._publisher: AliasPublisher | None = None
        self._lock = threading.Lock()

    @property
    def writer(self) -> PromptWriter:
        """Built per use: routes call it from worker threads; the loader lives only while the app runs."""
        with self._lock:
            if self._publisher is None and self.settings.redis_url:
                self._publisher = AliasPublisher(self.settings.redis_url)
        cache = self.loader.cache if self.loader is not None else None
        return PromptWriter(self.registry, self._publisher, cache)

    async def readiness(self) -> str | None:
        """A ``/ready`` check: degraded (still serving) while alias moves cannot reach this replica."""
        if self.subscriber is None or self.subscriber.subscribed.is_set():
            return None
        return Degraded("not subscribed to prompt notifications on Redis: alias moves wait for the cache TTL")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        loader = self.loader = api.configure(self.registry, ttl=self.settings.prompt_cache_ttl)
        task: asyncio.Task[None] | None = None
        if self.settings.redis_url:
            self.subscriber = AliasSubscriber(self.settings.redis_url, loader.cache.forget)
            task = asyncio.create_task(self.subscriber.run(), name="prompt-notifications")
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            api.unconfigure(loader)
            self.loader = None
            with self._lock:
                publisher, self._publisher = self._publisher, None
            if publisher is not None:
                publisher.close()
