"""Serving registry models: resolve a ``models:/`` URI to a loaded agent, and follow an alias as it moves.

When the served URI is an alias (``models:/support-bot@champion``) or ``latest``, :class:`AliasFollower`
re-resolves it every ``interval`` seconds (and at once when told to, e.g. by a Redis notification). A new
version is loaded and must answer its input example, off the event loop, before the slot is swapped; requests
in flight keep the agent they started with. A version that fails to load leaves the old one serving, and the
failure is logged and reported on ``/ready``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import Executor
from pathlib import Path

from registry.artifacts import LocalArtifactRepository
from registry.client import RegistryClient, ResolvedModel
from registry.errors import RegistryError, StoreUnavailable
from registry.store import SqlStore
from registry.uris import ModelAliasURI, ModelLatestURI, parse_model_uri
from runtime.agents.factory import build_runner
from runtime.agents.loader import load_agent
from runtime.agents.validate import answer_example, input_example
from runtime.config import Settings
from runtime.errors import AgentLoadError, NotFound, RuntimeErrorBase, Unavailable
from runtime.observability.lazy_store import LazyStore
from runtime.protocol.call import ModelInfo
from runtime.serving import AgentSlot, LoadedAgent
from runtime.state import Degraded, ReadinessCheck
from runtime.store_calls import store_call

__all__ = [
    "AliasFollower",
    "check_store_url",
    "is_moving_uri",
    "load_checked",
    "load_model_uri",
    "load_resolved",
    "registry_client",
    "store_readiness",
]

log = logging.getLogger("runtime.models")


def is_moving_uri(uri: str) -> bool:
    return uri.startswith("models:/") and isinstance(parse_model_uri(uri), ModelAliasURI | ModelLatestURI)


STORE_HINT = "check that the store runs and that --store-url / RUNTIME_STORE_URL names it"


def check_store_url(settings: Settings) -> None:
    """Raise ``InvalidArgument`` now when the store URL can never work (malformed, or a database other than
    SQLite and PostgreSQL): a start-up error, however the store is used later. Connects to nothing."""
    SqlStore(settings.resolved_store_url, upgrade=False).close()


def registry_client(settings: Settings) -> RegistryClient:
    """The registry of a server or of ``runtime worker``, which start even when the store does not answer.

    The store being down degrades traces, prompts, scoring and the registry API, never requests (README,
    Many replicas), also when it is down at start-up: the client then opens the store once it answers, and
    until it does every use raises ``StoreUnavailable`` as it would had the store gone down later. A store
    URL that can never work raises ``InvalidArgument``; serving a ``models:/`` URI needs the store at once
    (:func:`load_model_uri`).
    """
    try:
        return RegistryClient(settings.resolved_store_url, settings.resolved_artifact_root)
    except StoreUnavailable as exc:
        log.warning("%s; starting without the store, opened once it answers (%s)", exc.message, STORE_HINT)
        return _StoreOnceItAnswers(settings.resolved_store_url, settings.resolved_artifact_root)


class _StoreOnceItAnswers(RegistryClient):
    """A registry client whose store did not answer at start-up: it opens it on use and keeps it once open
    (:class:`~runtime.observability.lazy_store.LazyStore`: one attempt per second while it does not answer);
    until then a use raises ``StoreUnavailable``, as when the store goes down under a running server."""

    def __init__(self, store_url: str, artifact_root: str) -> None:
        # Not RegistryClient.__init__, which opens the store at once; the rest is what it sets.
        self.store_url = store_url
        self.artifacts = LocalArtifactRepository(Path(artifact_root))
        self._lazy = LazyStore(store_url, what="store")

    @property
    def store(self) -> SqlStore:
        try:
            return self._lazy.get()
        except Unavailable as exc:
            raise StoreUnavailable(exc.message) from exc

    @store.setter
    def store(self, store: SqlStore) -> None:
        raise AttributeError("the store of this client opens itself")

    def close(self) -> None:
        self._lazy.close()


def store_readiness(client: RegistryClient) -> ReadinessCheck | None:
    """A ``/ready`` check for a client whose store did not answer at start-up: ``degraded`` until it does
    (one connection attempt a second at most, off the event loop), nothing once it has; None for a client
    whose store opened at start-up."""
    if not isinstance(client, _StoreOnceItAnswers):
        return None
    lazy = client

    async def check() -> str | None:
        try:
            await store_call(lambda: lazy.store)
        except StoreUnavailable as exc:
            return Degraded(f"{exc.message}: traces are dropped and /api/* answers 503 until it answers")
        return None

    return check


def _resolve(client: RegistryClient, uri: str) -> ResolvedModel:
    try:
        return client.resolve(uri)
    except RegistryError as exc:
        raise NotFound(exc.message) if exc.status == 404 else AgentLoadError(exc.message) from exc


def load_resolved(resolved: ResolvedModel, uri: str, executor: Executor | None = None) -> LoadedAgent:
    if not resolved.local_path.is_dir():
        raise AgentLoadError(f"the files of {resolved.model.uri} are missing from the artifact store")
    agent = load_agent(resolved.local_path)
    runner = build_runner(agent, executor)
    model, version = resolved.model, resolved.version
    info = ModelInfo(
        name=version.name if version else model.name,
        model_id=model.model_id,
        version=str(version.version) if version else None,
        uri=uri,
        source_commit=model.source.commit if model.source else None,
    )
    return LoadedAgent(runner=runner, info=info)


def load_model_uri(uri: str, settings: Settings, executor: Executor | None = None) -> LoadedAgent:
    try:
        client = RegistryClient(settings.resolved_store_url, settings.resolved_artifact_root)
    except StoreUnavailable as exc:
        raise AgentLoadError(f"cannot resolve {uri}: {exc.message}; {STORE_HINT}") from exc
    with client:
        resolved = _resolve(client, uri)
    return load_resolved(resolved, uri, executor)


async def load_checked(uri: str, client: RegistryClient, executor: Executor | None = None) -> LoadedAgent:
    """Load a version off the event loop and make it answer its input example: a canary's challenger."""
    resolved = await _resolved(client, uri)
    loaded = await asyncio.to_thread(load_resolved, resolved, uri, executor)
    example = input_example(resolved.local_path)
    if example is not None:
        await answer_example(loaded.runner, example)
    return loaded


async def _resolved(client: RegistryClient, uri: str) -> ResolvedModel:
    """:func:`_resolve` off the event loop, bounded in time (a store that hangs is a store that is down)."""
    try:
        return await store_call(lambda: _resolve(client, uri))
    except RegistryError as exc:
        raise AgentLoadError(f"cannot resolve {uri}: {exc.message}") from exc


class AliasFollower:
    """Keeps ``slot`` on whatever ``uri`` points at now. Run :meth:`run` as a lifespan task."""

    def __init__(
        self, uri: str, slot: AgentSlot, client: RegistryClient, executor: Executor | None, interval: float
    ) -> None:
        self.uri = uri
        self.slot = slot
        self.client = client
        self.executor = executor
        self.interval = interval
        self.wake = asyncio.Event()
        self._last_logged: str | None = None

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=self.interval)
            self.wake.clear()
            await self.check()

    async def check(self) -> bool:
        """Swap in the version the URI points at if it changed; True when a swap happened."""
        try:
            resolved = await _resolved(self.client, self.uri)
        except RuntimeErrorBase as exc:
            self._failed(exc.message)
            return False
        if resolved.model.model_id == self.slot.current.info.model_id:
            if self.slot.last_error is not None:  # the URI resolves to what is served again: nothing is wrong
                log.info("%s points at the version being served again", self.uri)
                self.slot.last_error = self._last_logged = None
            return False
        try:
            fresh = await asyncio.to_thread(load_resolved, resolved, self.uri, self.executor)
            example = input_example(resolved.local_path)
            if example is not None:
                await answer_example(fresh.runner, example)
        except RuntimeErrorBase as exc:
            # The agent's exception text (which may quote a secret) goes to the log, not to /ready.
            self._failed(
                f"{resolved.model.uri} did not load: {exc.message}", f"{resolved.model.uri} did not load"
            )
            return False
        previous = self.slot.swap(fresh)
        log.info(
            "%s now serves %s (version %s, was %s)",
            self.uri,
            fresh.info.model_id,
            fresh.info.version,
            previous.info.version,
        )
        return True

    def _failed(self, message: str, shown: str | None = None) -> None:
        """Log ``message`` (once while it stays the same); ``/ready`` shows ``shown``, else the message."""
        if message != self._last_logged:
            log.error("%s; the current version keeps serving", message)
            self._last_logged = message
        self.slot.last_error = message if shown is None else f"{shown} (the server log says why)"
