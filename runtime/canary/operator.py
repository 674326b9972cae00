"""What an operator reads and does, through ``runtime canary`` or ``/api/canaries``: one code for both doors.

:func:`read_report` is also what the deciding replicas call, so ``status``, ``GET /api/canaries/{id}`` and
the ``--auto`` policy compute one verdict from the same inputs: the counters and the expected scores, both
in Redis (each replica adds the scores its scorers report to the canary's set when it routes it; a view has
no scorers of its own to ask).
"""

from __future__ import annotations

from typing import Any

from runtime.canary.control import CanaryControl, champion_moved
from runtime.canary.model import CanaryState, Status
from runtime.canary.report import VARIANTS, build_report
from runtime.canary.state import CanaryStore
from runtime.errors import BadRequest, Unavailable

__all__ = ["read_report", "show"]


async def read_report(store: CanaryStore, state: CanaryState) -> dict[str, Any]:
    """The report of a canary Redis knows: what every view shows and what the replicas decide on."""
    counters = await store.counters(state.canary_id, VARIANTS)
    return build_report(state, counters, await store.expected(state.canary_id))


async def show(control: CanaryControl, target: str) -> dict[str, Any]:
    """``status --json`` and ``GET /api/canaries/{target}``: the report with the audit log."""
    state = await control.store.find(target)
    report = await read_report(control.store, state)
    moved = await _champion_alias(control, state)
    if moved is not None:
        report["champion_alias"] = moved
    report["audit"] = [e.model_dump(mode="json") for e in await control.store.audit(state.canary_id)]
    return report


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
    refused = champion_moved(d, now)
    if refused is None:
        return None
    alias = {"alias": d.champion_alias, "canary_version": d.champion_version, "version": now}
    counted = f"requests answered by v{now} are not counted; " if now is not None else ""
    return alias | {"moved": True, "message": f"{refused} ({counted}promotion is refused)"}
