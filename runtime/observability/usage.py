"""Token usage of a request summed from the spans inside it, for agents that report none themselves.

A span processor rather than a hook in our own span helpers, so every span that carries
``gen_ai.usage.*`` counts: the agent's ``span(...).set_usage``, the openai auto-tracing, the built-in LLM
agent and third-party OpenTelemetry instrumentations alike. Only the outermost span with usage on each
branch counts: a sub-agent span that reports the total of its LLM calls is not added to those calls again.
Spans are told apart by request, not by trace: requests that join one caller's trace (``traceparent``)
share its trace id, and each must count its own spans only.

A request the sampler does not record still gets its usage: :class:`RecordInsideRequests` makes the spans
inside a request recorded (so they reach this processor) but not sampled (so no exporter writes them). The
usage a client is answered must not depend on which requests are kept.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from opentelemetry.context import Context, get_value
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes

from runtime.observability import attributes as a
from runtime.observability.context import REQUEST_KEY, RequestTracing

__all__ = ["RecordInsideRequests", "TraceUsage", "UsageCollector"]


class TraceUsage:
    """The finished spans of one trace: their parents and, for those with usage, their tokens.

    No lock: one is made per request, and spans may end on several threads, but every update is one
    dict assignment and every read one dict copy, each atomic under the GIL. A span that ends while the
    totals are read may be counted in one dict and not yet the other; the request has finished by then,
    so it would not have counted anyway.
    """

    __slots__ = ("_parents", "_tokens")

    def __init__(self) -> None:
        self._parents: dict[int, int] = {}
        self._tokens: dict[int, tuple[int, int]] = {}

    def add(self, span_id: int, parent_id: int, tokens: tuple[int, int] | None) -> None:
        self._parents[span_id] = parent_id
        if tokens is not None:
            self._tokens[span_id] = tokens

    def totals(self) -> tuple[int, int] | None:
        """(input, output) summed over the outermost spans with usage; None when no span had any."""
        parents = self._parents.copy()
        tokens = self._tokens.copy()
        if not tokens:
            return None
        total_in = total_out = 0
        for span_id, (tokens_in, tokens_out) in tokens.items():
            if not _has_counted_ancestor(span_id, parents, tokens):
                total_in += tokens_in
                total_out += tokens_out
        return total_in, total_out


def _has_counted_ancestor(span_id: int, parents: dict[int, int], tokens: dict[int, tuple[int, int]]) -> bool:
    seen = 0
    parent = parents.get(span_id, 0)
    while parent and seen < 1000:  # bounded: a corrupt parent chain must not hang the request
        if parent in tokens:
            return True
        parent = parents.get(parent, 0)
        seen += 1
    return False


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class UsageCollector(SpanProcessor):
    """Collects, per request, the finished spans inside it. A request costs nothing here until a span
    starts inside it: that span's start finds the request in its parent context and opens the request's
    :class:`TraceUsage`; the span is then known by its id until it ends or the telemetry releases the
    request."""

    def __init__(self) -> None:
        self._spans: dict[int, TraceUsage] = {}  # span id -> the usage of the request it started in
        self._open: dict[int, set[int]] = {}  # id of a request's usage -> its spans not ended yet
        self._lock = threading.Lock()  # only for a request's first span: two may start at once

    def release(self, usage: TraceUsage) -> None:
        """Forget the spans of a request that ended: those still open end outside it."""
        for span_id in self._open.pop(id(usage), ()):
            self._spans.pop(span_id, None)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        request = get_value(REQUEST_KEY, parent_context)
        if not isinstance(request, RequestTracing):
            return  # outside a request
        usage = request.usage
        if usage is None:
            with self._lock:
                usage = request.usage
                if usage is None:
                    usage = request.usage = TraceUsage()
                    self._open[id(usage)] = set()
        span_id = span.get_span_context().span_id
        self._spans[span_id] = usage
        opened = self._open.get(id(usage))
        if opened is not None:  # None: the request ended already
            opened.add(span_id)

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None:
            return
        usage = self._spans.pop(context.span_id, None)
        if usage is None:
            return
        opened = self._open.get(id(usage))
        if opened is not None:
            opened.discard(context.span_id)
        attrs = span.attributes or {}
        tokens_in = attrs.get(a.USAGE_INPUT_TOKENS)
        tokens_out = attrs.get(a.USAGE_OUTPUT_TOKENS)
        tokens = None if tokens_in is None and tokens_out is None else (_int(tokens_in), _int(tokens_out))
        usage.add(context.span_id, span.parent.span_id if span.parent else 0, tokens)

    def shutdown(self) -> None:
        self._spans.clear()
        self._open.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class RecordInsideRequests(Sampler):
    """``inner``'s decisions, except that a span it drops inside a served request is recorded, unsampled:
    the processors see it (its usage counts, see :class:`UsageCollector`) and the exporters, which write
    sampled spans only, do not."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        result = self.inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )
        if result.decision is Decision.DROP and isinstance(
            get_value(REQUEST_KEY, parent_context), RequestTracing
        ):
            return SamplingResult(Decision.RECORD_ONLY, result.attributes, result.trace_state)
        return result

    def get_description(self) -> str:
        return f"RecordInsideRequests{{{self.inner.get_description()}}}"
