"""Shared test setup. Database fixtures live in tests/conftest_db.py (PostgreSQL and SQLite, both real)."""

from pathlib import Path

import pytest

pytest_plugins = ["tests.conftest_db"]


@pytest.fixture(autouse=True)
def _own_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own folder, so the embedded store (./.runtime/) never leaks between tests."""
    monkeypatch.chdir(tmp_path)
