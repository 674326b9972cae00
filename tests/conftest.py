"""Shared test setup. Database fixtures live in tests/conftest_db.py (PostgreSQL and SQLite, both real)."""

pytest_plugins = ["tests.conftest_db"]
