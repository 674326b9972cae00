"""Note a loaded prompt on the current span and on the request's trace, through the OpenTelemetry API only.

Three records, each for a different reader:

- the request's trace gets the version URI (``record_prompt``), so the stored ``TraceRecord.prompts`` and the
  prompt version -> trace lineage edge say which versions produced the answer;
- the current span (a tool or LLM span, or the root) gets the same URI in ``runtime.prompts``, so a span
  tree shows where in the request each prompt was used;
- the current span gets a ``runtime.prompt.loaded`` event with name, version, what was asked for and where
  the answer came from (cache, store, stale cache while the store was down, fallback), which is how an
  operator sees that a replica served an old version during an outage.

A fallback template is not a registered version, so it is never added to the trace's prompt list. Outside a
traced request all of this is a no-op; it never raises into the agent.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from opentelemetry import trace as otel_trace

from registry.entities import PromptVersion
from runtime.observability import attributes as a
from runtime.observability.spans import record_prompt

__all__ = ["Source", "record_loaded"]


class Source(StrEnum):
    CACHE = "cache"
    STORE = "store"
    STALE = "stale"
    FALLBACK = "fallback"


def record_loaded(version: PromptVersion, requested: str, source: Source) -> None:
    span = otel_trace.get_current_span()
    if source is not Source.FALLBACK:
        record_prompt(version.uri)
    if not span.is_recording():
        return
    span.add_event(
        a.PROMPT_LOADED,
        {
            a.PROMPT_NAME: version.name,
            a.PROMPT_VERSION: version.version,
            a.PROMPT_URI: requested,
            a.PROMPT_SOURCE: source.value,
        },
    )
    if source is Source.FALLBACK:
        return
    # SDK spans expose their attributes; a span that does not is simply not merged into.
    current = getattr(span, "attributes", None) or {}
    loaded = current.get(a.PROMPTS, ())
    known = list(loaded) if isinstance(loaded, Sequence) and not isinstance(loaded, str) else []
    if version.uri not in known:
        span.set_attribute(a.PROMPTS, [*(str(u) for u in known), version.uri])
