"""Online and offline evaluation: scorers, LLM judges, sampling, the scoring queue and workers.

A user's scorer::

    from runtime.evaluation import Feedback, scorer

    @scorer
    def concise(outputs: str) -> Feedback:
        return Feedback(len(outputs) < 500, rationale=f"{len(outputs)} characters")

Built-ins live in :mod:`runtime.evaluation.builtin` (code) and :mod:`runtime.evaluation.judges` (LLM).
Serving wires :mod:`runtime.evaluation.online` in the composition root; importing this package does no work.
"""

from __future__ import annotations

from runtime.evaluation.scorer import Feedback, Scorer, scorer
from runtime.evaluation.trace_view import Trace

__all__ = ["Feedback", "Scorer", "Trace", "scorer"]
