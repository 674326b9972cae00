"""Models, versions, aliases and prompts.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def _times() -> list[sa.Column[int]]:
    return [
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_updated_time", sa.BigInteger, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "logged_models",
        sa.Column("model_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_message", sa.Text),
        sa.Column("params", Json, nullable=False),
        sa.Column("tags", Json, nullable=False),
        sa.Column("metrics", Json, nullable=False),
        sa.Column("source_commit", sa.String(64)),
        sa.Column("source_dirty", sa.Boolean),
        sa.Column("artifact_location", sa.Text, nullable=False),
        sa.Column("prompts", Json, nullable=False),
        *_times(),
        sa.PrimaryKeyConstraint("model_id", name="pk_logged_models"),
    )
    op.create_index("ix_logged_models_name", "logged_models", ["name"])
    for table in ("registered_models", "prompts"):
        op.create_table(
            table,
            sa.Column("name", sa.String(256), nullable=False),
            sa.Column("description", sa.Text),
            sa.Column("tags", Json, nullable=False),
            sa.Column("latest_version", sa.Integer, nullable=False),
            *_times(),
            sa.PrimaryKeyConstraint("name", name=f"pk_{table}"),
        )
    op.create_table(
        "model_versions",
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("model_id", sa.String(40), nullable=False),
        sa.Column("tags", Json, nullable=False),
        sa.Column("artifact_location", sa.Text, nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name="pk_model_versions"),
        sa.ForeignKeyConstraint(
            ["name"], ["registered_models.name"], name="fk_model_versions_name_registered_models"
        ),
        sa.ForeignKeyConstraint(
            ["model_id"], ["logged_models.model_id"], name="fk_model_versions_model_id_logged_models"
        ),
    )
    op.create_index("ix_model_versions_model_id", "model_versions", ["model_id"])
    op.create_table(
        "prompt_versions",
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("template", Json, nullable=False),
        sa.Column("commit_message", sa.Text),
        sa.Column("tags", Json, nullable=False),
        sa.Column("response_format", Json),
        sa.Column("model_config", Json),
        *_times(),
        sa.PrimaryKeyConstraint("name", "version", name="pk_prompt_versions"),
        sa.ForeignKeyConstraint(["name"], ["prompts.name"], name="fk_prompt_versions_name_prompts"),
    )
    for kind in ("model", "prompt"):
        op.create_table(
            f"{kind}_aliases",
            sa.Column("name", sa.String(256), nullable=False),
            sa.Column("alias", sa.String(256), nullable=False),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("updated_time", sa.BigInteger, nullable=False),
            sa.PrimaryKeyConstraint("name", "alias", name=f"pk_{kind}_aliases"),
            sa.ForeignKeyConstraint(
                ["name", "version"],
                [f"{kind}_versions.name", f"{kind}_versions.version"],
                name=f"fk_{kind}_aliases_name_version_{kind}_versions",
            ),
        )


def downgrade() -> None:
    for table in (
        "prompt_aliases",
        "model_aliases",
        "prompt_versions",
        "model_versions",
        "prompts",
        "registered_models",
        "logged_models",
    ):
        op.drop_table(table)
