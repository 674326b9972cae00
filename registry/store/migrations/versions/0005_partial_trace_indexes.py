"""Trace indexes on model id, session and user cover only the rows that have one, newest first.

Most traces have no session or user, and a file served without the registry has no model id: their NULL
entries served no query and cost the trace writer an index insert per request each. The session and user
indexes also take the start time, so a session's traces come newest first from the index.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_traces_model", "model_id"),
    ("ix_traces_session", "session_id"),
    ("ix_traces_user", "user_id"),
)


def upgrade() -> None:
    for name, column in _INDEXES:
        op.drop_index(name, table_name="traces")
        present = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            name, "traces", [column, "start_time_ns"], sqlite_where=present, postgresql_where=present
        )


def downgrade() -> None:
    for name, column in _INDEXES:
        op.drop_index(name, table_name="traces")
        columns = [column, "start_time_ns"] if column == "model_id" else [column]
        op.create_index(name, "traces", columns)
