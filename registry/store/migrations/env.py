"""Alembic environment for the registry store.

Only ever run programmatically by :func:`registry.store.migrate.upgrade`, which hands over a connection
that is already inside a locked transaction; Alembic then joins that transaction instead of opening its own.
"""

from __future__ import annotations

from alembic import context

from registry.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
