"""Database fixtures for store tests: every test runs against a real SQLite file and a real PostgreSQL.

PostgreSQL isolation: each test module gets its own freshly created database (random name, dropped with
``FORCE`` afterwards), and each test inside it its own schema selected through ``search_path``, so tests never
see each other's rows and a crashed run leaves at most one stray ``runtime_test_*`` database behind.

An unreachable PostgreSQL fails the test with a message saying how to fix it; it is never skipped.
Set ``RUNTIME_TEST_PG_URL`` to use another server (a superuser or a role allowed to create databases).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from registry.store import SqlStore

PG_URL_ENV = "RUNTIME_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", "postgres"]


def pg_admin_url() -> str:
    return os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)


def _libpq(url: str) -> str:
    """The same URL without SQLAlchemy's ``+psycopg`` driver suffix, for psycopg itself."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _admin_connection() -> psycopg.Connection[tuple[object, ...]]:
    url = pg_admin_url()
    try:
        return psycopg.connect(_libpq(url), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {url} ({str(exc).strip().splitlines()[0]}). The store tests "
            f"need a real server: start one on 127.0.0.1:5432 with trust auth, or set {PG_URL_ENV}.",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def pg_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test module, dropped afterwards."""
    name = f"runtime_test_{uuid.uuid4().hex[:12]}"
    with _admin_connection() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(pg_admin_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        with _admin_connection() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def new_pg_schema_url(database_url: str) -> str:
    """Create an empty schema in the module's database and return a URL whose ``search_path`` is it."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(database_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    return f"{database_url}?options={quote(f'-csearch_path={schema}')}"


def new_store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'store-{uuid.uuid4().hex[:8]}.db'}"
    return new_pg_schema_url(request.getfixturevalue("pg_database_url"))


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store location (not yet migrated), once per backend."""
    return new_store_url(str(request.param), tmp_path, request)


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    with SqlStore(store_url) as opened:
        yield opened
