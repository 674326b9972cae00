"""Assessments -> one row per score name: count, pass rate or mean with a 95 % interval, errors, sources.

Boolean scores summarize as a pass rate (Wilson interval), numbers as a mean (t interval), strings as label
counts. A name scored both ways (a CODE bool and a HUMAN 0/1) is summarized as a mean, counting True as 1.
Assessments with an error have no value: they are counted as errors, outside the rate. Every source (CODE,
LLM_JUDGE, HUMAN) counts in the same row, with a per-source breakdown beside it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from registry.entities import Assessment
from runtime.evaluation.stats import mean_interval, wilson_interval

__all__ = ["ScoreSummary", "format_summary", "summarize"]


@dataclass(slots=True)
class ScoreSummary:
    name: str
    kind: str  # "pass_rate", "mean", "labels" or "errors" (nothing but errors)
    count: int  # assessments with a value
    errors: int
    estimate: float | None = None
    low: float | None = None
    high: float | None = None
    labels: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _row(name: str, group: list[Assessment]) -> ScoreSummary:
    values = [a.value for a in group if a.error is None and a.value is not None]
    errors = sum(1 for a in group if a.error is not None or a.value is None)
    sources = dict(Counter(a.source_type.value for a in group))
    row = ScoreSummary(name, "errors", len(values), errors, sources=sources)
    if not values:
        return row
    if all(isinstance(v, bool) for v in values):
        passed = sum(1 for v in values if v is True)
        interval = wilson_interval(passed, len(values))
        row.kind = "pass_rate"
    elif all(isinstance(v, bool | int | float) for v in values):
        interval = mean_interval([float(v) for v in values])
        row.kind = "mean"
    else:
        row.kind = "labels"
        row.labels = dict(Counter(str(v) for v in values).most_common())
        return row
    row.estimate, row.low, row.high = interval.estimate, interval.low, interval.high
    return row


def summarize(assessments: Iterable[Assessment]) -> list[ScoreSummary]:
    groups: dict[str, list[Assessment]] = defaultdict(list)
    for assessment in assessments:
        groups[assessment.name].append(assessment)
    return [_row(name, groups[name]) for name in sorted(groups)]


def _number(value: float | None, percent: bool) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.1f}%" if percent else f"{value:.4g}"


def _result(row: ScoreSummary) -> tuple[str, str]:
    if row.kind == "labels":
        top = ", ".join(f"{label}: {n}" for label, n in list(row.labels.items())[:3])
        return top, "-"
    percent = row.kind == "pass_rate"
    interval = "-" if row.low is None else f"[{_number(row.low, percent)}, {_number(row.high, percent)}]"
    prefix = "pass " if percent else "mean " if row.kind == "mean" else ""
    return (prefix + _number(row.estimate, percent)) if row.estimate is not None else "-", interval


def format_summary(rows: list[ScoreSummary]) -> str:
    """A fixed-width table for the terminal."""
    table = [("SCORER", "COUNT", "RESULT", "95% CI", "ERRORS", "SOURCES")]
    for row in rows:
        result, interval = _result(row)
        sources = ", ".join(f"{k.lower()} {v}" for k, v in sorted(row.sources.items()))
        table.append((row.name, str(row.count), result, interval, str(row.errors), sources))
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in table
    )
