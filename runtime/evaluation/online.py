"""Online evaluation of a served app, assembled from its settings: the one object the composition root holds.

``build_online_evaluation`` returns an :class:`OnlineEvaluation` with

- ``tap``: a :class:`~runtime.protocol.call.Telemetry` to combine with the app's other telemetry;
- ``hooks``: the ``on_assessment`` list (``Callable[[Assessment], None]``), called for every new score;
- ``counters``: read by ``/metrics`` (see :meth:`ScoringCounters.specs`);
- ``running()``: the lifespan part (queue workers or the stream producer, the attachment watcher).

With ``RUNTIME_SCORING_QUEUE=redis`` (or ``auto`` and ``RUNTIME_REDIS_URL`` set) the app only produces jobs;
``runtime worker`` processes score them. Otherwise the app scores in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from opentelemetry.trace import Tracer

from registry.client import RegistryClient
from registry.entities import Assessment
from runtime.config import Settings
from runtime.errors import BadRequest
from runtime.evaluation.attachments import AttachmentBoard, AttachmentWatcher
from runtime.evaluation.catalog import ScorerCatalog
from runtime.evaluation.counters import ScoringCounters
from runtime.evaluation.engine import AssessmentHook, ScoringEngine, announce
from runtime.evaluation.execution import ScorerRunner
from runtime.evaluation.judge_client import JudgeClient, JudgeConfig
from runtime.evaluation.judge_prompts import RegistryPrompts
from runtime.evaluation.local_queue import LocalQueue
from runtime.evaluation.redis_queue import RedisQueue
from runtime.evaluation.sampling import Attachment
from runtime.evaluation.tap import ScoringTap

__all__ = ["OnlineEvaluation", "build_engine", "build_judge", "build_online_evaluation", "uses_redis"]

log = logging.getLogger("runtime.evaluation")


def uses_redis(settings: Settings) -> bool:
    mode = settings.scoring_queue.strip().lower()
    if mode not in ("auto", "local", "redis"):
        raise ValueError(
            f"RUNTIME_SCORING_QUEUE must be auto, local or redis, not {settings.scoring_queue!r}"
        )
    if mode == "redis" and not settings.redis_url:
        raise ValueError("RUNTIME_SCORING_QUEUE=redis needs RUNTIME_REDIS_URL")
    return mode == "redis" or (mode == "auto" and bool(settings.redis_url))


def build_judge(settings: Settings, client: RegistryClient | None) -> JudgeClient | None:
    """The LLM judge of ``RUNTIME_JUDGE_*``, or None when no endpoint is configured."""
    if not settings.judge_base_url:
        return None
    if not settings.judge_model:
        raise ValueError("RUNTIME_JUDGE_BASE_URL is set but RUNTIME_JUDGE_MODEL is not")
    prices = JudgeConfig.parse_prices(settings.judge_prices)
    config = JudgeConfig(
        base_url=settings.judge_base_url,
        model=settings.judge_model,
        api_key=settings.judge_api_key,
        timeout=settings.scorer_timeout,
        input_price=prices[0],
        output_price=prices[1],
    )
    return JudgeClient(config, RegistryPrompts(client) if client is not None else None)


def build_engine(
    settings: Settings,
    catalog: ScorerCatalog,
    client: RegistryClient,
    *,
    tracer: Tracer | None = None,
    counters: ScoringCounters | None = None,
    hooks: list[AssessmentHook] | None = None,
    trace_wait: float = 10.0,
) -> ScoringEngine:
    return ScoringEngine(
        catalog,
        client,
        runner=ScorerRunner(timeout=settings.scorer_timeout),
        judge=build_judge(settings, client),
        tracer=tracer,
        trace_wait=trace_wait,
        counters=counters,
        hooks=hooks,
    )


@dataclass(eq=False)
class OnlineEvaluation:
    tap: ScoringTap
    counters: ScoringCounters
    board: AttachmentBoard
    queue: LocalQueue | RedisQueue
    watcher: AttachmentWatcher
    hooks: list[AssessmentHook] = field(default_factory=list)
    engine: ScoringEngine | None = None
    drain_timeout: float = 10.0

    def announce(self, assessment: Assessment) -> None:
        """Tell the hooks about an assessment recorded outside the engine (human feedback)."""
        announce(self.hooks, assessment)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Start scoring; on exit drain what is queued (bounded) and close the judge's connections."""
        await self.queue.start()
        watcher = asyncio.create_task(self.watcher.run(), name="scorer-attachments")
        try:
            yield
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await self.queue.stop(self.drain_timeout)
            if self.engine is not None:
                await self.engine.aclose()


def build_online_evaluation(
    settings: Settings, client: RegistryClient, *, tracer: Tracer | None = None, tracing: bool = True
) -> OnlineEvaluation:
    """``tracing`` says whether traces reach the store: without it, no job waits for one.

    A bad scorers file or setting fails here, at startup, as a :class:`~runtime.errors.BadRequest`.
    """
    try:
        catalog = ScorerCatalog.from_file(settings.scorers or None)
        redis = uses_redis(settings)
        build_judge(settings, None)
    except Exception as exc:
        raise BadRequest(f"online evaluation: {type(exc).__name__}: {exc}") from exc
    static = [Attachment(s.name, settings.sample_rate) for s in catalog.user_scorers()]
    counters = ScoringCounters()
    hooks: list[AssessmentHook] = []
    board = AttachmentBoard(static)
    engine: ScoringEngine | None = None
    queue: LocalQueue | RedisQueue
    if redis:
        queue = RedisQueue(
            settings.redis_url, settings.scoring_stream, counters, buffer=settings.scoring_queue_size
        )
    else:
        engine = build_engine(
            settings,
            catalog,
            client,
            tracer=tracer,
            counters=counters,
            hooks=hooks,
            trace_wait=10.0 if tracing else 0.0,
        )
        queue = LocalQueue(
            engine, counters, maxsize=settings.scoring_queue_size, workers=settings.scoring_workers
        )
    if static:
        log.info(
            "scoring %s at rate %g (%s)",
            ", ".join(a.name for a in static),
            settings.sample_rate,
            "redis stream" if engine is None else "in-process",
        )
    return OnlineEvaluation(
        tap=ScoringTap(board, queue, counters),
        counters=counters,
        board=board,
        queue=queue,
        watcher=AttachmentWatcher(board, client, settings.scorer_poll_interval),
        hooks=hooks,
        engine=engine,
        drain_timeout=min(settings.grace_period, 10.0),
    )
