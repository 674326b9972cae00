"""Registry records as pydantic models: one shape for the store, the client, the CLI and the HTTP API.

Records are frozen: a stored version never changes behind a caller's back, and an edit is a new object from
``model_copy(update=...)`` written through the store. Times are integer milliseconds since the epoch (MLflow's
convention) except span and trace boundaries, which keep OpenTelemetry's nanoseconds.
"""

from __future__ import annotations

import re
import time
import uuid
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, computed_field, field_validator

from registry.errors import InvalidArgument
from registry.templates import Template, check_template, format_template, template_variables

__all__ = [
    "NAME_PATTERN",
    "Assessment",
    "ChatMessage",
    "GitSource",
    "LineageEdge",
    "LineageKind",
    "LoggedModel",
    "ModelStatus",
    "ModelVersion",
    "Prompt",
    "PromptVersion",
    "RegisteredModel",
    "SourceType",
    "SpanEvent",
    "SpanRecord",
    "TraceRecord",
    "TraceStatus",
    "check_name",
    "new_assessment_id",
    "new_model_id",
    "new_trace_id",
    "now_ms",
]

NAME_PATTERN = r"^[a-zA-Z0-9_.-]+$"
_NAME_RE = re.compile(NAME_PATTERN.removeprefix("^").removesuffix("$"))  # fullmatch: '$' lets 'x\n' pass
MODEL_ID_PATTERN = r"^m-[0-9a-f]{32}$"
TRACE_ID_PATTERN = r"^tr-[0-9a-f]{32}$"
ASSESSMENT_ID_PATTERN = r"^a-[0-9a-f]{32}$"

Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=256)]
Positive = Annotated[int, Field(ge=1)]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_model_id() -> str:
    return f"m-{uuid.uuid4().hex}"


def new_trace_id() -> str:
    return f"tr-{uuid.uuid4().hex}"


def new_assessment_id() -> str:
    return f"a-{uuid.uuid4().hex}"


def check_name(value: str, what: str = "name") -> str:
    """Validate a user-supplied name before any write, with the registry's error rather than pydantic's."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value) or len(value) > 256:
        raise InvalidArgument(f"invalid {what} {value!r}: use only letters, digits, '_', '.', '-'")
    return value


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelStatus(StrEnum):
    PENDING = "PENDING"
    READY = "READY"
    FAILED = "FAILED"


class TraceStatus(StrEnum):
    OK = "OK"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"


class SourceType(StrEnum):
    CODE = "CODE"
    LLM_JUDGE = "LLM_JUDGE"
    HUMAN = "HUMAN"


class LineageKind(StrEnum):
    MODEL = "model"
    MODEL_VERSION = "model_version"
    PROMPT_VERSION = "prompt_version"
    TRACE = "trace"
    ASSESSMENT = "assessment"
    CANARY = "canary"


class GitSource(_Record):
    commit: str
    dirty: bool = False


class LoggedModel(_Record):
    model_id: Annotated[str, Field(pattern=MODEL_ID_PATTERN)]
    name: Name
    status: ModelStatus = ModelStatus.PENDING
    status_message: str | None = None
    params: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    source: GitSource | None = None
    artifact_location: str
    prompts: list[str] = Field(default_factory=list)
    creation_time: int = Field(default_factory=now_ms)
    last_updated_time: int = Field(default_factory=now_ms)

    @property
    def uri(self) -> str:
        return f"models:/{self.model_id}"


class RegisteredModel(_Record):
    name: Name
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    aliases: dict[str, int] = Field(default_factory=dict)
    latest_version: int | None = None
    creation_time: int = Field(default_factory=now_ms)
    last_updated_time: int = Field(default_factory=now_ms)


class ModelVersion(_Record):
    name: Name
    version: Positive
    model_id: Annotated[str, Field(pattern=MODEL_ID_PATTERN)]
    aliases: list[str] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    artifact_location: str
    creation_time: int = Field(default_factory=now_ms)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


class Prompt(_Record):
    name: Name
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    aliases: dict[str, int] = Field(default_factory=dict)
    latest_version: int | None = None
    creation_time: int = Field(default_factory=now_ms)
    last_updated_time: int = Field(default_factory=now_ms)


class ChatMessage(_Record):
    role: str = Field(min_length=1)
    content: str


_SCHEMA_KEYS = {"type", "properties", "$ref", "$schema", "anyOf", "oneOf", "allOf", "enum", "const", "items"}
_SCHEMA_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}


class PromptVersion(_Record):
    """One immutable prompt template; only ``tags`` and ``commit_message`` may be edited after registration.

    ``model_settings`` is what MLflow calls ``model_config`` (pydantic reserves that attribute name); it is
    serialized under MLflow's name.
    """

    name: Name
    version: Positive
    template: str | list[ChatMessage]
    commit_message: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    aliases: list[str] = Field(default_factory=list)
    response_format: dict[str, Any] | None = None
    model_settings: dict[str, Any] | None = Field(default=None, serialization_alias="model_config")
    creation_time: int = Field(default_factory=now_ms)
    last_updated_time: int = Field(default_factory=now_ms)

    @field_validator("template")
    @classmethod
    def _placeholders_balanced(cls, value: str | list[ChatMessage]) -> str | list[ChatMessage]:
        check_template(_plain(value))
        return value

    @field_validator("response_format")
    @classmethod
    def _is_json_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        kind = value.get("type")
        if not _SCHEMA_KEYS & value.keys() or (isinstance(kind, str) and kind not in _SCHEMA_TYPES):
            raise ValueError(
                "response_format must be a JSON schema (e.g. {'type': 'object', 'properties': ...})"
            )
        return value

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented pattern for computed fields
    @property
    def variables(self) -> list[str]:
        return template_variables(_plain(self.template))

    @property
    def is_chat(self) -> bool:
        return not isinstance(self.template, str)

    @property
    def uri(self) -> str:
        return f"prompts:/{self.name}/{self.version}"

    def format(self, allow_partial: bool = False, **variables: object) -> Template:
        """Fill the template; raises ``MissingVariables`` naming every absent variable unless partial."""
        return format_template(
            _plain(self.template), variables, allow_partial=allow_partial, where=f"prompt {self.uri}"
        )


def _plain(template: str | list[ChatMessage]) -> Template:
    if isinstance(template, str):
        return template
    return [message.model_dump() for message in template]


class TraceRecord(_Record):
    trace_id: Annotated[str, Field(pattern=TRACE_ID_PATTERN)]
    model_id: str | None = None
    model_name: str | None = None
    model_version: int | None = None
    endpoint: str | None = None
    status: TraceStatus = TraceStatus.OK
    start_time_ns: int
    end_time_ns: int | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    tokens_estimated: bool = False
    session_id: str | None = None
    user_id: str | None = None
    request_preview: str | None = None
    response_preview: str | None = None
    attributes: dict[str, JsonValue] = Field(default_factory=dict)
    variant: str | None = None
    prompts: list[str] = Field(default_factory=list)

    @property
    def start_time_ms(self) -> int:
        return self.start_time_ns // 1_000_000


class SpanEvent(_Record):
    name: str
    time_ns: int
    attributes: dict[str, JsonValue] = Field(default_factory=dict)


class SpanRecord(_Record):
    trace_id: Annotated[str, Field(pattern=TRACE_ID_PATTERN)]
    span_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    parent_span_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")] | None = None
    name: str
    span_type: str = "UNKNOWN"
    start_ns: int
    end_ns: int | None = None
    status_code: str = "UNSET"
    status_message: str | None = None
    attributes: dict[str, JsonValue] = Field(default_factory=dict)
    events: list[SpanEvent] = Field(default_factory=list)


class Assessment(_Record):
    assessment_id: Annotated[str, Field(pattern=ASSESSMENT_ID_PATTERN)] = Field(
        default_factory=new_assessment_id
    )
    trace_id: Annotated[str, Field(pattern=TRACE_ID_PATTERN)]
    span_id: str | None = None
    name: str = Field(min_length=1, max_length=256)
    value: bool | float | str | None = None
    rationale: str | None = None
    source_type: SourceType = SourceType.CODE
    source_id: str | None = None
    scorer_version: str | None = None
    error: str | None = None
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    creation_time: int = Field(default_factory=now_ms)
    last_updated_time: int = Field(default_factory=now_ms)


class LineageEdge(_Record):
    """A directed "was used by / produced" link, e.g. prompt version -> model, model -> trace."""

    src_kind: LineageKind
    src_id: str = Field(min_length=1)
    dst_kind: LineageKind
    dst_id: str = Field(min_length=1)
    created_time: int = Field(default_factory=now_ms)
