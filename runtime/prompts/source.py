"""Where ``load_prompt`` reads the registry: the server's client, or one opened from the environment.

Inside ``runtime serve`` the composition root hands over its own ``RegistryClient`` (one connection pool per
process). Anywhere else (a notebook, a test, an agent run by hand) the store named by ``RUNTIME_STORE_URL``
(else the embedded SQLite file under ``RUNTIME_HOME``) is opened on first use. Opening it may fail because
the store is down; the failure is remembered for ``retry_after`` seconds so a dead database costs one
connection attempt per interval, not one per request, while cached prompts keep serving.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from registry.client import RegistryClient
from registry.errors import StoreUnavailable

__all__ = ["ClientSource"]


class ClientSource:
    def __init__(
        self,
        client: RegistryClient | None = None,
        *,
        opener: Callable[[], RegistryClient] | None = None,
        retry_after: float = 5.0,
    ) -> None:
        if client is None and opener is None:
            raise ValueError("give a client or a way to open one")
        self._client = client
        self._opener = opener
        self._owned = client is None
        self._retry_after = retry_after
        self._failed_at: float | None = None
        self._failure: StoreUnavailable | None = None
        self._lock = threading.Lock()

    def get(self) -> RegistryClient:
        """The client; raises ``StoreUnavailable`` while the store cannot be opened."""
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is not None:
                return self._client
            now = time.monotonic()
            failed_at, failure = self._failed_at, self._failure
            if failure is not None and failed_at is not None and now - failed_at < self._retry_after:
                raise StoreUnavailable(failure.message)
            if self._opener is None:
                raise StoreUnavailable("the prompt registry was closed with the server that owned it")
            try:
                self._client = self._opener()
            except StoreUnavailable as exc:
                self._failed_at, self._failure = now, exc
                raise
            self._failure = None
            return self._client

    def close(self) -> None:
        """Close the client only if this source opened it; the server closes its own."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None and self._owned:
            client.close()
