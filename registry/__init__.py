"""The model and prompt registry: LoggedModels, versions, aliases, prompts, traces, assessments, lineage.

A leaf package: it never imports ``runtime``. Start from :class:`RegistryClient`.
"""

from __future__ import annotations

from registry.client import RegistryClient, ResolvedModel
from registry.entities import (
    Assessment,
    LineageEdge,
    LineageKind,
    LoggedModel,
    ModelStatus,
    ModelVersion,
    Prompt,
    PromptVersion,
    RegisteredModel,
    SourceType,
    SpanRecord,
    TraceRecord,
    TraceStatus,
)
from registry.errors import (
    AlreadyExists,
    Conflict,
    InvalidArgument,
    NotFound,
    RegistryError,
    StoreUnavailable,
)
from registry.store import SqlStore

__all__ = [
    "AlreadyExists",
    "Assessment",
    "Conflict",
    "InvalidArgument",
    "LineageEdge",
    "LineageKind",
    "LoggedModel",
    "ModelStatus",
    "ModelVersion",
    "NotFound",
    "Prompt",
    "PromptVersion",
    "RegisteredModel",
    "RegistryClient",
    "RegistryError",
    "ResolvedModel",
    "SourceType",
    "SpanRecord",
    "SqlStore",
    "StoreUnavailable",
    "TraceRecord",
    "TraceStatus",
]
