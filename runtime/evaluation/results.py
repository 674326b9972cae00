"""What a scorer returned -> validated :class:`Feedback` -> stored :class:`~registry.entities.Assessment`.

Assessment ids are derived from (trace, scorer, feedback name), not drawn at random: a job scored twice
(a worker killed after writing half its results, a stream entry delivered again) writes the same ids, and
the store's uniqueness turns the second write into a no-op. That is what makes "scored exactly once"
hold across worker crashes without any coordination between workers.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from pydantic import JsonValue

from registry.entities import Assessment, SourceType
from runtime.evaluation.scorer import Feedback, Scorer

__all__ = ["BadScore", "assessment_id", "error_feedback", "to_assessment", "to_feedbacks"]

MAX_TEXT = 10_000
MAX_ITEMS = 100


class BadScore(TypeError):
    """The scorer returned something that is not a score; recorded as the assessment's error."""


def _check_value(value: Any, where: str) -> bool | float | str | None:
    if value is None or isinstance(value, bool | str):
        return value[:MAX_TEXT] if isinstance(value, str) else value
    if isinstance(value, int | float):
        number = float(value)
        if not math.isfinite(number):
            raise BadScore(f"{where} returned {value!r}; a score must be a finite number")
        return number
    raise BadScore(
        f"{where} returned {type(value).__name__}; return a bool, number, string, Feedback or a list of them"
    )


def _check_metadata(metadata: Mapping[str, Any], where: str) -> dict[str, JsonValue]:
    try:
        checked: dict[str, JsonValue] = json.loads(json.dumps(dict(metadata), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise BadScore(f"{where}: Feedback metadata must be JSON ({exc})") from exc
    return checked


def _one(item: Any, where: str, default_name: str) -> Feedback:
    if isinstance(item, Feedback):
        if item.value is None and item.error is None:
            raise BadScore(f"{where} returned a Feedback without a value")
        return Feedback(
            value=_check_value(item.value, where),
            rationale=item.rationale[:MAX_TEXT] if item.rationale else None,
            metadata=_check_metadata(item.metadata, where),
            name=item.name or default_name,
            error=item.error,
        )
    if item is None:
        raise BadScore(f"{where} returned None; return a bool, number, string or Feedback")
    return Feedback(value=_check_value(item, where), name=default_name)


def to_feedbacks(result: Any, scorer: Scorer) -> list[Feedback]:
    """Validate a scorer's return value; raise :class:`BadScore` for anything that is not a score."""
    where = f"scorer {scorer.name!r}"
    if not isinstance(result, list | tuple):
        return [_one(result, where, scorer.name)]
    if not result or len(result) > MAX_ITEMS:
        raise BadScore(f"{where} returned a list of {len(result)}; give 1 to {MAX_ITEMS} scores")
    feedbacks = [_one(item, where, f"{scorer.name}.{i}") for i, item in enumerate(result)]
    names = [f.name for f in feedbacks]
    if len(set(names)) != len(names):
        raise BadScore(f"{where} returned several scores with the same name: {names}")
    return feedbacks


def error_feedback(scorer_name: str, error: str) -> Feedback:
    return Feedback(name=scorer_name, error=error[:MAX_TEXT])


def assessment_id(trace_id: str, scorer_name: str, feedback_name: str) -> str:
    digest = hashlib.sha256(f"{trace_id}\0{scorer_name}\0{feedback_name}".encode()).hexdigest()
    return f"a-{digest[:32]}"


def to_assessment(
    feedback: Feedback,
    *,
    trace_id: str,
    scorer_name: str,
    source_type: SourceType,
    scorer_version: str | None,
    span_id: str | None = None,
    metadata: Mapping[str, JsonValue] | None = None,
) -> Assessment:
    name = feedback.name or scorer_name
    return Assessment(
        assessment_id=assessment_id(trace_id, scorer_name, name),
        trace_id=trace_id,
        span_id=span_id,
        name=name,
        value=feedback.value,
        rationale=feedback.rationale,
        source_type=source_type,
        source_id=scorer_name,
        scorer_version=scorer_version,
        error=feedback.error,
        metadata={**(metadata or {}), **feedback.metadata},
    )
