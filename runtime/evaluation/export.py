"""Scores as OpenTelemetry ``gen_ai.evaluation.result`` events, on the trace they score.

Choice: one small span ``evaluate`` per scored job, *in the scored trace*, a child of the request's root
span, with one event per assessment. The GenAI conventions ask for evaluation events parented to the
operation they evaluate; a span of the same trace is the closest an out-of-band scorer can get (the root
span has ended long before), and it makes the scores show up in ``GET /api/traces/{id}``, Jaeger, Tempo or
an MLflow server beside the spans they judge. The parent is the stored root span, so a job whose trace was
not stored (tracing off) has nothing to attach to and exports no span; its assessments are stored all the
same. Only the OpenTelemetry API is used: the tracer comes from the composition root.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    TraceFlags,
    Tracer,
    set_span_in_context,
)
from opentelemetry.util.types import AttributeValue

from registry.entities import Assessment

__all__ = ["EVENT_NAME", "event_attributes", "export_assessments"]

log = logging.getLogger("runtime.evaluation")

EVENT_NAME: Final = "gen_ai.evaluation.result"
NAME: Final = "gen_ai.evaluation.name"
SCORE_VALUE: Final = "gen_ai.evaluation.score.value"
SCORE_LABEL: Final = "gen_ai.evaluation.score.label"
EXPLANATION: Final = "gen_ai.evaluation.explanation"
ERROR_TYPE: Final = "error.type"
ASSESSMENT_ID: Final = "runtime.assessment.id"
SOURCE_TYPE: Final = "runtime.assessment.source_type"
SPAN_TYPE: Final = "runtime.span.type"  # the same key the tracing part uses for MLflow's span types


def event_attributes(assessment: Assessment) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {
        NAME: assessment.name,
        ASSESSMENT_ID: assessment.assessment_id,
        SOURCE_TYPE: assessment.source_type.value,
    }
    value = assessment.value
    if isinstance(value, bool):
        attrs[SCORE_VALUE] = 1.0 if value else 0.0
        attrs[SCORE_LABEL] = "pass" if value else "fail"
    elif isinstance(value, int | float):
        attrs[SCORE_VALUE] = float(value)
    elif isinstance(value, str):
        attrs[SCORE_LABEL] = value
    if assessment.rationale:
        attrs[EXPLANATION] = assessment.rationale
    if assessment.error:
        attrs[ERROR_TYPE] = assessment.error.split(":", 1)[0]
    return attrs


def export_assessments(
    tracer: Tracer, trace_id: str, root_span_id: str, assessments: Sequence[Assessment]
) -> None:
    """Never raises: exporting scores is best effort, the stored assessments are the record."""
    if not assessments:
        return
    try:
        parent = NonRecordingSpan(
            SpanContext(
                trace_id=int(trace_id.removeprefix("tr-"), 16),
                span_id=int(root_span_id, 16),
                is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED),
            )
        )
        span = tracer.start_span(
            "evaluate",
            context=set_span_in_context(parent),
            kind=SpanKind.INTERNAL,
            attributes={SPAN_TYPE: "EVALUATOR", "gen_ai.operation.name": "evaluate"},
        )
        for assessment in assessments:
            span.add_event(EVENT_NAME, event_attributes(assessment))
        span.end()
    except Exception:
        log.exception("could not export the scores of %s as span events", trace_id)
