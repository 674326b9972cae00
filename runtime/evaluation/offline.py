"""Offline evaluation: run a model over a dataset, score every row, summarize, and compare two models.

A dataset is JSON Lines, one row per line: ``{"inputs": ..., "expectations": ...}`` (expectations optional).
``inputs`` is a string (one user message), a list of input items, or a request object
(``{"input": [...], "context": ...}``).

The part that runs the agent is a ``predict`` callable supplied by the caller (the CLI runs the model through
the runtime's own serving path, with tracing, so every row leaves a trace linked to its model). This module
owns the rest: reading rows, bounded concurrency, progress, scoring with the same engine as live traffic,
and the statistics. Comparisons pair rows: both models answer the same inputs, so the paired t-test on the
per-row difference removes the variance between rows, which dominates with small datasets.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pydantic import JsonValue

from registry.entities import Assessment
from runtime.evaluation.engine import JobResult, ScoringEngine
from runtime.evaluation.job import ScoringJob
from runtime.evaluation.stats import PairedTest, paired_t_test

__all__ = [
    "Comparison",
    "ModelRun",
    "Progress",
    "Row",
    "compare_runs",
    "format_comparison",
    "read_dataset",
    "run_model",
    "score_run",
]


@dataclass(frozen=True, slots=True)
class Row:
    index: int
    inputs: JsonValue
    expectations: JsonValue = None


def read_dataset(path: str | Path) -> list[Row]:
    """Every row, checked before anything runs: a bad line 900 must not surface after 899 agent calls."""
    rows: list[Row] = []
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc})") from exc
            if not isinstance(data, dict) or data.get("inputs") in (None, "", [], {}):
                raise ValueError(f"{path}:{number}: a row is an object with non-empty 'inputs'")
            rows.append(Row(len(rows), data["inputs"], data.get("expectations")))
    if not rows:
        raise ValueError(f"{path}: the dataset has no rows")
    return rows


class Progress:
    """A one-line progress bar on stderr; a plain line per 10 % when stderr is not a terminal."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(1, total)
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.done = 0
        self._tty = self.stream.isatty()
        self._last_decile = -1

    def advance(self, amount: int = 1) -> None:
        self.done = min(self.total, self.done + amount)
        filled = self.width * self.done // self.total
        line = f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total}"
        if self._tty:
            self.stream.write("\r" + line + ("\n" if self.done == self.total else ""))
        elif (decile := 10 * self.done // self.total) != self._last_decile:
            self._last_decile = decile
            self.stream.write(line + "\n")
        self.stream.flush()


@dataclass(slots=True)
class ModelRun:
    """One model over the dataset: per row, the job to score (None when the agent failed) and its results."""

    label: str
    jobs: list[ScoringJob | None]
    errors: list[str | None]
    results: list[JobResult | None] = field(default_factory=list)

    def assessments(self) -> list[Assessment]:
        return [a for r in self.results if r is not None for a in r.stored]

    def values(self, name: str) -> list[float | None]:
        """Per row, the numeric value of score ``name`` (True = 1), or None when absent or failed."""
        out: list[float | None] = []
        for result in self.results:
            found = [a for a in (result.stored if result else []) if a.name == name and a.error is None]
            value = found[0].value if found else None
            out.append(float(value) if isinstance(value, bool | int | float) else None)
        return out


Predict = Callable[[Row], Awaitable[ScoringJob]]


async def _bounded(
    items: Sequence[Any], work: Callable[[Any], Awaitable[Any]], concurrency: int
) -> list[Any]:
    slots = asyncio.Semaphore(max(1, concurrency))

    async def one(item: Any) -> Any:
        async with slots:
            return await work(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


async def run_model(
    label: str, rows: Sequence[Row], predict: Predict, *, concurrency: int = 4, progress: bool = True
) -> ModelRun:
    """Run the agent on every row; an agent failure is recorded for its row, never raised."""
    bar = Progress(len(rows), f"{label}: running") if progress else None

    async def one(row: Row) -> tuple[ScoringJob | None, str | None]:
        try:
            job: ScoringJob | None = await predict(row)
            error = None
        except Exception as exc:
            job, error = None, getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        if bar is not None:
            bar.advance()
        return job, error

    outcomes = await _bounded(rows, one, concurrency)
    return ModelRun(label, [o[0] for o in outcomes], [o[1] for o in outcomes])


async def score_run(
    run: ModelRun, engine: ScoringEngine, *, concurrency: int = 4, progress: bool = True
) -> ModelRun:
    bar = Progress(len(run.jobs), f"{run.label}: scoring") if progress else None

    async def one(job: ScoringJob | None) -> JobResult | None:
        result = await engine.process(job) if job is not None else None
        if bar is not None:
            bar.advance()
        return result

    run.results = await _bounded(run.jobs, one, concurrency)
    return run


@dataclass(frozen=True, slots=True)
class Comparison:
    name: str
    mean_a: float
    mean_b: float
    test: PairedTest


def compare_runs(a: ModelRun, b: ModelRun) -> list[Comparison]:
    """A paired t-test (B minus A) per numeric or boolean score, over the rows both models scored."""
    names = sorted({x.name for x in a.assessments()} & {x.name for x in b.assessments()})
    found: list[Comparison] = []
    for name in names:
        pairs = [
            (x, y)
            for x, y in zip(a.values(name), b.values(name), strict=True)
            if x is not None and y is not None
        ]
        if len(pairs) < 2:
            continue
        xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
        found.append(Comparison(name, sum(xs) / len(xs), sum(ys) / len(ys), paired_t_test(xs, ys)))
    return found


def format_comparison(rows: list[Comparison], label_a: str, label_b: str) -> str:
    table = [("SCORER", "PAIRS", label_a, label_b, "DIFF (B-A)", "95% CI", "t", "p")]
    for row in rows:
        test = row.test
        interval = "-" if test.low is None else f"[{test.low:+.4g}, {test.high:+.4g}]"
        table.append(
            (
                row.name,
                str(test.n),
                f"{row.mean_a:.4g}",
                f"{row.mean_b:.4g}",
                f"{test.mean_difference:+.4g}",
                interval,
                f"{test.t:.3g}",
                f"{test.p_value:.3g}",
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table
    )
