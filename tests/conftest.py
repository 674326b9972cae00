"""Shared test setup. Database fixtures live in tests/conftest_db.py (PostgreSQL and SQLite, both real)."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

pytest_plugins = ["tests.conftest_db"]


@pytest.fixture(autouse=True)
def _own_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own folder, so the embedded store (./.runtime/) never leaks between tests."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def stream() -> Iterator[str]:
    """A Redis Stream name no other test (or engineer's test run) uses; deleted afterwards."""
    name = f"test:scoring:{uuid.uuid4().hex}"
    yield name
    with redis.Redis.from_url("redis://127.0.0.1:6379/0") as r:
        r.delete(name, f"{name}:dead")
