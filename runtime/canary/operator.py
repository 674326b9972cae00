"""What an operator reads and does, through ``runtime canary`` or ``/api/canaries``: one code for both doors.

:func:`read_report` is also what the deciding replicas call, so ``status``, ``GET /api/canaries/{id}`` and
the ``--auto`` policy compute one verdict from the same inputs: the counters and the expected scores, both
in Redis (each replica adds the scores its scorers report to the canary's set when it routes it; a view has
no scorers of its own to ask).

Redis holds a canary's live state; the store keeps its history. A canary Redis no longer knows (restarted
without its data) is shown from the store, saying that its live state was lost and how to close it, and a
rollback closes it there (see :meth:`CanaryControl.rollback`). The store is read through
:func:`~runtime.store_calls.store_call`, as :class:`CanaryControl` does (its docstring says why).
"""

from __future__ import annotations

from typing import Any, Literal

from registry.errors import RegistryError
from registry.store.canaries_repo import CanaryRecord
from runtime.canary.control import CanaryControl, champion_moved
from runtime.canary.model import CanaryState, Status
from runtime.canary.policy import numbers
from runtime.canary.report import VARIANTS, build_report
from runtime.canary.state import CanaryStore
from runtime.errors import BadRequest, NotFound, Unavailable
from runtime.store_calls import store_call

__all__ = ["decide", "listing", "read_report", "show"]

_LIVE = (Status.RUNNING.value, Status.PROMOTING.value)


async def read_report(store: CanaryStore, state: CanaryState) -> dict[str, Any]:
    """The report of a canary Redis knows: what every view shows and what the replicas decide on."""
    counters = await store.counters(state.canary_id, VARIANTS)
    return build_report(state, counters, await store.expected(state.canary_id))


async def show(control: CanaryControl, target: str) -> dict[str, Any]:
    """``status --json`` and ``GET /api/canaries/{target}``: the report with the audit log; for a canary
    only the store knows, its record with ``redis_state`` and a ``message``."""
    try:
        state = await control.store.find(target)
    except NotFound:
        record = await _stored(control, target)
        if record is None:
            raise
        return await _from_store(control, record)
    report = await read_report(control.store, state)
    moved = await _champion_alias(control, state)
    if moved is not None:
        report["champion_alias"] = moved
    report["audit"] = [e.model_dump(mode="json") for e in await control.store.audit(state.canary_id)]
    return report


async def decide(
    control: CanaryControl,
    target: str,
    action: Literal["promote", "rollback"],
    actor: str,
    reason: str | None,
) -> CanaryState:
    """Promote or roll back the canary ``target`` names, with the numbers behind the decision; a rollback
    of a canary Redis lost closes it in the store."""
    try:
        state = await control.store.find(target)
    except NotFound:
        if action != "rollback":
            raise
        return await control.rollback(target, actor, reason)  # by id: closed in the store if it is there
    act = control.promote if action == "promote" else control.rollback
    return await act(state.canary_id, actor, reason, numbers(await read_report(control.store, state)))


async def listing(control: CanaryControl, model: str | None, limit: int) -> list[dict[str, Any]]:
    """Newest first: the canaries Redis knows, and those only the store's history still has."""
    found = {s.canary_id: s.summary() for s in await control.store.history(model=model, limit=limit)}
    if control.registry is not None:
        registry = control.registry
        try:
            records = await store_call(lambda: registry.store.list_canaries(model, limit))
        except RegistryError:
            records = []  # the store's part is missing; Redis answered
        for record in records:
            found.setdefault(record.canary_id, _summary(record))
    newest = sorted(found.values(), key=lambda c: (c["started_ms"], c["canary_id"]), reverse=True)
    return newest[:limit]


async def _stored(control: CanaryControl, target: str) -> CanaryRecord | None:
    """The store's record of canary ``target``, or of the latest canary of model ``target``."""
    if control.registry is None:
        return None
    registry = control.registry

    def find() -> CanaryRecord | None:
        try:
            return registry.store.get_canary(target)
        except RegistryError as exc:
            if exc.status != 404:
                raise
        latest = registry.store.list_canaries(target, 1)
        return latest[0] if latest else None

    try:
        return await store_call(find)
    except RegistryError as exc:
        raise Unavailable(exc.message) from exc


def _summary(record: CanaryRecord) -> dict[str, Any]:
    """A store record in the shape of :meth:`CanaryState.summary`, marked as not in Redis."""
    return {
        **record.config,
        "status": record.status,
        "updated_ms": record.ended_time or record.started_time,
        "decided_by": record.decided_by,
        "reason": record.reason,
        "redis_state": "lost",
    }


async def _from_store(control: CanaryControl, record: CanaryRecord) -> dict[str, Any]:
    cid = record.canary_id
    if record.status in _LIVE:
        message = (
            f"canary {cid} of {record.model_name} is {record.status} in the store's history, but its live "
            f"state was lost from Redis (restarted without its data?): no replica routes to it, the champion "
            f"serves everything; close it with `runtime canary rollback {cid}` (or POST "
            f"/api/canaries/{cid}/rollback)"
        )
    else:
        ended = f"canary {cid} of {record.model_name} {record.status}"
        message = f"{ended}; its statistics are no longer in Redis"
    registry = control.registry
    assert registry is not None  # a record came from it
    events = await store_call(lambda: registry.store.canary_events(cid))
    audit = [
        {"at_ms": e.time, "actor": e.actor, "action": e.action, "reason": e.reason, "numbers": e.details}
        for e in events
    ]
    return {"canary": _summary(record), "redis_state": "lost", "message": message, "audit": audit}


async def _champion_alias(control: CanaryControl, state: CanaryState) -> dict[str, Any] | None:
    """Where the champion alias points now, when it no longer points at a running canary's champion (the
    report has ``champion_alias`` only then)."""
    d = state.definition
    if state.status is not Status.RUNNING or control.registry is None:
        return None
    try:
        now = await control.champion_now(d)
    except (Unavailable, BadRequest):
        return None  # the view shows what Redis has; a promotion checks again
    alias = {"alias": d.champion_alias, "canary_version": d.champion_version, "version": now}
    if now == d.challenger_version and now != d.champion_version:
        message = f"@{d.champion_alias} already points at the challenger (v{now}): promote to end the canary"
        return alias | {"moved": True, "message": message}
    refused = champion_moved(d, now)
    if refused is None:
        return None
    counted = f"requests answered by v{now} are not counted; " if now is not None else ""
    return alias | {"moved": True, "message": f"{refused} ({counted}promotion is refused)"}
