"""``ScoringJob``: one sampled request to score, as it travels through a queue or a Redis Stream.

The job carries what the serving layer knew when the request ended (inputs preview, output text, model,
variant, latency, tokens), so code scorers can run at once, without waiting for the trace to be exported;
only scorers that take ``trace`` wait for the stored spans. It is plain JSON, so any worker process on any
machine can take it.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from registry.entities import TraceRecord, TraceStatus
from runtime.protocol.call import Call

__all__ = ["MAX_OUTPUT_CHARS", "ScorerRef", "ScoringJob"]

MAX_OUTPUT_CHARS = 100_000  # what one job may carry: a runaway answer must not fill the stream


class ScorerRef(BaseModel):
    """A scorer by name (as the worker's catalog knows it) with the arguments of a built-in factory."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    args: dict[str, JsonValue] = Field(default_factory=dict)
    rate: float = 1.0


class ScoringJob(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    trace_id: str = Field(pattern=r"^tr-[0-9a-f]{32}$")
    scorers: list[ScorerRef] = Field(min_length=1)
    inputs: JsonValue = None
    outputs: str = ""
    expectations: JsonValue = None
    model_name: str | None = None
    model_id: str | None = None
    model_version: str | None = None
    variant: str | None = None
    endpoint: str | None = None
    status: str = TraceStatus.OK.value
    started_ns: int = 0
    latency_ms: float | None = None
    ttft_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    tokens_estimated: bool = False
    run_id: str | None = None
    enqueued_ms: int = Field(default_factory=lambda: time.time_ns() // 1_000_000)

    @classmethod
    def from_call(cls, call: Call, scorers: list[ScorerRef]) -> ScoringJob:
        """Called in the telemetry's ``end``: only copies facts, does no I/O."""
        ttft = call.ttft_s
        return cls(
            trace_id=f"tr-{call.trace_id}",
            scorers=scorers,
            inputs=call.input_preview,
            outputs="".join(call.output_text)[:MAX_OUTPUT_CHARS],
            model_name=call.model.name,
            model_id=call.model.model_id,
            model_version=call.model.version,
            variant=call.variant,
            endpoint=call.endpoint,
            status=call.status,
            started_ns=call.started_ns,
            latency_ms=call.latency_s * 1000.0,
            ttft_ms=ttft * 1000.0 if ttft is not None else None,
            input_tokens=call.input_tokens,
            output_tokens=call.output_tokens,
            tokens_estimated=call.usage_estimated,
        )

    def trace_record(self) -> TraceRecord:
        """The trace as far as the job knows it, for scorers when the stored one is not available."""
        version = self.model_version
        statuses = {s.value for s in TraceStatus}
        total = None
        if self.input_tokens is not None or self.output_tokens is not None:
            total = (self.input_tokens or 0) + (self.output_tokens or 0)
        return TraceRecord(
            trace_id=self.trace_id,
            model_id=self.model_id,
            model_name=self.model_name,
            model_version=int(version) if version and version.isdigit() else None,
            endpoint=self.endpoint,
            status=TraceStatus(self.status) if self.status in statuses else TraceStatus.OK,
            start_time_ns=self.started_ns,
            latency_ms=self.latency_ms,
            ttft_ms=self.ttft_ms,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            total_tokens=total,
            tokens_estimated=self.tokens_estimated,
            request_preview=self.inputs if isinstance(self.inputs, str) else None,
            response_preview=self.outputs or None,
            variant=self.variant,
        )

    def assessment_metadata(self) -> dict[str, JsonValue]:
        """What every assessment of this job records about where it came from (canary reads ``variant``)."""
        found: dict[str, Any] = {
            "model_name": self.model_name,
            "model_id": self.model_id,
            "model_version": self.model_version,
            "variant": self.variant,
            "run_id": self.run_id,
        }
        return {k: v for k, v in found.items() if v is not None}
