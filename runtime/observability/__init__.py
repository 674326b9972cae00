"""Tracing and metrics of the runtime, and the span API for agent authors.

Agent code::

    from runtime.observability import SpanType, span, trace

    @trace(span_type=SpanType.TOOL)
    def get_weather(city: str) -> dict: ...

    with span("rerank", SpanType.RETRIEVER, inputs=query) as s:
        s.set_outputs(docs)
        s.set_usage(input_tokens=120, output_tokens=8)

The serving side (root spans, exporters, metrics, openai auto-tracing) is built by the composition root
from :mod:`runtime.observability.providers`; importing this package does no work.
"""

from __future__ import annotations

from runtime.observability.attributes import SpanType
from runtime.observability.decorators import trace
from runtime.observability.spans import LiveSpan, current_trace_id, record_prompt, span

__all__ = ["LiveSpan", "SpanType", "current_trace_id", "record_prompt", "span", "trace"]
