"""One request's facts as the serving layer learns them; what telemetry, evaluation and canary read.

A ``Call`` is filled in as the request runs (first event, usage, status) and handed to the telemetry at
the start and the end. It lives here, below every part, so those parts need not import each other.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime.protocol.traceparent import VendorState

__all__ = ["Call", "CallStatus", "CompositeTelemetry", "ModelInfo", "NullTelemetry", "Telemetry"]

_log = logging.getLogger("runtime.telemetry")


class CallStatus:
    OK = "OK"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    FAILED = frozenset({ERROR, TIMEOUT})  # the outcomes counted as errors (a cancel is the client's doing)


@dataclass(slots=True, frozen=True)
class ModelInfo:
    """Which agent answered: what the headers, /v1/models and the trace say."""

    name: str
    model_id: str | None = None
    version: str | None = None
    uri: str | None = None
    source_commit: str | None = None


@dataclass(slots=True)
class Call:
    request_id: str
    endpoint: str
    stream: bool
    model: ModelInfo
    started_ns: int = field(default_factory=time.time_ns)
    started: float = field(default_factory=time.perf_counter)
    first_event: float | None = None
    ended: float | None = None
    status: str = CallStatus.OK
    error_code: str | None = None
    error_message: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    usage_estimated: bool = False
    output_events: int = 0
    session_id: str | None = None
    user_id: str | None = None
    input_preview: str | None = None
    output_text: list[str] = field(default_factory=list)
    trace_id: str | None = None
    trace_number: int | None = None  # ``trace_id`` as a number, when the service made it (no parse needed)
    parent_span_id: int | None = None  # the caller's span (W3C ``traceparent``), when it sent one
    parent_sampled: bool = True  # what the caller's ``traceparent`` flags said
    vendor_state: VendorState | None = None  # the caller's ``tracestate``, passed on as it is
    variant: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def latency_s(self) -> float:
        return (self.ended or time.perf_counter()) - self.started

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_event is None else self.first_event - self.started


class Telemetry(Protocol):
    """Observes calls. ``begin`` runs before the agent, in the context the agent will run in; ``end`` once.

    Both must never raise into the request and never block on I/O.
    """

    def begin(self, call: Call) -> object: ...

    def settle(self, call: Call, handle: object) -> None:
        """Fill in what the call still lacks from what happened inside it (token usage from its LLM spans),
        before its answer is rendered; ``end`` does it too when nobody asked earlier."""
        ...

    def end(self, call: Call, handle: object) -> None: ...


class NullTelemetry:
    def begin(self, call: Call) -> object:
        return None

    def settle(self, call: Call, handle: object) -> None:
        return None

    def end(self, call: Call, handle: object) -> None:
        return None


class CompositeTelemetry:
    """Several telemetries seen as one (tracing, online evaluation, ...), so the service calls one.

    ``end`` runs the parts in the order given, not reversed: a later part sees what an earlier one wrote
    back to the call (tracing fills in usage from the spans before evaluation reads it). A part that breaks
    its no-raise contract is logged and skipped; the others still run.
    """

    def __init__(self, *parts: Telemetry) -> None:
        self.parts = parts

    def begin(self, call: Call) -> object:
        handles: list[object] = []
        for part in self.parts:
            try:
                handles.append(part.begin(call))
            except Exception:
                _log.exception("telemetry %r failed to begin request %s", part, call.request_id)
                handles.append(None)
        return handles

    def settle(self, call: Call, handle: object) -> None:
        self._each("settle", call, handle)

    def end(self, call: Call, handle: object) -> None:
        self._each("end", call, handle)

    def _each(self, step: str, call: Call, handle: object) -> None:
        """``part.settle`` or ``part.end`` of every part, in order, each with its own handle."""
        handles = handle if isinstance(handle, list) else [None] * len(self.parts)
        for part, part_handle in zip(self.parts, handles, strict=False):
            try:
                getattr(part, step)(call, part_handle)
            except Exception:
                _log.exception("telemetry %r failed to %s request %s", part, step, call.request_id)
