"""Counts of the scoring pipeline, read by ``/metrics`` at scrape time.

The evaluation part must not import observability (the parts stay independent), so it keeps plain counters
and describes them as :class:`MetricSpec`; the composition root registers each spec as a callback metric in
the app's Prometheus registry. Increments take a lock: they come from the event loop and from scorer threads.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = ["SKIP_REASONS", "MetricSpec", "ScoringCounters"]

# Why a sampled request was not scored: the local queue or the Redis buffer was full, Redis refused the job,
# the stream was past its length bound, or the process was shutting down with jobs still queued.
SKIP_REASONS = ("queue_full", "redis_error", "stream_full", "shutdown")

Samples = Iterable[tuple[Sequence[str], float]]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """A counter or gauge: name, help, kind (``counter``/``gauge``), label names, and how to read it."""

    name: str
    documentation: str
    kind: str
    labelnames: tuple[str, ...]
    read: Callable[[], Samples]


class ScoringCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sampled = 0
        self.skipped: Counter[str] = Counter()
        self.scored: Counter[str] = Counter()
        self.failed: Counter[tuple[str, str]] = Counter()
        self.jobs_failed = 0
        self._depth: Callable[[], int] = lambda: 0

    def count_sampled(self) -> None:
        with self._lock:
            self.sampled += 1

    def count_skipped(self, reason: str, amount: int = 1) -> None:
        with self._lock:
            self.skipped[reason] += amount

    def count_scored(self, scorer: str, failure: str | None) -> None:
        with self._lock:
            if failure is None:
                self.scored[scorer] += 1
            else:
                self.failed[(scorer, failure)] += 1

    def count_job_failed(self) -> None:
        with self._lock:
            self.jobs_failed += 1

    def watch_depth(self, depth: Callable[[], int]) -> None:
        self._depth = depth

    def specs(self) -> list[MetricSpec]:
        def snapshot_skipped() -> Samples:
            with self._lock:
                return [((reason,), float(n)) for reason, n in sorted(self.skipped.items())]

        def snapshot_scored() -> Samples:
            with self._lock:
                return [((name,), float(n)) for name, n in sorted(self.scored.items())]

        def snapshot_failed() -> Samples:
            with self._lock:
                return [((name, why), float(n)) for (name, why), n in sorted(self.failed.items())]

        return [
            MetricSpec(
                "runtime_scoring_sampled",
                "Requests sampled for scoring and queued.",
                "counter",
                (),
                lambda: [((), float(self.sampled))],
            ),
            MetricSpec(
                "runtime_scoring_skipped",
                "Sampled requests not scored, by reason (queue_full, redis_error, stream_full, shutdown).",
                "counter",
                ("reason",),
                snapshot_skipped,
            ),
            MetricSpec(
                "runtime_scoring_scored",
                "Scores recorded without error, by scorer.",
                "counter",
                ("scorer",),
                snapshot_scored,
            ),
            MetricSpec(
                "runtime_scoring_failed",
                "Scores recorded with an error, by scorer and failure (error, timeout, bad_type).",
                "counter",
                ("scorer", "reason"),
                snapshot_failed,
            ),
            MetricSpec(
                "runtime_scoring_jobs_failed",
                "Scoring jobs whose results could not be stored (retried from a stream, else lost).",
                "counter",
                (),
                lambda: [((), float(self.jobs_failed))],
            ),
            MetricSpec(
                "runtime_scoring_queue_depth",
                "Sampled requests waiting to be scored in this process.",
                "gauge",
                (),
                lambda: [((), float(self._depth()))],
            ),
        ]
