"""Engines, transactions and error translation shared by every repository of the SQL store.

SQLite is the embedded default, so it is set up for several processes on one file: WAL (readers never block
the writer), a busy timeout instead of instant "database is locked", foreign keys on, and write transactions
opened with ``BEGIN IMMEDIATE`` so two writers serialize at the start of a transaction rather than failing at
commit. pysqlite's own transaction handling is switched off for that (SQLAlchemy's documented recipe).
PostgreSQL gets pre-ping so a restarted server costs one retry, not an error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.dml import Insert

from registry.errors import Conflict, InvalidArgument, RegistryError, StoreUnavailable
from registry.redaction import redacted_url

__all__ = ["Database", "translate_errors"]

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
SQLITE_PAGE_SIZE = 16384  # bytes; see _sqlite_engine
_IMMEDIATE = "registry_immediate"


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Turn driver errors into registry errors so no SQLAlchemy type leaks past the store."""
    try:
        yield
    except RegistryError:
        raise
    except exc.IntegrityError as error:
        raise Conflict(f"{what}: conflicts with existing data ({_first_line(error)})") from error
    except (exc.DataError, OverflowError) as error:
        raise InvalidArgument(f"{what}: invalid value ({_first_line(error)})") from error
    except (exc.OperationalError, exc.InterfaceError, exc.DisconnectionError) as error:
        raise StoreUnavailable(f"{what}: store unavailable ({_first_line(error)})") from error
    except exc.SQLAlchemyError as error:
        raise StoreUnavailable(f"{what}: store error ({_first_line(error)})") from error


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    database = parsed.database
    if database in (None, "", ":memory:"):
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        folder = Path(database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InvalidArgument(
                f"cannot create the folder of the SQLite store {str(folder)!r}: {error.strerror}"
            ) from error
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if database not in (None, "", ":memory:"):
            # Only a new, empty database takes it, and only before WAL mode: a trace row is 1-2 KB, and on
            # 4 KB pages the trace writer wrote about a third more bytes, and made more system calls, per row
            # (measured: ~33 -> ~23 us of CPU per row). An existing database keeps its page size.
            cursor.execute(f"PRAGMA page_size = {SQLITE_PAGE_SIZE}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


CONNECT_TIMEOUT = 10  # seconds to open a PostgreSQL connection before the store counts as unavailable


def _postgres_engine(url: str, parsed: URL) -> Engine:
    # A server that accepts the connection but never answers (frozen, or behind a stalled proxy) would
    # otherwise hold every caller forever; a timeout given in the URL wins.
    connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": CONNECT_TIMEOUT}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


class Database:
    """One engine plus read/write transaction scopes; the only object repositories share."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            parsed = make_url(url)
        except (exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
            raise InvalidArgument(f"invalid store URL {redacted_url(url)!r}") from None
        backend = parsed.get_backend_name()
        unsupported = f"unsupported store URL {parsed.render_as_string(hide_password=True)!r}"
        if backend not in ("sqlite", "postgresql"):
            raise InvalidArgument(f"{unsupported}: use sqlite:///PATH or postgresql+psycopg://...")
        try:
            self.engine = _sqlite_engine(url) if backend == "sqlite" else _postgres_engine(url, parsed)
        except (exc.NoSuchModuleError, ImportError) as error:  # a driver that is not installed
            raise InvalidArgument(
                f"{unsupported} ({_first_line(error)}): use sqlite:///PATH or postgresql+psycopg://..."
            ) from error
        self.dialect = backend

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def read(self, what: str) -> Iterator[Connection]:
        with translate_errors(what), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self, what: str) -> Iterator[Connection]:
        """A transaction holding the SQLite write lock from the start; all of it commits or none of it."""
        with translate_errors(what), self.engine.connect() as conn:
            conn.execution_options(**{_IMMEDIATE: True})
            with conn.begin():
                yield conn

    def insert_ignore(self, table: Table, keys: list[str]) -> Insert:
        """An insert that skips rows whose ``keys`` already exist: the basis of idempotent writes."""
        if self.is_postgres:
            return postgresql.insert(table).on_conflict_do_nothing(index_elements=keys)
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=keys)

    def insert_new(self, conn: Connection, table: Table, keys: list[str], row: dict[str, Any]) -> bool:
        """Insert ``row`` unless its key exists; True when inserted (RETURNING: rowcount is unreliable)."""
        stmt = self.insert_ignore(table, keys).values(**row).returning(table.c[keys[0]])
        return conn.execute(stmt).first() is not None

    def upsert(self, table: Table, keys: list[str], update: list[str]) -> Insert:
        """An insert that overwrites ``update`` columns of a row whose ``keys`` already exist."""
        if self.is_postgres:
            pg_stmt = postgresql.insert(table)
            return pg_stmt.on_conflict_do_update(
                index_elements=keys, set_={name: pg_stmt.excluded[name] for name in update}
            )
        lite_stmt = sqlite.insert(table)
        return lite_stmt.on_conflict_do_update(
            index_elements=keys, set_={name: lite_stmt.excluded[name] for name in update}
        )

    def dispose(self) -> None:
        self.engine.dispose()
