"""``Trace``: what a scorer that takes ``trace`` receives: the stored trace record and its spans.

When the trace was not stored in time (tracing off, the store slow or down), scorers still get a ``Trace``
built from the facts the serving layer handed over (latency, time to first token, tokens, status), with no
spans and ``stored`` False: SLO scorers keep working without tracing, and a scorer that needs spans can
tell it has none rather than silently finding no errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from registry.entities import SpanRecord, TraceRecord

__all__ = ["Trace"]


@dataclass(frozen=True, slots=True)
class Trace:
    info: TraceRecord
    spans: list[SpanRecord] = field(default_factory=list)
    stored: bool = True

    @property
    def trace_id(self) -> str:
        return self.info.trace_id

    @property
    def root(self) -> SpanRecord | None:
        """The request's root span (the one without a parent), when spans were stored."""
        return next((s for s in self.spans if s.parent_span_id is None), None)

    def find(self, span_type: str | None = None, name: str | None = None) -> Iterator[SpanRecord]:
        for span in self.spans:
            if (span_type is None or span.span_type == span_type) and (name is None or span.name == name):
                yield span
