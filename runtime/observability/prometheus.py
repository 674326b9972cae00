"""A small Prometheus registry: counters, gauges and histograms rendered in the text exposition format 0.0.4.

Why not ``prometheus_client``: its ``labels()`` lookup, per-sample locking and multiprocess machinery cost
more per request than the whole rest of our telemetry, and the runtime needs four metric kinds and one
format. Here the request path pays for one cached child lookup (callers keep the child) and a few plain
attribute updates; everything else (cumulative buckets, escaping, formatting) happens at scrape time.
Label strings are escaped once, when a child is created.

Updates take no lock. The contract: each child has one writing thread at a time (the request series are
written by the event loop that serves the requests, the store write histogram by the exporter thread), so
no increment is lost; readers (the scrape) copy values with single GIL-atomic reads, so a histogram read
while it is being updated may show the new observation in its buckets and not yet in its sum, never a
torn number. A lock per update cost more than the update itself, on every request. Creating a child
(``labels``) is locked: two threads may ask for the same one.

Several processes (uvicorn workers) can be rendered as one: each takes a :meth:`Registry.snapshot`
(plain JSON values) and :meth:`Registry.render` adds the snapshots of the others to its own, as
Prometheus' multiprocess mode does: counters and histograms summed, gauges summed over live processes only.
"""

from __future__ import annotations

import collections
import math
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

__all__ = [
    "CONTENT_TYPE",
    "CallbackMetric",
    "Counter",
    "Gauge",
    "Histogram",
    "Registry",
    "Snapshot",
    "bucket_bounds",
    "labels_text",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# One process's metric values: metric name -> escaped label text -> a counter's or gauge's value, or a
# histogram's [per-bucket counts (not cumulative, +Inf last), sum]. Plain JSON.
Snapshot = dict[str, dict[str, Any]]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(value: str) -> str:
    """HELP text escapes backslashes and newlines only (label values also escape quotes)."""
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def labels_text(names: Sequence[str], values: Sequence[str]) -> str:
    """The label part of a sample (``a="x",b="y"``), escaped: how a :data:`Snapshot` names a child."""
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))


def bucket_bounds(buckets: Iterable[float]) -> tuple[float, ...]:
    """A histogram's upper bounds as it keeps them: sorted floats, no ``+Inf`` (always the last bucket)."""
    return tuple(sorted(float(b) for b in buckets if b != math.inf))


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if isinstance(value, int) or value.is_integer():
        return str(int(value))
    return repr(float(value))


def _braced(text: str) -> str:
    return "{" + text + "}" if text else ""


class _Child:
    __slots__ = ("labels",)

    def __init__(self, labels: str) -> None:
        self.labels = labels


class CounterChild(_Child):
    __slots__ = ("value",)

    def __init__(self, labels: str) -> None:
        super().__init__(labels)
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class GaugeChild(CounterChild):
    __slots__ = ()

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount

    def set(self, value: float) -> None:
        self.value = value


class HistogramChild(_Child):
    __slots__ = ("_bounds", "_counts", "_sum")

    def __init__(self, labels: str, bounds: tuple[float, ...]) -> None:
        super().__init__(labels)
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative; the last one is +Inf
        self._sum = 0.0

    def observe(self, value: float) -> None:
        self._counts[bisect_left(self._bounds, value)] += 1  # first bound >= value: buckets are "le"
        self._sum += value

    def snapshot(self) -> tuple[list[int], float]:
        return self._counts.copy(), self._sum


C = TypeVar("C", bound=_Child)
M = TypeVar("M", "Counter", "Gauge", "Histogram", "CallbackMetric")


class _Family(Generic[C]):
    kind = "untyped"
    suffix = ""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], C] = {}
        self._lock = threading.Lock()

    def labels(self, *values: str) -> C:
        """The child for these label values; cheap after the first call, but callers should keep it."""
        child = self._children.get(values)
        if child is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
            with self._lock:
                child = self._children.get(values)
                if child is None:
                    child = self._new_child(labels_text(self.labelnames, values))
                    self._children[values] = child
        return child

    def _new_child(self, labels: str) -> C:
        raise NotImplementedError

    def children(self) -> list[C]:
        return list(self._children.values())

    def snapshot(self) -> dict[str, Any]:
        return {child.labels: self._value(child) for child in self.children()}

    def _value(self, child: C) -> Any:
        raise NotImplementedError

    def render(self, values: Mapping[str, Any], out: list[str]) -> None:
        family = self.name + "_total" if self.kind == "counter" else self.name
        out.append(f"# HELP {family} {_escape_help(self.documentation)}")
        out.append(f"# TYPE {family} {self.kind}")
        for labels, value in values.items():
            self._render_child(labels, value, out)

    def _render_child(self, labels: str, value: Any, out: list[str]) -> None:
        out.append(f"{self.name}{_braced(labels)} {_number(value)}")


class Counter(_Family[CounterChild]):
    """Monotonic count, named without ``_total``; the text format names the series (and its HELP/TYPE
    lines, as Prometheus' own clients do in format 0.0.4) with the suffix."""

    kind = "counter"

    def _new_child(self, labels: str) -> CounterChild:
        return CounterChild(labels)

    def _value(self, child: CounterChild) -> float:
        return child.value

    def _render_child(self, labels: str, value: Any, out: list[str]) -> None:
        out.append(f"{self.name}_total{_braced(labels)} {_number(value)}")


class Gauge(_Family[GaugeChild]):
    kind = "gauge"

    def _new_child(self, labels: str) -> GaugeChild:
        return GaugeChild(labels)

    def _value(self, child: GaugeChild) -> float:
        return child.value


class Histogram(_Family[HistogramChild]):
    kind = "histogram"

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], buckets: Iterable[float]
    ) -> None:
        super().__init__(name, documentation, labelnames)
        self.bounds = bucket_bounds(buckets)
        self._le = [repr(b) for b in self.bounds]

    def _new_child(self, labels: str) -> HistogramChild:
        return HistogramChild(labels, self.bounds)

    def _value(self, child: HistogramChild) -> list[Any]:
        counts, total = child.snapshot()
        return [counts, total]

    def _render_child(self, labels: str, value: Any, out: list[str]) -> None:
        counts, total = value
        prefix = labels + "," if labels else ""
        running = 0
        for le, count in zip([*self._le, "+Inf"], counts, strict=True):
            running += count
            out.append(f'{self.name}_bucket{{{prefix}le="{le}"}} {running}')
        out.append(f"{self.name}_sum{_braced(labels)} {_number(total)}")
        out.append(f"{self.name}_count{_braced(labels)} {running}")


class CallbackMetric:
    """A counter or gauge whose samples are read at scrape time: queue depths, counts kept elsewhere."""

    def __init__(
        self,
        name: str,
        documentation: str,
        kind: str,
        labelnames: Sequence[str],
        read: Callable[[], Iterable[tuple[Sequence[str], float]]],
    ) -> None:
        if kind not in ("counter", "gauge"):
            raise ValueError(f"unsupported callback metric kind {kind!r}")
        self.name = name
        self.documentation = documentation
        self.kind = kind
        self.labelnames = tuple(labelnames)
        self._read = read

    def snapshot(self) -> dict[str, Any]:
        return {labels_text(self.labelnames, values): value for values, value in self._read()}

    def render(self, values: Mapping[str, Any], out: list[str]) -> None:
        sample = f"{self.name}_total" if self.kind == "counter" else self.name
        out.append(f"# HELP {sample} {_escape_help(self.documentation)}")
        out.append(f"# TYPE {sample} {self.kind}")
        for labels, value in values.items():
            out.append(f"{sample}{_braced(labels)} {_number(value)}")


class Registry:
    """Metrics in registration order; ``render`` is safe to call while other threads update them.

    Besides its children, a registry holds values counted elsewhere and handed over as snapshots of
    increments (:meth:`add`; the trace writer process folds the request metrics of the spans it writes,
    see :mod:`runtime.observability.root_metrics`): kept summed, and added to this process's own values
    wherever they are read (:meth:`snapshot`, so :meth:`render` and other workers too)."""

    def __init__(self) -> None:
        self._metrics: list[Counter | Gauge | Histogram | CallbackMetric] = []
        self._added: collections.deque[Snapshot] = collections.deque()  # handed over, not yet summed
        self._folded: Snapshot = {}
        self._fold_lock = threading.Lock()

    def register(self, metric: M) -> M:
        if any(m.name == metric.name for m in self._metrics):
            raise ValueError(f"metric {metric.name} is already registered")
        self._metrics.append(metric)
        return metric

    def add(self, increments: Snapshot) -> None:
        """Count ``increments`` (counters and histograms only) as this process's own; from any thread."""
        self._added.append(increments)

    def snapshot(self) -> Snapshot:
        """This process's values, to be rendered by another process along with its own."""
        values = {metric.name: metric.snapshot() for metric in self._metrics}
        with self._fold_lock:
            added, folded = self._added, self._folded
            while added:
                for name, increments in added.popleft().items():
                    _add(folded.setdefault(name, {}), increments)
            for name, increments in folded.items():
                mine = values.get(name)
                if mine is not None:
                    _add(mine, increments)
        return values

    def render(self, others: Iterable[tuple[Snapshot, bool]] = ()) -> bytes:
        """The text exposition; with ``others`` ((snapshot, still running) of other processes serving the
        same app), of all of them together. A process that stopped keeps its counts (totals never go
        down), not its gauges (its requests are no longer in flight)."""
        merged = self.snapshot()
        for snapshot, live in others:
            for metric in self._metrics:
                if live or metric.kind != "gauge":
                    _add(merged[metric.name], snapshot.get(metric.name))
        out: list[str] = []
        for metric in self._metrics:
            metric.render(merged[metric.name], out)
        out.append("")
        return "\n".join(out).encode()


def _add(into: dict[str, Any], values: Any) -> None:
    """Add another process's values of one metric to ``into`` (what does not fit, a changed bucket layout
    or a value of the wrong type, is skipped rather than rendered wrong)."""
    if not isinstance(values, dict):
        return
    for labels, value in values.items():
        mine = into.get(labels)
        if isinstance(value, int | float):
            if mine is None or isinstance(mine, int | float):
                into[labels] = (mine or 0) + value
        elif isinstance(value, list) and len(value) == 2 and isinstance(value[0], list):
            counts, total = value
            if mine is None:
                into[labels] = [list(counts), total]
            elif isinstance(mine, list) and len(mine[0]) == len(counts):
                into[labels] = [[a + b for a, b in zip(mine[0], counts, strict=True)], mine[1] + total]
