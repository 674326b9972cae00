"""Run one scorer so that nothing it does can hurt the process: errors, hangs and bad return values.

- An exception is retried with exponential backoff (a judge endpoint that blips should not cost a score),
  then recorded as the assessment's error. An exception with ``retryable = False`` is recorded at once
  (the judge client has done its own retries by then).
- A timeout is not retried: a scorer that hangs once will usually hang again, and each try costs the
  whole timeout. An async scorer is cancelled. A sync one cannot be: Python has no way to stop a thread.
  It runs in a *daemon* thread, so a hung one neither blocks the worker nor keeps the process from
  exiting, and the threads are bounded, so hung scorers cannot pile up threads without limit: once every
  slot is held by a hung thread, later sync scorers time out waiting for one (and say so).
- A return value that is not a score is recorded as an error, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runtime.evaluation.results import BadScore, error_feedback, to_feedbacks
from runtime.evaluation.scorer import Feedback, Scorer

__all__ = ["Outcome", "ScorerRunner"]

log = logging.getLogger("runtime.evaluation")


@dataclass(frozen=True, slots=True)
class Outcome:
    feedbacks: list[Feedback]
    failure: str | None = None  # None, "error", "timeout" or "bad_type": the label of the failure counter
    attempts: int = 1


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ScorerRunner:
    def __init__(
        self,
        *,
        timeout: float = 30.0,
        retries: int = 2,
        backoff: float = 0.5,
        max_threads: int = 16,
    ) -> None:
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self._max_threads = max_threads
        self._slots: asyncio.Semaphore | None = None

    async def run(self, scorer: Scorer, available: Mapping[str, Any]) -> Outcome:
        kwargs = scorer.arguments(available)
        timeout = scorer.timeout or self.timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                async with asyncio.timeout(timeout):
                    result = await self._call(scorer, kwargs)
                return Outcome(to_feedbacks(result, scorer), attempts=attempt)
            except TimeoutError:
                message = f"scorer {scorer.name!r} did not finish within {timeout:g} s"
                return Outcome([error_feedback(scorer.name, message)], "timeout", attempt)
            except BadScore as exc:
                return Outcome([error_feedback(scorer.name, str(exc))], "bad_type", attempt)
            except Exception as exc:
                if attempt > self.retries or not getattr(exc, "retryable", True):
                    log.warning(
                        "scorer %s failed after %d attempts: %s", scorer.name, attempt, _describe(exc)
                    )
                    return Outcome([error_feedback(scorer.name, _describe(exc))], "error", attempt)
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))

    async def _call(self, scorer: Scorer, kwargs: dict[str, Any]) -> Any:
        if scorer.is_async:
            return await scorer.fn(**kwargs)
        return await self._in_daemon_thread(scorer.name, scorer.fn, kwargs)

    async def _in_daemon_thread(self, name: str, fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_threads)
        slots = self._slots
        await slots.acquire()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        context = contextvars.copy_context()

        def settle(ok: bool, value: Any) -> None:
            slots.release()
            if future.done():  # the caller timed out and went on
                return
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

        def work() -> None:
            try:
                outcome: tuple[bool, Any] = (True, context.run(fn, **kwargs))
            except Exception as exc:
                outcome = (False, exc)
            except BaseException as exc:  # SystemExit in a scorer must not travel into the worker's loop
                outcome = (False, RuntimeError(f"the scorer raised {type(exc).__name__}"))
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is waiting any more
                loop.call_soon_threadsafe(settle, *outcome)

        threading.Thread(target=work, name=f"scorer-{name}", daemon=True).start()
        return await future
