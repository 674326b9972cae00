"""Traces, spans, assessments and lineage edges.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def _traces() -> None:
    op.create_table(
        "traces",
        sa.Column("trace_id", sa.String(40), nullable=False),
        sa.Column("model_id", sa.String(40)),
        sa.Column("model_name", sa.String(256)),
        sa.Column("model_version", sa.Integer),
        sa.Column("endpoint", sa.String(256)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_time_ns", sa.BigInteger, nullable=False),
        sa.Column("end_time_ns", sa.BigInteger),
        sa.Column("latency_ms", sa.Float),
        sa.Column("ttft_ms", sa.Float),
        sa.Column("input_tokens", sa.Integer),
        sa.Column("output_tokens", sa.Integer),
        sa.Column("total_tokens", sa.Integer),
        sa.Column("tokens_estimated", sa.Boolean, nullable=False),
        sa.Column("session_id", sa.String(256)),
        sa.Column("user_id", sa.String(256)),
        sa.Column("request_preview", sa.Text),
        sa.Column("response_preview", sa.Text),
        sa.Column("attributes", Json, nullable=False),
        sa.Column("variant", sa.String(64)),
        sa.Column("prompts", Json, nullable=False),
        sa.PrimaryKeyConstraint("trace_id", name="pk_traces"),
    )
    op.create_index("ix_traces_start", "traces", ["start_time_ns", "trace_id"])
    op.create_index("ix_traces_model", "traces", ["model_id", "start_time_ns"])
    op.create_index("ix_traces_model_name", "traces", ["model_name", "start_time_ns"])
    op.create_index("ix_traces_session", "traces", ["session_id"])
    op.create_index("ix_traces_user", "traces", ["user_id"])
    op.create_table(
        "spans",
        sa.Column("trace_id", sa.String(40), nullable=False),
        sa.Column("span_id", sa.String(16), nullable=False),
        sa.Column("parent_span_id", sa.String(16)),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("span_type", sa.String(64), nullable=False),
        sa.Column("start_ns", sa.BigInteger, nullable=False),
        sa.Column("end_ns", sa.BigInteger),
        sa.Column("status_code", sa.String(16), nullable=False),
        sa.Column("status_message", sa.Text),
        sa.Column("attributes", Json, nullable=False),
        sa.Column("events", Json, nullable=False),
        sa.PrimaryKeyConstraint("trace_id", "span_id", name="pk_spans"),
    )


def _assessments() -> None:
    op.create_table(
        "assessments",
        sa.Column("assessment_id", sa.String(40), nullable=False),
        sa.Column("trace_id", sa.String(40), nullable=False),
        sa.Column("span_id", sa.String(16)),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("value", Json),
        sa.Column("rationale", sa.Text),
        sa.Column("source_type", sa.String(16), nullable=False),
        sa.Column("source_id", sa.String(256)),
        sa.Column("scorer_version", sa.String(64)),
        sa.Column("error", sa.Text),
        sa.Column("metadata", Json, nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_updated_time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("assessment_id", name="pk_assessments"),
    )
    op.create_index("ix_assessments_trace_id", "assessments", ["trace_id"])
    op.create_index("ix_assessments_creation_time", "assessments", ["creation_time"])


def _lineage() -> None:
    op.create_table(
        "lineage_edges",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("src_kind", sa.String(32), nullable=False),
        sa.Column("src_id", sa.String(512), nullable=False),
        sa.Column("dst_kind", sa.String(32), nullable=False),
        sa.Column("dst_id", sa.String(512), nullable=False),
        sa.Column("created_time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lineage_edges"),
        sa.UniqueConstraint(
            "src_kind",
            "src_id",
            "dst_kind",
            "dst_id",
            name="uq_lineage_edges_src_kind_src_id_dst_kind_dst_id",
        ),
    )
    op.create_index("ix_lineage_edges_dst", "lineage_edges", ["dst_kind", "dst_id"])


def upgrade() -> None:
    _traces()
    _assessments()
    _lineage()


def downgrade() -> None:
    for table in ("lineage_edges", "assessments", "spans", "traces"):
        op.drop_table(table)
