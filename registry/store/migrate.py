"""Bring a store's schema to a revision with Alembic, safely when several processes start at once.

The upgrade runs inside one transaction that first takes a lock (a PostgreSQL advisory lock, SQLite's
write lock via ``BEGIN IMMEDIATE``), so replicas starting together migrate once and the others see the
result. A store already at head costs one query, and no Alembic: importing it takes longer than the rest of
opening a store (a third of a second on the project machine), and every server and trace writer process
opens one at startup. The head revision is then read from the migration scripts' ``revision`` and
``down_revision`` lines (a test holds it equal to Alembic's); Alembic is imported only to migrate, or when
those lines cannot be read.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

from registry.store.engine import Database

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["HEAD", "current_revision", "head_revision", "scripted_head", "upgrade"]

HEAD = "head"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_PG_LOCK_KEY = 0x52454749  # arbitrary, constant: "REGI"
_VERSION_TABLE = "alembic_version"
_REVISION = re.compile(r"^revision(?::[^=]*)?\s*=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN_REVISION = re.compile(r"^down_revision(?::[^=]*)?\s*=\s*(?:None|['\"]([^'\"]+)['\"])\s*$", re.M)


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise RuntimeError("no migrations found")
    return head


@functools.cache
def scripted_head() -> str | None:
    """The head revision as the scripts' own lines say it, or None when they do not say it plainly."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS_DIR / "versions").glob("[!_]*.py"):
        source = script.read_text()
        revision, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if revision is None or down is None:
            return None
        revisions.add(revision.group(1))
        if down.group(1):
            parents.add(down.group(1))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _stored_revision(db: Database) -> str | None:
    """What ``current_revision`` reads, without Alembic: the version table's one row, if any."""
    with db.read("read schema revision") as conn:
        if not inspect(conn).has_table(_VERSION_TABLE):
            return None
        rows = conn.execute(text(f"SELECT version_num FROM {_VERSION_TABLE}")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with db.read("read schema revision") as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database, revision: str = HEAD) -> None:
    if revision == HEAD:
        head = scripted_head()
        if head is not None and _stored_revision(db) == head:
            return
    from alembic import command

    target = head_revision() if revision == HEAD else revision
    if current_revision(db) == target:
        return
    config = _config()
    with db.write("migrate store schema") as conn:
        if db.is_postgres:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
