"""Canary history: one row per canary and its audit trail of decisions.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "canaries",
        sa.Column("canary_id", sa.String(40), nullable=False),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("champion", sa.String(256), nullable=False),
        sa.Column("champion_version", sa.Integer),
        sa.Column("challenger_version", sa.Integer, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("weight", sa.Float, nullable=False),
        sa.Column("config", Json, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_by", sa.String(256), nullable=False),
        sa.Column("started_time", sa.BigInteger, nullable=False),
        sa.Column("ended_time", sa.BigInteger),
        sa.Column("decided_by", sa.String(256)),
        sa.Column("reason", sa.Text),
        sa.PrimaryKeyConstraint("canary_id", name="pk_canaries"),
    )
    op.create_index("ix_canaries_model", "canaries", ["model_name", "started_time"])
    op.create_table(
        "canary_events",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("canary_id", sa.String(40), nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("details", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_canary_events"),
    )
    op.create_index("ix_canary_events_canary_id", "canary_events", ["canary_id"])


def downgrade() -> None:
    for table in ("canary_events", "canaries"):
        op.drop_table(table)
