"""What a request's OpenTelemetry context carries besides the current span.

The telemetry stores one :class:`RequestTracing` in the context it attaches for the agent. Agent-side code
(``span``/``trace``, the openai auto-tracing, ``record_prompt``) finds through it the tracer of the app
serving the request, whether content may be captured, and the root span, without any global lookup: two
apps in one process (tests, a canary pair) each keep their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry.trace import Span, Tracer

if TYPE_CHECKING:
    from runtime.observability.usage import TraceUsage

__all__ = ["REQUEST_KEY", "RequestTracing", "current_request"]

REQUEST_KEY = otel_context.create_key("runtime-request")


class RequestTracing:
    """The request's tracer, whether content may be captured, its root span, the prompt versions it loaded
    (``prompts``, None until one is) and the token usage of the spans inside it (``usage``: from the first
    one that starts, see :class:`~runtime.observability.usage.UsageCollector`; None while it has none).

    A plain class rather than a dataclass: one is made per request, and the telemetry's own per-request
    state is a subclass of it (one object per request, not two)."""

    __slots__ = ("capture_content", "prompts", "root", "tracer", "usage")

    def __init__(self, tracer: Tracer, capture_content: bool, root: Span) -> None:
        self.tracer = tracer
        self.capture_content = capture_content
        self.root = root
        self.prompts: list[str] | None = None
        self.usage: TraceUsage | None = None


def current_request() -> RequestTracing | None:
    """The request being served in this context, or None outside a served request."""
    value = otel_context.get_value(REQUEST_KEY)
    return value if isinstance(value, RequestTracing) else None
