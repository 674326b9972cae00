"""The per-variant counters a canary keeps in Redis, and how one request or score adds to them.

Everything is a sum, so replicas add their increments with HINCRBY / HINCRBYFLOAT and the totals are exact
whatever the interleaving. Latency and time to first token go to fixed histogram buckets (non-cumulative
counts; the last bucket is +Inf), from which quantiles are interpolated the way Prometheus'
``histogram_quantile`` does. Means keep a sum of squares too, for the Welch test.

Field names (one hash per canary and variant)::

    requests ok errors cancelled dropped error:<code>
    latency_sum latency_sq latency_hist:<i>       ttft_count ttft_sum ttft_bucket:<i>
    tokens_n input_tokens output_tokens           cost_n cost
    score:<name>:n score:<name>:sum score:<name>:sq score:<name>:judged score:<name>:passed
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from runtime.canary.state import CounterDelta

__all__ = [
    "LATENCY_BOUNDS",
    "LATENCY_FIELD",
    "TTFT_BOUNDS",
    "Accumulator",
    "Observation",
    "ScoreObservation",
    "histogram",
    "quantile",
]

# Seconds, doubling from a quarter of a millisecond (a fast agent's requests take a fraction of one: a first
# bucket of 10 ms reported them at 5 ms) past five minutes (agents run longer than single LLM calls). Its
# field is ``latency_hist``: the earlier ``latency_bucket`` fields counted in other buckets.
LATENCY_BOUNDS: tuple[float, ...] = tuple(0.00025 * 2**k for k in range(22))  # 0.00025 ... 524.288
LATENCY_FIELD = "latency_hist"
TTFT_BOUNDS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0,
)  # fmt: skip

Key = tuple[str, str]  # (canary id, variant)


@dataclass(frozen=True, slots=True)
class Observation:
    """What one finished request tells the canary (taken from the Call at its end)."""

    canary_id: str
    variant: str
    status: str
    error_code: str | None
    latency: float
    ttft: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost: float | None


@dataclass(frozen=True, slots=True)
class ScoreObservation:
    """One online-evaluation score. ``canary_id`` is None until the recorder attributes it to the canary
    running on ``model`` (scores may come from a worker process that routes nothing)."""

    model: str
    variant: str
    name: str
    value: float
    passed: bool | None
    canary_id: str | None = None
    model_version: str | None = None
    trace_id: str | None = None  # ``tr-<32 hex>``: a request forced to its variant is not counted (recorder)


class Accumulator:
    """Sums observations into per-(canary, variant) increments; its size is bounded by the field names."""

    def __init__(self) -> None:
        self.ints: defaultdict[Key, Counter[str]] = defaultdict(Counter)
        self.floats: defaultdict[Key, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.events = 0

    def add(self, item: Observation | ScoreObservation) -> None:
        self.events += 1
        if isinstance(item, ScoreObservation):
            self._score(item)
        else:
            self._request(item)

    def dropped(self, key: Key, count: int) -> None:
        self.ints[key]["dropped"] += count

    def deltas(self) -> dict[Key, CounterDelta]:
        keys = set(self.ints) | set(self.floats)
        return {k: (dict(self.ints.get(k, {})), dict(self.floats.get(k, {}))) for k in keys}

    def _request(self, o: Observation) -> None:
        key = (o.canary_id, o.variant)
        ints, floats = self.ints[key], self.floats[key]
        ints["requests"] += 1
        if o.status == "OK":
            ints["ok"] += 1
        elif o.status == "CANCELLED":
            ints["cancelled"] += 1
        else:
            ints["errors"] += 1
            ints[f"error:{o.error_code or o.status.lower()}"] += 1
        floats["latency_sum"] += o.latency
        floats["latency_sq"] += o.latency * o.latency
        ints[f"{LATENCY_FIELD}:{bisect.bisect_left(LATENCY_BOUNDS, o.latency)}"] += 1
        if o.ttft is not None:
            ints["ttft_count"] += 1
            floats["ttft_sum"] += o.ttft
            ints[f"ttft_bucket:{bisect.bisect_left(TTFT_BOUNDS, o.ttft)}"] += 1
        if o.input_tokens is not None or o.output_tokens is not None:
            ints["tokens_n"] += 1
            ints["input_tokens"] += o.input_tokens or 0
            ints["output_tokens"] += o.output_tokens or 0
        if o.cost is not None:
            ints["cost_n"] += 1
            floats["cost"] += o.cost

    def _score(self, s: ScoreObservation) -> None:
        if s.canary_id is None:  # never attributed to a canary: nothing to add it to
            return
        key = (s.canary_id, s.variant)
        prefix = f"score:{s.name}:"
        self.ints[key][prefix + "n"] += 1
        self.floats[key][prefix + "sum"] += s.value
        self.floats[key][prefix + "sq"] += s.value * s.value
        if s.passed is not None:
            self.ints[key][prefix + "judged"] += 1
            self.ints[key][prefix + "passed"] += int(s.passed)


def histogram(counters: Mapping[str, float], name: str, bounds: Sequence[float]) -> list[int]:
    field = LATENCY_FIELD if name == "latency" else f"{name}_bucket"
    return [int(counters.get(f"{field}:{i}", 0)) for i in range(len(bounds) + 1)]


def quantile(q: float, bounds: Sequence[float], counts: Sequence[int]) -> float | None:
    """Interpolate the ``q`` quantile inside its bucket; the +Inf bucket answers its lower bound."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            if i == len(bounds):
                return bounds[-1]
            lower = bounds[i - 1] if i else 0.0
            return lower + (bounds[i] - lower) * (rank - seen) / count
        seen += count
    return bounds[-1]
