"""Canary releases in one served app: built from the settings and joined to the service, slot and /ready.

Part of the composition root (``create_app`` calls it), kept apart so ``app.py`` stays a list of parts. A
server takes part in canaries when it has Redis and serves a registered model by name
(``models:/support-bot@champion``); it then watches for canaries of that name. The joints:

- the router goes into ``AgentService.router`` while a canary runs, and out when it ends;
- the statistics tap joins the service's telemetry, after the tracing part (which fills usage in), and
  the online-evaluation hook list, so every score reaches the variant's counters;
- a promotion that moves the alias this server follows swaps the already-loaded challenger into the slot,
  so the 10 % of users on the challenger are not sent back to the old version while the alias follower
  catches up (the follower then finds nothing to do);
- the readiness check reports a degraded canary (Redis down, challenger failed) without failing ``/ready``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
from collections.abc import AsyncIterator, Callable, Collection
from concurrent.futures import Executor

from registry.client import RegistryClient
from registry.entities import Assessment
from registry.errors import RegistryError
from registry.uris import ModelAliasURI, ModelLatestURI, ModelVersionURI, parse_model_uri
from runtime.background import running
from runtime.canary.control import CanaryControl
from runtime.canary.model import CanaryDefinition
from runtime.canary.replica import CanaryReplica
from runtime.canary.router import Router
from runtime.canary.scores import assessment_hook
from runtime.canary.state import CanaryStore
from runtime.model_source import load_checked
from runtime.protocol.call import CompositeTelemetry
from runtime.serving import AgentSlot, LoadedAgent
from runtime.state import Degraded, ReadinessCheck, RuntimeState

__all__ = ["REDIS_TIMEOUT", "attach_canary", "canary_running", "served_model_name"]

REDIS_TIMEOUT = 0.5  # seconds one Redis call of a server may take; no request ever waits on one


def served_model_name(target: str) -> str | None:
    """The registered model a ``models:/`` target serves by name; None for files and model ids."""
    if not target.startswith("models:/"):
        return None
    try:
        parsed = parse_model_uri(target)
    except RegistryError:
        return None
    return parsed.name if isinstance(parsed, ModelAliasURI | ModelVersionURI | ModelLatestURI) else None


def attach_canary(
    state: RuntimeState,
    slot: AgentSlot,
    registry: RegistryClient,
    executor: Executor,
    score_hooks: list[Callable[[Assessment], None]],
    expected_scores: Callable[[], Collection[str]] = tuple,
) -> CanaryReplica[LoadedAgent] | None:
    """Join canaries to this app when it can take part; None when it cannot (no Redis, not by name).
    ``expected_scores``: the scorers in force on this server, which an automatic promotion waits for."""
    settings, service = state.settings, state.service
    name = served_model_name(settings.model)
    if not settings.redis_url or name is None:
        return None
    store = CanaryStore.from_url(settings.redis_url, settings.canary_prefix, REDIS_TIMEOUT)

    def install(router: Router[LoadedAgent] | None) -> None:
        service.router = router

    def promoted(definition: CanaryDefinition, challenger: LoadedAgent) -> None:
        if settings.model == definition.champion_uri:
            slot.swap(
                LoadedAgent(challenger.runner, dataclasses.replace(challenger.info, uri=settings.model))
            )

    async def load(uri: str) -> LoadedAgent:
        return await load_checked(uri, registry, executor)

    replica = CanaryReplica(
        control=CanaryControl(store, registry),
        model=name,
        champion=lambda: slot.current,
        load=load,
        install=install,
        promoted=promoted,
        replica_id=f"replica:{socket.gethostname()}:{os.getpid()}",
        poll_interval=settings.canary_poll_interval,
        stale_after=settings.canary_stale_after,
        allow_force=settings.canary_force_header,
        buffer_limit=settings.canary_buffer,
        expected_scores=expected_scores,
    )
    service.telemetry = CompositeTelemetry(service.telemetry, replica.recorder)
    score_hooks.append(assessment_hook(replica.recorder))
    state.checks["canary"] = _readiness(replica)
    state.resources["canary"] = replica
    return replica


def _readiness(replica: CanaryReplica[LoadedAgent]) -> ReadinessCheck:
    async def check() -> str | None:
        problem = replica.problem()
        return Degraded(problem) if problem else None

    return check


@contextlib.asynccontextmanager
async def canary_running(replica: CanaryReplica[LoadedAgent] | None) -> AsyncIterator[None]:
    """Watch for canaries while the app runs; on exit write what statistics can be written."""
    if replica is None:
        yield
        return
    try:
        async with running(replica.run(), "canary-replica"):
            yield
    finally:
        replica.install(None)
        await replica.close()
