"""Fixtures for prompt tests: a registry on each real backend, and a clean process-wide prompt loader."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from registry import RegistryClient
from runtime.prompts import api
from tests.observability.conftest import traced  # noqa: F401  # apps whose spans tests can read


@pytest.fixture
def client(store_url: str, tmp_path: Path) -> Iterator[RegistryClient]:
    """A registry on SQLite and on PostgreSQL (one test run each)."""
    with RegistryClient(store_url, tmp_path / "artifacts") as opened:
        yield opened


@pytest.fixture
def sqlite_client(tmp_path: Path) -> Iterator[RegistryClient]:
    """For behaviour that does not depend on the backend (the cache, the CLI)."""
    with RegistryClient(f"sqlite:///{tmp_path / 'prompts.db'}", tmp_path / "artifacts") as opened:
        yield opened


@pytest.fixture(autouse=True)
def _no_process_loader() -> Iterator[None]:
    """``load_prompt`` keeps one loader per process: start and leave every test without one."""
    api.unconfigure()
    yield
    api.unconfigure()
