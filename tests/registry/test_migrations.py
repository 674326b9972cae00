from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from registry.entities import ModelStatus, new_model_id
from registry.store import SqlStore, migrate
from registry.store.engine import Database
from registry.store.tables import metadata


def test_store_created_at_first_revision_upgrades_on_open_and_keeps_its_data(store_url: str) -> None:
    db = Database(store_url)
    try:
        migrate.upgrade(db, "0001")
        assert migrate.current_revision(db) == "0001"
        assert "traces" not in inspect(db.engine).get_table_names()
        model_id = new_model_id()
        with db.write("seed") as conn:
            conn.execute(
                text(
                    "INSERT INTO logged_models (model_id, name, status, params, tags, metrics,"
                    " artifact_location, prompts, creation_time, last_updated_time)"
                    " VALUES (:id, 'old', 'READY', '{}', '{}', '{}', 'models/old', '[]', 1, 1)"
                ),
                {"id": model_id},
            )
    finally:
        db.dispose()

    with SqlStore(store_url) as store:
        assert store.schema_revision() == migrate.head_revision()
        assert store.get_logged_model(model_id).status is ModelStatus.READY
        assert store.create_model_version("old", model_id).version == 1
        assert store.search_traces() == ([], None)


def test_head_schema_matches_the_table_definitions(store: SqlStore, store_url: str) -> None:
    """The migrations and ``tables.py`` must describe the same schema, or autogenerate would see drift."""
    db = Database(store_url)
    try:
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        db.dispose()
    assert diff == []


def test_opening_a_store_at_head_runs_no_migration(store: SqlStore, store_url: str) -> None:
    db = Database(store_url)
    try:
        migrate.upgrade(db)
        assert migrate.current_revision(db) == migrate.head_revision()
    finally:
        db.dispose()


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url"])
def test_unsupported_store_urls_are_invalid_arguments(url: str) -> None:
    from registry.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="store URL"):
        SqlStore(url)


def test_unreachable_postgres_is_store_unavailable() -> None:
    from registry.errors import StoreUnavailable

    with pytest.raises(StoreUnavailable, match="store unavailable"):
        SqlStore("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")


def test_the_head_read_from_the_scripts_is_alembics_head() -> None:
    """Guards the Alembic-free check that lets a store already at head open without importing Alembic."""
    assert migrate.scripted_head() == migrate.head_revision()


def test_a_store_at_head_opens_without_a_migration(store_url: str) -> None:
    with SqlStore(store_url) as first:
        assert first.schema_revision() == migrate.head_revision()
    db = Database(store_url)
    try:
        assert migrate._stored_revision(db) == migrate.head_revision()
    finally:
        db.dispose()
    with SqlStore(store_url) as again:
        assert again.schema_revision() == migrate.head_revision()


def _index_sql(db: Database, name: str) -> str:
    query = (
        "SELECT indexdef FROM pg_indexes WHERE indexname = :name AND schemaname = current_schema()"
        if db.is_postgres
        else "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
    )
    with db.read("index definition") as conn:
        return str(conn.execute(text(query), {"name": name}).scalar_one())


def test_trace_indexes_on_nullable_columns_become_partial_and_keep_serving_queries(store_url: str) -> None:
    """0005: the model id, session and user indexes skip NULL rows; traces stored before still match."""
    db = Database(store_url)
    try:
        migrate.upgrade(db, "0004")
        with db.write("seed") as conn:
            for n, (session, user) in enumerate([("s1", "u1"), (None, None), ("s1", None), (None, "u1")]):
                conn.execute(
                    text(
                        "INSERT INTO traces (trace_id, model_id, status, start_time_ns, tokens_estimated,"
                        " session_id, user_id, attributes, prompts)"
                        " VALUES (:id, :model, 'OK', :start, false, :session, :user, '{}', '[]')"
                    ),
                    {
                        "id": f"tr-{n:032x}",
                        "model": "m-1" if n % 2 else None,
                        "start": 1_000 + n,
                        "session": session,
                        "user": user,
                    },
                )
        migrate.upgrade(db)
        for name, column in (
            ("ix_traces_model", "model_id"),
            ("ix_traces_session", "session_id"),
            ("ix_traces_user", "user_id"),
        ):
            definition = _index_sql(db, name).lower()
            assert f"where ({column} is not null)" in definition.replace('"', "") or (
                f"where {column} is not null" in definition
            ), definition
            assert "start_time_ns" in definition
        assert "where" not in _index_sql(db, "ix_traces_start").lower()
    finally:
        db.dispose()
    with SqlStore(store_url) as store:
        by_session, _ = store.search_traces(session="s1")
        by_user, _ = store.search_traces(user="u1")
        by_model, _ = store.search_traces(model_id="m-1")
    assert [t.trace_id for t in by_session] == [f"tr-{2:032x}", f"tr-{0:032x}"]  # newest first
    assert [t.trace_id for t in by_user] == [f"tr-{3:032x}", f"tr-{0:032x}"]
    assert [t.trace_id for t in by_model] == [f"tr-{3:032x}", f"tr-{1:032x}"]
