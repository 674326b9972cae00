"""The agent-author surface of ``runtime.observability`` is exactly what the docs promise."""

from __future__ import annotations

from runtime import observability
from runtime.observability import SpanType


def test_public_names() -> None:
    assert sorted(observability.__all__) == [
        "LiveSpan",
        "SpanType",
        "current_trace_id",
        "record_prompt",
        "span",
        "trace",
    ]
    assert all(hasattr(observability, name) for name in observability.__all__)


def test_span_types_are_mlflows() -> None:
    assert {t.value for t in SpanType} == {
        "UNKNOWN",
        "AGENT",
        "LLM",
        "CHAT_MODEL",
        "TOOL",
        "RETRIEVER",
        "EMBEDDING",
        "PARSER",
    }
