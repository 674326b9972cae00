"""When a replica acts on its own: the ``--auto`` guardrails, the maximum duration, a challenger that failed.

The verdict itself comes from :func:`runtime.canary.report.build_report`; this module only says which
verdicts are acted on. Every replica evaluates the policy; the compare-and-set in Redis lets one of them
act and turns the others' attempts into harmless conflicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import JsonValue

from runtime.canary.model import CanaryState, Status

__all__ = ["Decision", "decide", "numbers"]


@dataclass(frozen=True, slots=True)
class Decision:
    action: Literal["promote", "rollback"]
    reason: str
    numbers: dict[str, JsonValue] = field(default_factory=dict)


def numbers(report: dict[str, Any]) -> dict[str, JsonValue]:
    """The figures an audit entry keeps: enough to see later why the decision was taken."""
    keep = ("requests", "errors", "error_rate", "latency_s")
    variants = {name: {k: v.get(k) for k in keep} for name, v in report["variants"].items()}
    metrics = (
        "metric",
        "champion",
        "challenger",
        "difference",
        "p_value",
        "always_valid_ci95",
        "always_valid_p",
    )
    comparisons = [
        {k: row[k] for k in metrics} | {"outcome": row["outcome"]} for row in report["comparisons"]
    ]
    return {"variants": variants, "comparisons": comparisons, "verdict": report["verdict"]}


def decide(state: CanaryState, report: dict[str, Any], now_ms: int) -> Decision | None:
    """What this running canary calls for now, or None to keep going."""
    if state.status is not Status.RUNNING:
        return None
    d = state.definition
    verdict = report["verdict"]
    if d.auto and verdict["decision"] in ("promote", "rollback"):
        return Decision(verdict["decision"], f"auto: {verdict['reason']}", numbers(report))
    if d.expired(now_ms):
        reason = f"max duration of {d.max_duration_s:g} s reached without a decision ({verdict['reason']})"
        return Decision("rollback", reason, numbers(report))
    return None
