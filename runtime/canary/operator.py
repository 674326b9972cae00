"""What an operator reads and does, through ``runtime canary`` or ``/api/canaries``: one code for both doors.

:func:`read_report` is also what the deciding replicas call, so ``status``, ``GET /api/canaries/{id}`` and
the ``--auto`` policy compute one verdict from the same inputs: the counters and the expected scores, both
in Redis (each replica adds the scores its scorers report to the canary's set when it routes it; a view has
no scorers of its own to ask).
"""

from __future__ import annotations

from typing import Any

from runtime.canary.control import CanaryControl
from runtime.canary.model import CanaryState
from runtime.canary.report import VARIANTS, build_report
from runtime.canary.state import CanaryStore

__all__ = ["read_report", "show"]


async def read_report(store: CanaryStore, state: CanaryState) -> dict[str, Any]:
    """The report of a canary Redis knows: what every view shows and what the replicas decide on."""
    counters = await store.counters(state.canary_id, VARIANTS)
    return build_report(state, counters, await store.expected(state.canary_id))


async def show(control: CanaryControl, target: str) -> dict[str, Any]:
    """``status --json`` and ``GET /api/canaries/{target}``: the report with the audit log."""
    state = await control.store.find(target)
    report = await read_report(control.store, state)
    report["audit"] = [e.model_dump(mode="json") for e in await control.store.audit(state.canary_id)]
    return report
