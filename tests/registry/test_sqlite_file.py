"""The embedded SQLite store's file settings: WAL, and larger pages for a new file only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from registry.store import SqlStore
from registry.store.engine import SQLITE_PAGE_SIZE
from tests.registry.helpers import ready_model


def pragma(path: Path, name: str) -> object:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


def test_a_new_store_file_gets_wal_and_large_pages(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with SqlStore(f"sqlite:///{path}") as store:
        ready_model(store)
    assert pragma(path, "journal_mode") == "wal"
    assert pragma(path, "page_size") == SQLITE_PAGE_SIZE > 4096


def test_an_existing_store_file_keeps_its_page_size_and_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # as an earlier version made it: 4 KB pages, then WAL
        conn.execute("PRAGMA page_size = 4096")
        conn.execute("PRAGMA journal_mode = WAL")
    with SqlStore(f"sqlite:///{path}") as store:
        model = ready_model(store)
    with SqlStore(f"sqlite:///{path}") as store:
        assert store.get_logged_model(model.model_id).model_id == model.model_id
    assert pragma(path, "page_size") == 4096
    assert pragma(path, "journal_mode") == "wal"
