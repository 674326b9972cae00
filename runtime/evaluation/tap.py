"""``ScoringTap``: the evaluation part's :class:`~runtime.protocol.call.Telemetry`.

The serving layer hands every finished call to its telemetry; the composition root combines this tap with
the tracing telemetry, so the evaluation part sees calls without serving or observability knowing it
exists. At ``end`` the tap asks the attachment board which scorers sample this call and, if any, offers a
job to the queue. Both steps are memory-only and cannot block; a full queue counts the job as skipped.
"""

from __future__ import annotations

import logging
from typing import Protocol

from runtime.evaluation.attachments import AttachmentBoard
from runtime.evaluation.counters import ScoringCounters
from runtime.evaluation.job import ScoringJob
from runtime.protocol.call import Call

__all__ = ["JobSink", "ScoringTap"]

log = logging.getLogger("runtime.evaluation")


class JobSink(Protocol):
    def offer(self, job: ScoringJob) -> bool:
        """Queue the job without blocking; False (and counted as skipped) when there is no room."""
        ...


class ScoringTap:
    def __init__(self, board: AttachmentBoard, sink: JobSink, counters: ScoringCounters) -> None:
        self.board = board
        self.sink = sink
        self.counters = counters

    def begin(self, call: Call) -> object:
        return None

    def settle(self, call: Call, handle: object) -> None:
        return None

    def end(self, call: Call, handle: object) -> None:
        try:
            refs = self.board.for_call(call)
            if refs and self.sink.offer(ScoringJob.from_call(call, refs)):
                self.counters.count_sampled()
        except Exception:
            log.exception("could not queue request %s for scoring", call.request_id)
