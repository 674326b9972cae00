"""Online-evaluation scores into canary counters: the ``on_assessment`` hook of the evaluation engine.

The engine calls the hook with every assessment it stores; the assessment's metadata names the model, its
version and the variant of the scored trace. The hook turns the value into a number (``True``/``False`` is a
pass or fail and counts as 1/0 in the mean; a number is a mean-only score; text and errors are skipped) and
hands it to a :class:`~runtime.canary.recorder.StatsRecorder`, which attributes it to the canary running on
that model when it writes to Redis. The same hook serves a ``runtime serve`` process (scoring in-process)
and a ``runtime worker`` (scoring from the Redis stream), since it needs nothing but the recorder:
:func:`score_feed` is the whole canary side of a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from registry.entities import Assessment
from runtime.canary.counters import ScoreObservation
from runtime.canary.recorder import StatsRecorder
from runtime.canary.state import CanaryStore

__all__ = ["assessment_hook", "score_feed", "score_observation"]


def score_observation(assessment: Assessment) -> ScoreObservation | None:
    meta = assessment.metadata
    model, variant, version = meta.get("model_name"), meta.get("variant"), meta.get("model_version")
    value = assessment.value
    if assessment.error or not isinstance(model, str) or not isinstance(variant, str):
        return None
    if isinstance(value, bool):
        number, passed = float(value), value
    elif isinstance(value, int | float):
        number, passed = float(value), None
    else:
        return None
    return ScoreObservation(
        model=model,
        variant=variant,
        name=assessment.name,
        value=number,
        passed=passed,
        model_version=None if version is None else str(version),
        trace_id=assessment.trace_id,
    )


def assessment_hook(recorder: StatsRecorder) -> Callable[[Assessment], None]:
    """An ``on_assessment`` hook feeding ``recorder``; it never blocks (an append to a deque)."""

    def on_assessment(assessment: Assessment) -> None:
        score = score_observation(assessment)
        if score is not None:
            recorder.score(score)

    return on_assessment


@contextlib.asynccontextmanager
async def score_feed(
    redis_url: str, prefix: str, writer_id: str, *, limit: int = 100_000
) -> AsyncIterator[Callable[[Assessment], None]]:
    """An ``on_assessment`` hook for a process that scores but serves nothing (``runtime worker``).

    Its scores are written to the canary counters every quarter second and once more on exit.
    """
    store = CanaryStore.from_url(redis_url, prefix, timeout=0.5)
    recorder = StatsRecorder(store, replica_id=writer_id, limit=limit)
    task = asyncio.create_task(recorder.run(), name="canary-scores")
    try:
        yield assessment_hook(recorder)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await recorder.flush()
        await store.close()
