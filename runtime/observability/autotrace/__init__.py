"""Spans for LLM calls that agents make through third-party SDKs, without tracing code in the agent."""

from __future__ import annotations

from runtime.observability.autotrace.openai_sdk import instrument_openai, is_instrumented, uninstrument_openai

__all__ = ["instrument_openai", "is_instrumented", "uninstrument_openai"]
