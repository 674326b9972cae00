"""Start, promote and roll back a canary: the same checks and audit whoever asks (CLI, HTTP API, a replica).

Promotion moves the registry alias, which every replica already follows. It is claimed first
(``running -> promoting`` in Redis, compare-and-set), so a concurrent rollback or second promotion gets a
:class:`~runtime.errors.Conflict` and changes nothing; only the winner moves the alias, then marks the canary
``promoted``. If the alias cannot be moved the claim is released (back to ``running``) and the failure is
audited. Redis holds the live record; every step is also written to the store's canary history, whose
failure is logged but never undoes a decision already taken in Redis.

Promotion moves the alias from the canary's champion version to the challenger, and nothing else: when
someone moved the alias by hand meanwhile (a hotfix), promoting would silently undo their move, so it is
refused (a :class:`~runtime.errors.Conflict`, audited once per actor and move) until the canary is rolled
back or restarted. The alias is checked before the claim and again, after it, right before it is moved.

A claim whose holder died between the claim and its end (SIGKILL, a lost node, Redis unreachable from it
just then) would leave the canary ``promoting`` for good: nobody could promote it, roll it back or start
another, and the replicas would keep splitting traffic. So a claim older than ``claim_timeout`` (120 s,
four times what a live promotion can take: its store call gives up after 30 s and it then gives the
claim back) is settled by whoever meets it next, a replica's poll, ``promote``, ``rollback`` or ``start``
(:meth:`CanaryControl.settle_claim`): if the alias points at the challenger, the dead holder got as far as
moving it, and the promotion is finished (``promoted``); otherwise the claim is given back
(``promote_abandoned``) and the canary runs on. The settlement is a compare-and-set on the claim itself
(its time), so of several replicas meeting it at once exactly one settles it, and a newer claim is never
taken for it.

Every store call goes through :func:`~runtime.store_calls.store_call` (a daemon thread, a deadline), never
the event loop's default executor: Python joins that pool's threads when the loop and the interpreter shut
down, so a call waiting on a locked SQLite file (up to its 30 s busy timeout) or a frozen PostgreSQL kept a
replica alive long after SIGTERM. A call past its deadline fails as the store being down does.
"""

from __future__ import annotations

import functools
import logging

from pydantic import JsonValue

from registry.client import RegistryClient
from registry.entities import LineageEdge, LineageKind
from registry.errors import RegistryError
from registry.store.canaries_repo import CanaryEvent, CanaryRecord
from runtime.canary.model import AuditEntry, CanaryDefinition, CanaryState, Status, now_ms
from runtime.canary.state import CanaryStore
from runtime.errors import BadRequest, Conflict, NotFound, RuntimeErrorBase, Unavailable
from runtime.store_calls import store_call

__all__ = ["CanaryControl"]

log = logging.getLogger("runtime.canary")

CLAIM_TIMEOUT_S = 120.0  # a promotion claimed longer ago than this was abandoned by its holder


def _registry_error(exc: RegistryError) -> RuntimeErrorBase:
    return NotFound(exc.message) if exc.status == 404 else Unavailable(exc.message)


def _alias_version(client: RegistryClient, d: CanaryDefinition) -> int | None:
    """The version the champion alias points at now; None when it is not set."""
    try:
        return client.store.get_model_version_by_alias(d.model, d.champion_alias).version
    except RegistryError as exc:
        if exc.status == 404:
            return None
        raise


def _move_alias(client: RegistryClient, d: CanaryDefinition) -> int | None:
    """Point the champion alias at the challenger if it still points at the canary's champion, as one
    compare-and-set in the store; return the version it pointed at (the champion's when it was moved)."""
    if d.champion_version is None:
        client.set_alias(d.model, d.champion_alias, d.challenger_version)
        return None
    return client.store.move_model_alias(d.model, d.champion_alias, d.challenger_version, d.champion_version)


def champion_moved(d: CanaryDefinition, now: int | None) -> str | None:
    """Why a promotion is refused when the alias points at ``now``, or None when it may go ahead: the alias
    points at the canary's champion, or already at its challenger (moved there by a promotion whose store
    call finished after its caller gave up on it, or by hand): promoting then undoes nobody's move."""
    if d.champion_version is None or now in (d.champion_version, d.challenger_version):
        return None
    where = f"v{now}" if now is not None else "nothing (the alias was deleted)"
    return (
        f"@{d.champion_alias} was moved from v{d.champion_version} to {where} during canary {d.canary_id}: "
        f"promoting would undo that; roll the canary back or restart it"
    )


class CanaryControl:
    def __init__(
        self, store: CanaryStore, registry: RegistryClient | None, claim_timeout: float = CLAIM_TIMEOUT_S
    ) -> None:
        self.store = store
        self.registry = registry
        self.claim_timeout = claim_timeout

    def _client(self) -> RegistryClient:
        if self.registry is None:
            raise BadRequest("this needs the model registry (RUNTIME_STORE_URL)")
        return self.registry

    async def start(self, definition: CanaryDefinition, reason: str | None = None) -> CanaryState:
        """Check both versions in the registry, then create the canary (Conflict if one already runs)."""
        client = self._client()
        d = definition
        current = await self.store.current(d.model)
        if current is not None:  # an abandoned promotion of the last one would refuse this one for good
            await self.settle_claim(current, d.started_by)
        try:
            champion = await store_call(
                lambda: client.store.get_model_version_by_alias(d.model, d.champion_alias)
            )
            await store_call(lambda: client.get_model_version(d.model, d.challenger_version))
        except RegistryError as exc:
            raise _registry_error(exc) from exc
        champion_version = champion.version
        if champion_version == d.challenger_version:
            raise BadRequest(f"version {d.challenger_version} is already the champion (@{d.champion_alias})")
        d = d.model_copy(update={"champion_version": champion_version})
        config: dict[str, JsonValue] = {"weight": d.weight, "mode": d.mode.value, "sticky_by": d.sticky_by}
        entry = AuditEntry(actor=d.started_by, action="start", reason=reason, numbers=config)
        state = await self.store.create(d, entry)
        await self._record(state, entry, lineage=True)
        return state

    async def promote(
        self,
        canary_id: str,
        actor: str,
        reason: str | None = None,
        numbers: dict[str, JsonValue] | None = None,
    ) -> CanaryState:
        state = await self.settle_claim(await self._get(canary_id), actor)
        if state.status is Status.PROMOTED and state.decided_by == actor:
            return state  # this call finished the promotion an abandoned claim had begun
        if state.status is Status.RUNNING:  # else the claim below says who decided first
            await self._refuse_if_moved(state, actor, await self.champion_now(state.definition))
        claim = AuditEntry(actor=actor, action="promote", reason=reason, numbers=numbers or {})
        await self.store.transition(canary_id, (Status.RUNNING,), Status.PROMOTING, claim, end=False)
        state = await self._get(canary_id)
        d = state.definition
        try:
            was = await store_call(functools.partial(_move_alias, self._client(), d))
        except (RegistryError, BadRequest) as exc:
            message = exc.message
            failed = AuditEntry(actor=actor, action="promote_failed", reason=f"alias not moved: {message}")
            await self.store.transition(canary_id, (Status.PROMOTING,), Status.RUNNING, failed, end=False)
            await self._record(await self._get(canary_id), failed)
            raise Unavailable(
                f"promotion of {canary_id} failed, the canary keeps running: {message}"
            ) from exc
        refused = champion_moved(d, was)
        if refused is not None:  # moved between the check and the claim
            entry = _refusal(d, actor, was, refused)
            await self.store.transition(canary_id, (Status.PROMOTING,), Status.RUNNING, entry, end=False)
            await self._record(await self._get(canary_id), entry)
            raise Conflict(refused)
        moved = f"@{d.champion_alias} now points at version {d.challenger_version}"
        done = AuditEntry(actor=actor, action="promoted", reason=moved)
        await self.store.transition(canary_id, (Status.PROMOTING,), Status.PROMOTED, done, end=True)
        state = await self._get(canary_id)
        await self._record(state, claim)
        await self._record(state, done)
        return state

    async def settle_claim(self, state: CanaryState, actor: str) -> CanaryState:
        """Settle a promotion claimed more than ``claim_timeout`` ago and never finished (see the module's
        docstring); return the canary as it is now. A canary with no claim is returned as it is, without a
        call to Redis or the store; a claim's age is read on Redis's clock, which wrote its time, so no
        replica's clock (one running ahead, say) can make a live claim look abandoned."""
        if state.status is not Status.PROMOTING:
            return state
        age_ms = await self.store.server_ms() - state.updated_ms  # Redis's clock, as the claim's time is
        if age_ms < self.claim_timeout * 1000:
            return state
        d = state.definition
        alias = await self.champion_now(d)
        holder = state.decided_by or "unknown"
        age = f"{age_ms / 1000:.0f} s"
        if alias == d.challenger_version:
            reason = f"@{d.champion_alias} points at version {alias}: finished the promotion {holder} claimed"
            entry = AuditEntry(actor=actor, action="promoted", reason=reason, numbers={"claimed_by": holder})
            to, end = Status.PROMOTED, True
        else:
            where = f"version {alias}" if alias is not None else "nothing"
            reason = (
                f"{holder} claimed the promotion {age} ago and did not finish it; @{d.champion_alias} still "
                f"points at {where}: the canary keeps running"
            )
            entry = AuditEntry(actor=actor, action="promote_abandoned", reason=reason)
            to, end = Status.RUNNING, False
        try:
            await self.store.transition(
                d.canary_id, (Status.PROMOTING,), to, entry, end=end, since_ms=state.updated_ms
            )
        except Conflict:  # another replica or operator settled it first (or it was finished meanwhile)
            return await self._get(d.canary_id)
        log.warning("canary %s: %s", d.canary_id, reason)
        settled = await self._get(d.canary_id)
        if to is Status.PROMOTED:  # its holder recorded neither its claim nor the end in the store
            claims = [e for e in await self.store.audit(d.canary_id) if e.action == "promote"]
            if claims:
                await self._record(settled, claims[-1])
        await self._record(settled, entry)
        return settled

    async def champion_now(self, d: CanaryDefinition) -> int | None:
        """The version the champion alias points at now (None: not set); Unavailable when the store
        cannot say."""
        try:
            return await store_call(functools.partial(_alias_version, self._client(), d))
        except RegistryError as exc:
            raise _registry_error(exc) from exc

    async def _refuse_if_moved(self, state: CanaryState, actor: str, now: int | None) -> None:
        d = state.definition
        refused = champion_moved(d, now)
        if refused is None:
            return
        # Another replica may have promoted the canary since ``state`` was read: its claim comes before it
        # moves the alias, so a canary still running after the alias was read was not moved by a promotion.
        # Decided meanwhile: no refusal to record; the claim that follows says who decided first.
        current = await self.store.get(d.canary_id)
        if current is None or current.status is not Status.RUNNING:
            return
        entry = _refusal(d, actor, now, refused)
        seen = await self.store.audit(d.canary_id)
        if not any((e.action, e.actor, e.numbers) == (entry.action, actor, entry.numbers) for e in seen):
            await self.store.note(d.canary_id, entry)  # once per actor and move: replicas retry
            await self._record(state, entry)
        raise Conflict(refused)

    async def rollback(
        self,
        canary_id: str,
        actor: str,
        reason: str | None = None,
        numbers: dict[str, JsonValue] | None = None,
    ) -> CanaryState:
        entry = AuditEntry(actor=actor, action="rollback", reason=reason, numbers=numbers or {})
        found = await self.store.get(canary_id)
        if found is None:
            closed = await self._close_lost(canary_id, entry)
            if closed is not None:
                return closed
        else:
            await self.settle_claim(found, actor)  # an abandoned claim would refuse the rollback for good
        await self.store.transition(canary_id, (Status.RUNNING,), Status.ROLLED_BACK, entry, end=True)
        state = await self._get(canary_id)
        await self._record(state, entry)
        return state

    async def _close_lost(self, canary_id: str, entry: AuditEntry) -> CanaryState | None:
        """A canary the store's history calls running but Redis no longer knows (Redis restarted empty): no
        replica routes to it any more, and only a promotion moves the alias, so it ended as a rollback.
        Record that in the store and return it; None if the store has no such canary to close."""
        if self.registry is None:
            return None
        registry = self.registry

        def close() -> CanaryState | None:
            try:
                record = registry.store.get_canary(canary_id)
            except RegistryError:
                return None
            if record.status not in (Status.RUNNING.value, Status.PROMOTING.value):
                return None
            lost = "its state was lost from Redis"
            closed = CanaryState(
                definition=CanaryDefinition.model_validate(record.config),
                status=Status.ROLLED_BACK,
                updated_ms=now_ms(),
                decided_by=entry.actor,
                reason=f"{entry.reason}; {lost}" if entry.reason else lost,
            )
            noted = entry.model_copy(update={"numbers": {**entry.numbers, "redis_state": "lost"}})
            _write_history(registry, closed, noted, lineage=False)
            return closed

        return await store_call(close)

    async def _get(self, canary_id: str) -> CanaryState:
        state = await self.store.get(canary_id)
        if state is None:
            raise NotFound(f"canary {canary_id!r} not found")
        return state

    async def _record(self, state: CanaryState, entry: AuditEntry, *, lineage: bool = False) -> None:
        """Write the canary and one audit entry to the store's history; a failure is logged, not raised."""
        if self.registry is None:
            return
        try:
            await store_call(functools.partial(_write_history, self.registry, state, entry, lineage))
        except RegistryError as exc:
            log.warning("canary %s: history not written to the store: %s", state.canary_id, exc.message)


def _refusal(d: CanaryDefinition, actor: str, now: int | None, reason: str) -> AuditEntry:
    numbers: dict[str, JsonValue] = {"champion_version": d.champion_version, "alias_version": now}
    return AuditEntry(actor=actor, action="promote_refused", reason=reason, numbers=numbers)


def _write_history(client: RegistryClient, state: CanaryState, entry: AuditEntry, lineage: bool) -> None:
    d = state.definition
    client.store.record_canary(
        CanaryRecord(
            canary_id=d.canary_id,
            model_name=d.model,
            champion=f"@{d.champion_alias}",
            champion_version=d.champion_version,
            challenger_version=d.challenger_version,
            mode=d.mode.value,
            weight=d.weight,
            config=d.model_dump(mode="json"),
            status=state.status.value,
            started_by=d.started_by,
            started_time=d.started_ms,
            ended_time=state.updated_ms if state.status.ended else None,
            decided_by=state.decided_by,
            reason=state.reason,
        )
    )
    client.store.add_canary_event(
        CanaryEvent(
            canary_id=d.canary_id,
            time=entry.at_ms or now_ms(),
            actor=entry.actor,
            action=entry.action,
            reason=entry.reason,
            details=entry.numbers,
        )
    )
    if lineage:
        versions = [v for v in (d.champion_version, d.challenger_version) if v is not None]
        client.add_lineage(
            [
                LineageEdge(
                    src_kind=LineageKind.CANARY,
                    src_id=d.canary_id,
                    dst_kind=LineageKind.MODEL_VERSION,
                    dst_id=f"models:/{d.model}/{v}",
                )
                for v in versions
            ]
        )
