"""``ScoringEngine``: one job in, its assessments stored, exported and announced.

The same engine runs behind the in-process queue, in ``runtime worker`` and in offline runs. For a job it
resolves the scorers, waits (bounded) for the trace when a scorer takes ``trace``, runs the scorers
concurrently (each isolated by :class:`ScorerRunner`), stores the results, exports them as
``gen_ai.evaluation.result`` events (once the trace is stored) and calls the ``on_assessment`` hooks.

A scorer's failure is data (an assessment with ``error``). Failing to *store* is not: ``process`` raises
:class:`StoreFailed`, so a stream consumer leaves the job pending for a retry. Results already written are
not written twice (see :mod:`runtime.evaluation.results` for why ids are deterministic).

Store calls go through :data:`~runtime.store_calls.background_calls` (daemon threads, a deadline, a budget
of their own), never the event loop's default executor, whose threads Python joins at shutdown: a write
waiting on a locked SQLite file kept a stopped server alive until its 30 s busy timeout. A call past its
deadline, or refused while the budget is full, fails as the store being down does.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from opentelemetry.trace import Tracer

from registry.entities import Assessment, SourceType, SpanRecord, TraceRecord
from registry.errors import AlreadyExists, NotFound, RegistryError
from runtime.evaluation.catalog import ScorerCatalog
from runtime.evaluation.counters import ScoringCounters
from runtime.evaluation.execution import Outcome, ScorerRunner
from runtime.evaluation.export import export_assessments
from runtime.evaluation.job import ScorerRef, ScoringJob
from runtime.evaluation.judge_client import JudgeClient
from runtime.evaluation.results import error_feedback, to_assessment
from runtime.evaluation.scorer import Scorer
from runtime.evaluation.trace_view import Trace
from runtime.store_calls import background_calls

__all__ = ["AssessmentHook", "AssessmentStore", "JobResult", "ScoringEngine", "StoreFailed", "announce"]

log = logging.getLogger("runtime.evaluation")

_MAX_EXPORTS = (
    1000  # span exports waiting for their trace at once; beyond, scores are stored but not exported
)

# Called with every newly stored assessment (the canary feeds its statistics from here). Must not block;
# the assessment's metadata carries model_id, model_version and variant.
AssessmentHook = Callable[[Assessment], None]


class AssessmentStore(Protocol):
    def log_assessment(self, assessment: Assessment) -> Assessment: ...

    def get_trace(self, trace_id: str) -> tuple[TraceRecord, list[SpanRecord]]: ...


def announce(hooks: list[AssessmentHook], assessment: Assessment) -> None:
    """Call every hook; one that raises is logged and the others still run."""
    for hook in hooks:
        try:
            hook(assessment)
        except Exception:
            log.exception("on_assessment hook %r failed", hook)


class StoreFailed(Exception):
    """The results of a job could not be stored; the job should be retried later."""


@dataclass(slots=True)
class JobResult:
    stored: list[Assessment] = field(default_factory=list)
    duplicates: int = 0
    failures: int = 0
    skipped: list[str] = field(default_factory=list)


class ScoringEngine:
    def __init__(
        self,
        catalog: ScorerCatalog,
        store: AssessmentStore,
        *,
        runner: ScorerRunner | None = None,
        judge: JudgeClient | None = None,
        tracer: Tracer | None = None,
        trace_wait: float = 10.0,
        trace_poll: float = 0.2,
        counters: ScoringCounters | None = None,
        hooks: list[AssessmentHook] | None = None,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.runner = runner or ScorerRunner()
        self.judge = judge
        self.tracer = tracer
        self.trace_wait = trace_wait
        self.trace_poll = trace_poll
        self.counters = counters or ScoringCounters()
        self.hooks: list[AssessmentHook] = hooks if hooks is not None else []
        self._exports: set[asyncio.Task[None]] = set()

    async def aclose(self) -> None:
        """Let pending span exports finish (bounded by ``trace_wait``), then close the judge's client."""
        if self._exports:
            await asyncio.wait(self._exports, timeout=self.trace_wait + 1.0)
            for task in self._exports:
                task.cancel()
            await asyncio.gather(*self._exports, return_exceptions=True)
        if self.judge is not None:
            await self.judge.aclose()

    async def process(self, job: ScoringJob) -> JobResult:
        result = JobResult()
        wanted: list[tuple[ScorerRef, Scorer | None, str | None]] = []
        for ref, scorer, error in map(self._resolve, job.scorers):
            if scorer is not None and scorer.needs_expectations and job.expectations is None:
                result.skipped.append(scorer.name)  # nothing to compare against: not a failure
            else:
                wanted.append((ref, scorer, error))
        needs_trace = any(s is not None and s.needs_trace for _, s, _ in wanted)
        stored_trace = await self._wait_for_trace(job.trace_id) if needs_trace else None
        trace = stored_trace or Trace(job.trace_record(), [], stored=False)
        outcomes = await asyncio.gather(*(self._score(s, e, ref, job, trace) for ref, s, e in wanted))
        span_id = trace.root.span_id if trace.root is not None else None
        for (ref, scorer, _), outcome in zip(wanted, outcomes, strict=True):
            await self._record(job, ref, scorer, outcome, span_id, result)
        if self.tracer is not None and result.stored:
            if span_id is not None:
                export_assessments(self.tracer, job.trace_id, span_id, result.stored)
            elif not needs_trace:
                self._export_later(job.trace_id, result.stored)
        return result

    def _export_later(self, trace_id: str, assessments: list[Assessment]) -> None:
        """Export once the trace is stored, without holding the job's worker slot meanwhile.

        A job whose scorers need no trace is scored and stored at once; only its span events wait for the
        root span to attach to. A trace that never arrives (sampled out by OTEL_TRACES_SAMPLER, the store
        down) costs one polling task for ``trace_wait`` seconds, and there are at most ``_MAX_EXPORTS``.
        """
        if len(self._exports) >= _MAX_EXPORTS:
            return
        task = asyncio.create_task(self._export_when_stored(trace_id, assessments))
        self._exports.add(task)
        task.add_done_callback(self._exports.discard)

    async def _export_when_stored(self, trace_id: str, assessments: list[Assessment]) -> None:
        trace = await self._wait_for_trace(trace_id, quiet=True)
        if trace is not None and trace.root is not None and self.tracer is not None:
            export_assessments(self.tracer, trace_id, trace.root.span_id, assessments)

    def _resolve(self, ref: ScorerRef) -> tuple[ScorerRef, Scorer | None, str | None]:
        try:
            return ref, self.catalog.resolve(ref), None
        except (LookupError, TypeError, ValueError) as exc:
            return ref, None, str(exc.args[0]) if exc.args else type(exc).__name__

    async def _score(
        self, scorer: Scorer | None, error: str | None, ref: ScorerRef, job: ScoringJob, trace: Trace
    ) -> Outcome:
        if scorer is None:
            return Outcome([error_feedback(ref.name, error or "unknown scorer")], "error")
        if "judge" in scorer.params and self.judge is None:
            message = "no LLM judge is configured (RUNTIME_JUDGE_BASE_URL, RUNTIME_JUDGE_MODEL)"
            return Outcome([error_feedback(scorer.name, message)], "error")
        available: dict[str, Any] = {
            "inputs": job.inputs,
            "outputs": job.outputs,
            "expectations": job.expectations,
            "trace": trace,
            "judge": self.judge,
        }
        return await self.runner.run(scorer, available)

    async def _record(
        self,
        job: ScoringJob,
        ref: ScorerRef,
        scorer: Scorer | None,
        outcome: Outcome,
        span_id: str | None,
        result: JobResult,
    ) -> None:
        name = scorer.name if scorer is not None else ref.name
        metadata = job.assessment_metadata() | {"sample_rate": ref.rate}
        if outcome.attempts > 1:
            metadata["attempts"] = outcome.attempts
        for feedback in outcome.feedbacks:
            assessment = to_assessment(
                feedback,
                trace_id=job.trace_id,
                scorer_name=name,
                source_type=scorer.source_type if scorer is not None else SourceType.CODE,
                scorer_version=scorer.version if scorer is not None else None,
                span_id=span_id,
                metadata=metadata,
            )
            if await self._store(assessment):
                result.stored.append(assessment)
                self.counters.count_scored(name, outcome.failure)
                result.failures += outcome.failure is not None
                self._announce(assessment)
            else:
                result.duplicates += 1

    async def _store(self, assessment: Assessment) -> bool:
        """True when written now, False when an earlier delivery of the job already wrote it."""
        try:
            await background_calls.call(functools.partial(self.store.log_assessment, assessment))
        except AlreadyExists:
            return False
        except RegistryError as exc:
            self.counters.count_job_failed()
            raise StoreFailed(
                f"could not store assessment {assessment.name} of {assessment.trace_id}: {exc}"
            ) from exc
        return True

    def _announce(self, assessment: Assessment) -> None:
        announce(self.hooks, assessment)

    async def _wait_for_trace(self, trace_id: str, quiet: bool = False) -> Trace | None:
        """Poll the store until the trace is there (spans are exported in batches, about a second later)."""
        deadline = time.monotonic() + self.trace_wait
        while True:
            try:
                record, spans = await background_calls.call(functools.partial(self.store.get_trace, trace_id))
                return Trace(record, spans)
            except NotFound:
                pass
            except RegistryError as exc:
                log.warning("cannot read trace %s: %s", trace_id, exc)
            if time.monotonic() >= deadline:
                log.log(
                    logging.DEBUG if quiet else logging.INFO,
                    "trace %s was not stored within %.1f s; scoring from the request's facts",
                    trace_id,
                    self.trace_wait,
                )
                return None
            await asyncio.sleep(self.trace_poll)
