"""Bring a store's schema to a revision with Alembic, safely when several processes start at once.

The upgrade runs inside one transaction that first takes a lock (a PostgreSQL advisory lock, SQLite's
write lock via ``BEGIN IMMEDIATE``), so replicas starting together migrate once and the others see the
result. A store already at head costs one query.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from registry.store.engine import Database

__all__ = ["HEAD", "current_revision", "head_revision", "upgrade"]

HEAD = "head"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_PG_LOCK_KEY = 0x52454749  # arbitrary, constant: "REGI"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise RuntimeError("no migrations found")
    return head


def current_revision(db: Database) -> str | None:
    with db.read("read schema revision") as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database, revision: str = HEAD) -> None:
    target = head_revision() if revision == HEAD else revision
    if current_revision(db) == target:
        return
    config = _config()
    with db.write("migrate store schema") as conn:
        if db.is_postgres:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
