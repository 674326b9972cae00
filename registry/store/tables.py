"""SQLAlchemy Core tables: the head schema, which the Alembic revisions in ``migrations/versions`` must build.

A test compares this metadata with a database migrated to head, so the two cannot drift. Maps (params, tags,
metrics, attributes) are JSON columns: they are read and written whole with their owner, and filtering on them
is rare enough to do in Python. Times are BIGINT milliseconds (nanoseconds for spans and trace bounds).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = [
    "assessments",
    "canaries",
    "canary_events",
    "lineage_edges",
    "logged_models",
    "metadata",
    "model_aliases",
    "model_versions",
    "prompt_aliases",
    "prompt_versions",
    "prompts",
    "registered_models",
    "spans",
    "traces",
    "where_present",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

Json = JSON().with_variant(JSONB(), "postgresql")
NAME = 256


def where_present(column: str) -> dict[str, Any]:
    """The dialect options of a partial index over the rows where ``column`` is not NULL."""
    condition = text(f"{column} IS NOT NULL")
    return {"sqlite_where": condition, "postgresql_where": condition}


logged_models = Table(
    "logged_models",
    metadata,
    Column("model_id", String(40), primary_key=True),
    Column("name", String(NAME), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("status_message", Text),
    Column("params", Json, nullable=False),
    Column("tags", Json, nullable=False),
    Column("metrics", Json, nullable=False),
    Column("source_commit", String(64)),
    Column("source_dirty", Boolean),
    Column("artifact_location", Text, nullable=False),
    Column("prompts", Json, nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
)

registered_models = Table(
    "registered_models",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("description", Text),
    Column("tags", Json, nullable=False),
    Column("latest_version", Integer, nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("name", String(NAME), ForeignKey("registered_models.name"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("model_id", String(40), ForeignKey("logged_models.model_id"), nullable=False, index=True),
    Column("tags", Json, nullable=False),
    Column("artifact_location", Text, nullable=False),
    Column("creation_time", BigInteger, nullable=False),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("alias", String(NAME), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_time", BigInteger, nullable=False),
    ForeignKeyConstraint(["name", "version"], ["model_versions.name", "model_versions.version"]),
)

prompts = Table(
    "prompts",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("description", Text),
    Column("tags", Json, nullable=False),
    Column("latest_version", Integer, nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
)

prompt_versions = Table(
    "prompt_versions",
    metadata,
    Column("name", String(NAME), ForeignKey("prompts.name"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("template", Json, nullable=False),
    Column("commit_message", Text),
    Column("tags", Json, nullable=False),
    Column("response_format", Json),
    Column("model_config", Json),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
)

prompt_aliases = Table(
    "prompt_aliases",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("alias", String(NAME), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_time", BigInteger, nullable=False),
    ForeignKeyConstraint(["name", "version"], ["prompt_versions.name", "prompt_versions.version"]),
)

traces = Table(
    "traces",
    metadata,
    Column("trace_id", String(40), primary_key=True),
    Column("model_id", String(40)),
    Column("model_name", String(NAME)),
    Column("model_version", Integer),
    Column("endpoint", String(256)),
    Column("status", String(16), nullable=False),
    Column("start_time_ns", BigInteger, nullable=False),
    Column("end_time_ns", BigInteger),
    Column("latency_ms", Float),
    Column("ttft_ms", Float),
    Column("input_tokens", Integer),
    Column("output_tokens", Integer),
    Column("total_tokens", Integer),
    Column("tokens_estimated", Boolean, nullable=False),
    Column("session_id", String(256)),
    Column("user_id", String(256)),
    Column("request_preview", Text),
    Column("response_preview", Text),
    Column("attributes", Json, nullable=False),
    Column("variant", String(64)),
    Column("prompts", Json, nullable=False),
    # The request's root span, when the span writer stored it here rather than as a spans row (one insert per
    # request instead of two); NULL for traces logged record by record.
    Column("root_span", Json),
    Index("ix_traces_start", "start_time_ns", "trace_id"),
    # Partial where the column is mostly NULL (a served file has no model id; most requests carry no
    # session or user): a NULL entry serves no query, and each index costs the trace writer per row.
    Index("ix_traces_model", "model_id", "start_time_ns", **where_present("model_id")),
    Index("ix_traces_model_name", "model_name", "start_time_ns"),
    Index("ix_traces_session", "session_id", "start_time_ns", **where_present("session_id")),
    Index("ix_traces_user", "user_id", "start_time_ns", **where_present("user_id")),
)

# No foreign key to traces: span batches may reach the store before their root span (and so the trace row).
spans = Table(
    "spans",
    metadata,
    Column("trace_id", String(40), primary_key=True),
    Column("span_id", String(16), primary_key=True),
    Column("parent_span_id", String(16)),
    Column("name", Text, nullable=False),
    Column("span_type", String(64), nullable=False),
    Column("start_ns", BigInteger, nullable=False),
    Column("end_ns", BigInteger),
    Column("status_code", String(16), nullable=False),
    Column("status_message", Text),
    Column("attributes", Json, nullable=False),
    Column("events", Json, nullable=False),
)

assessments = Table(
    "assessments",
    metadata,
    Column("assessment_id", String(40), primary_key=True),
    Column("trace_id", String(40), nullable=False, index=True),
    Column("span_id", String(16)),
    Column("name", String(NAME), nullable=False),
    Column("value", Json),
    Column("rationale", Text),
    Column("source_type", String(16), nullable=False),
    Column("source_id", String(256)),
    Column("scorer_version", String(64)),
    Column("error", Text),
    Column("metadata", Json, nullable=False),
    Column("creation_time", BigInteger, nullable=False, index=True),
    Column("last_updated_time", BigInteger, nullable=False),
)

lineage_edges = Table(
    "lineage_edges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("src_kind", String(32), nullable=False),
    Column("src_id", String(512), nullable=False),
    Column("dst_kind", String(32), nullable=False),
    Column("dst_id", String(512), nullable=False),
    Column("created_time", BigInteger, nullable=False),
    UniqueConstraint("src_kind", "src_id", "dst_kind", "dst_id"),
    Index("ix_lineage_edges_dst", "dst_kind", "dst_id"),
)

# Canary history. No foreign key from events to canaries: the store may miss a canary's start (it was down)
# and still record how the canary ended; Redis holds the live state, this is the durable record.
canaries = Table(
    "canaries",
    metadata,
    Column("canary_id", String(40), primary_key=True),
    Column("model_name", String(NAME), nullable=False),
    Column("champion", String(NAME), nullable=False),
    Column("champion_version", Integer),
    Column("challenger_version", Integer, nullable=False),
    Column("mode", String(16), nullable=False),
    Column("weight", Float, nullable=False),
    Column("config", Json, nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_by", String(NAME), nullable=False),
    Column("started_time", BigInteger, nullable=False),
    Column("ended_time", BigInteger),
    Column("decided_by", String(NAME)),
    Column("reason", Text),
    Index("ix_canaries_model", "model_name", "started_time"),
)

canary_events = Table(
    "canary_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("canary_id", String(40), nullable=False, index=True),
    Column("time", BigInteger, nullable=False),
    Column("actor", String(NAME), nullable=False),
    Column("action", String(32), nullable=False),
    Column("reason", Text),
    Column("details", Json, nullable=False),
)
