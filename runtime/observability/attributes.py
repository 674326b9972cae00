"""Every span attribute and metric name the runtime emits, in one place.

Names follow the OpenTelemetry GenAI semantic conventions (v1.41) where one exists, so any GenAI-aware
backend (Jaeger, Tempo, an MLflow server, dashboards built for the conventions) reads our traces and metrics
without a mapping. What the conventions do not cover (the endpoint served, the runtime's own status
vocabulary, whether usage was estimated, content previews) lives under ``runtime.*``. Constants only.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "DURATION_BUCKETS",
    "STORE_WRITE_BUCKETS",
    "TOKEN_BUCKETS",
    "TPOT_BUCKETS",
    "TTFT_BUCKETS",
    "SpanType",
]

# -- GenAI semantic conventions: spans -------------------------------------------------------------
OPERATION_NAME: Final = "gen_ai.operation.name"
PROVIDER_NAME: Final = "gen_ai.provider.name"
AGENT_NAME: Final = "gen_ai.agent.name"
AGENT_ID: Final = "gen_ai.agent.id"
AGENT_VERSION: Final = "gen_ai.agent.version"
REQUEST_MODEL: Final = "gen_ai.request.model"
REQUEST_STREAM: Final = "gen_ai.request.stream"
REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
RESPONSE_ID: Final = "gen_ai.response.id"
RESPONSE_MODEL: Final = "gen_ai.response.model"
RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
CONVERSATION_ID: Final = "gen_ai.conversation.id"
TOOL_NAME: Final = "gen_ai.tool.name"
TIME_TO_FIRST_TOKEN: Final = "gen_ai.server.time_to_first_token"
TIME_PER_OUTPUT_TOKEN: Final = "gen_ai.server.time_per_output_token"
ERROR_TYPE: Final = "error.type"
USER_ID: Final = "user.id"

OP_INVOKE_AGENT: Final = "invoke_agent"
OP_CHAT: Final = "chat"
OP_TEXT_COMPLETION: Final = "text_completion"
OP_EMBEDDINGS: Final = "embeddings"
OP_EXECUTE_TOOL: Final = "execute_tool"

# -- runtime.*: what the conventions leave out -----------------------------------------------------
ENDPOINT: Final = "runtime.endpoint"  # also marks a span as a request's root span
REQUEST_ID: Final = "runtime.request_id"
STATUS: Final = "runtime.status"  # OK / ERROR / CANCELLED / TIMEOUT
ERROR_MESSAGE: Final = "runtime.error.message"
VARIANT: Final = "runtime.variant"
MODEL_URI: Final = "runtime.model.uri"
MODEL_SOURCE_COMMIT: Final = "runtime.model.source_commit"
USAGE_TOTAL_TOKENS: Final = "runtime.usage.total_tokens"
USAGE_ESTIMATED: Final = "runtime.usage.estimated"
OUTPUT_EVENTS: Final = "runtime.output_events"
REQUEST_PREVIEW: Final = "runtime.request.preview"
RESPONSE_PREVIEW: Final = "runtime.response.preview"
PROMPTS: Final = "runtime.prompts"  # prompt versions loaded in a span (and, on the root, the whole request)
PROMPT_LOADED: Final = "runtime.prompt.loaded"  # span event, one per load_prompt call
PROMPT_NAME: Final = "runtime.prompt.name"
PROMPT_VERSION: Final = "runtime.prompt.version"
PROMPT_URI: Final = "runtime.prompt.uri"  # what the agent asked for, e.g. prompts:/support@production
PROMPT_SOURCE: Final = "runtime.prompt.source"  # cache / store / stale / fallback
SPAN_TYPE: Final = "runtime.span.type"
SPAN_INPUTS: Final = "runtime.span.inputs"
SPAN_OUTPUTS: Final = "runtime.span.outputs"
STREAM_COMPLETED: Final = "runtime.stream.completed"

# -- resource (environment) ------------------------------------------------------------------------
SERVICE_NAME: Final = "service.name"
SERVICE_VERSION: Final = "service.version"
HOST_NAME: Final = "host.name"
RUNTIME_VERSION: Final = "runtime.version"
DEFAULT_SERVICE_NAME: Final = "agent-runtime"


class SpanType(StrEnum):
    """What a span stands for; MLflow's span types, so its UI and our CLI group spans the same way."""

    UNKNOWN = "UNKNOWN"
    AGENT = "AGENT"
    LLM = "LLM"
    CHAT_MODEL = "CHAT_MODEL"
    TOOL = "TOOL"
    RETRIEVER = "RETRIEVER"
    EMBEDDING = "EMBEDDING"
    PARSER = "PARSER"


# The GenAI operation a span type stands for, where the conventions name one.
OPERATION_OF_TYPE: Final[dict[str, str]] = {
    SpanType.AGENT: OP_INVOKE_AGENT,
    SpanType.LLM: OP_TEXT_COMPLETION,
    SpanType.CHAT_MODEL: OP_CHAT,
    SpanType.TOOL: OP_EXECUTE_TOOL,
    SpanType.EMBEDDING: OP_EMBEDDINGS,
}

# -- metrics (Prometheus names: dots become underscores, the unit becomes a suffix) ----------------
M_REQUEST_DURATION: Final = "gen_ai_server_request_duration_seconds"
M_TIME_TO_FIRST_TOKEN: Final = "gen_ai_server_time_to_first_token_seconds"
M_TIME_PER_OUTPUT_TOKEN: Final = "gen_ai_server_time_per_output_token_seconds"
# The conventions define token counts only as ``gen_ai.client.token.usage`` (by ``gen_ai.token.type``); we
# keep that name so dashboards built for it work, although the runtime counts them on the serving side.
M_TOKEN_USAGE: Final = "gen_ai_client_token_usage"
M_REQUESTS: Final = "runtime_requests"
M_REQUEST_ERRORS: Final = "runtime_request_errors"
M_IN_FLIGHT: Final = "runtime_requests_in_flight"
M_HTTP_ERRORS: Final = "runtime_http_errors"
M_SPANS_EXPORTED: Final = "runtime_trace_spans_exported"
M_SPANS_DROPPED: Final = "runtime_trace_spans_dropped"
M_EXPORT_QUEUE_DEPTH: Final = "runtime_trace_export_queue_depth"
M_STORE_WRITE_DURATION: Final = "runtime_store_write_duration_seconds"

L_MODEL_NAME: Final = "model_name"
L_MODEL_VERSION: Final = "model_version"
L_ENDPOINT: Final = "endpoint"
L_VARIANT: Final = "variant"
L_STATUS: Final = "status"
L_CODE: Final = "code"
L_TOKEN_TYPE: Final = "gen_ai_token_type"
# ``error.type`` of the conventions' request duration: the failed request's error code, as in
# ``runtime_request_errors_total{code}``; empty (no error) for a request that succeeded or was cancelled.
L_ERROR_TYPE: Final = "error_type"
L_REASON: Final = "reason"
REQUEST_LABELS: Final = (L_MODEL_NAME, L_MODEL_VERSION, L_ENDPOINT, L_VARIANT)

# Bucket boundaries: the conventions' own, extended upwards because an agent run (tool calls, several LLM
# calls, a long stream) lasts far longer than the single LLM call the conventions were sized for.
DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
    163.84, 327.68, 655.36, 1310.72,
)  # fmt: skip
TTFT_BUCKETS: Final = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 320.0,
)  # fmt: skip
TPOT_BUCKETS: Final = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
    5.0, 10.0, 20.0, 40.0,
)  # fmt: skip
# Integers, as token counts are: bisecting an int among ints is faster than among floats (on every request).
TOKEN_BUCKETS: Final = tuple(4**i for i in range(14))  # 1, 4, 16, ... 67108864, as in the conventions
STORE_WRITE_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
