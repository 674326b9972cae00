"""The process cache behind ``load_prompt``: versions forever, alias targets for a short TTL.

A version's template can never change, so a cached version is good for the life of the process. An alias
(``@production``, ``@latest``) can move at any time: its target is trusted for ``ttl`` seconds, or until a
notification invalidates it. An expired or invalidated target is kept, marked stale, because when the
store cannot answer the last known version is still the best thing to serve.

Every invalidation bumps a generation counter: a lookup that started before an invalidation may not store
its (possibly old) answer as fresh, which would otherwise pin the previous version for a whole TTL after a
move. One counter for all aliases is enough because moves are rare; the price is one extra store read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from registry.entities import PromptVersion

__all__ = ["AliasTarget", "PromptCache"]

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class AliasTarget:
    version: int
    fresh_until: float

    def is_fresh(self, now: float) -> bool:
        return now < self.fresh_until


class PromptCache:
    """Thread-safe: agents call ``load_prompt`` from the event loop and from worker threads at once."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._versions: dict[tuple[str, int], PromptVersion] = {}
        self._aliases: dict[Key, AliasTarget] = {}
        self._generation = 0

    def version(self, name: str, number: int) -> PromptVersion | None:
        return self._versions.get((name, number))

    def put_version(self, version: PromptVersion) -> None:
        with self._lock:
            self._versions[(version.name, version.version)] = version

    def drop_version(self, name: str, number: int) -> None:
        """Forget one version, so edited tags or commit message are read again."""
        with self._lock:
            self._versions.pop((name, number), None)

    def alias(self, name: str, alias: str) -> tuple[PromptVersion | None, bool]:
        """(the version the alias last pointed at, whether that is still fresh); (None, False) if unknown."""
        target = self._aliases.get((name, alias))
        if target is None:
            return None, False
        return self._versions.get((name, target.version)), target.is_fresh(self._clock())

    def generation(self) -> int:
        return self._generation

    def put_alias(self, name: str, alias: str, version: PromptVersion, generation: int) -> None:
        """Remember ``alias -> version``; fresh only if nothing was invalidated since ``generation``."""
        with self._lock:
            self._versions[(version.name, version.version)] = version
            fresh_until = self._clock() + self.ttl if generation == self._generation else 0.0
            self._aliases[(name, alias)] = AliasTarget(version.version, fresh_until)

    def invalidate_alias(self, name: str | None = None, alias: str | None = None) -> None:
        """Mark an alias stale; ``alias=None`` every alias of ``name``, ``name=None`` every alias at all."""
        with self._lock:
            self._generation += 1
            for key, target in list(self._aliases.items()):
                if (name is None or key[0] == name) and (alias is None or key[1] == alias):
                    self._aliases[key] = AliasTarget(target.version, 0.0)

    def forget(self, name: str | None, alias: str | None = None, version: int | None = None) -> None:
        """Apply a change notification: a version edited, an alias moved, or (no name) anything at all."""
        if name is not None and version is not None:
            self.drop_version(name, version)
        else:
            self.invalidate_alias(name, alias)
