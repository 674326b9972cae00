"""Small, dependency-free statistics for latency samples and repeated runs."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

__all__ = ["median_or_none", "percentile", "summarize_ms"]


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks; ``sorted_values`` must be sorted and non-empty."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    rank = (len(sorted_values) - 1) * pct / 100.0
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def summarize_ms(seconds: list[float]) -> dict[str, float] | None:
    """p50/p99/max/mean in milliseconds of samples given in seconds, or None without samples."""
    if not seconds:
        return None
    values = sorted(seconds)
    return {
        "p50": round(percentile(values, 50) * 1000, 3),
        "p99": round(percentile(values, 99) * 1000, 3),
        "max": round(values[-1] * 1000, 3),
        "mean": round(statistics.fmean(values) * 1000, 3),
    }


def median_or_none(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None
