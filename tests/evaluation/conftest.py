"""Fixtures for evaluation tests: a real SQLite store, apps with online scoring, unique Redis names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry.client import RegistryClient
from registry.entities import TraceRecord, new_trace_id
from runtime.config import Settings

REDIS_URL = "redis://127.0.0.1:6379/0"


def settings_for(tmp_path: Path, **kw: Any) -> Settings:
    """A test app's settings: its own SQLite store, nothing read from the environment."""
    values: dict[str, Any] = {
        "home": str(tmp_path / "home"),
        "store_url": f"sqlite:///{tmp_path / 'runtime.db'}",
        "artifact_root": str(tmp_path / "artifacts"),
        "sse_ping_interval": 0,
        "scoring_queue": "local",
        **kw,
    }
    return Settings.from_env(environ={}, **values)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[RegistryClient]:
    with RegistryClient(f"sqlite:///{tmp_path / 'runtime.db'}", tmp_path / "artifacts") as opened:
        yield opened


def stored_trace(client: RegistryClient, **kw: Any) -> str:
    """A trace row as the exporter would write it (for engine tests that need no server)."""
    trace_id = new_trace_id()
    client.log_traces([TraceRecord(trace_id=trace_id, start_time_ns=1, latency_ms=120.0, ttft_ms=40.0, **kw)])
    return trace_id


def write_scorers(path: Path, body: str) -> Path:
    path.write_text("from runtime.evaluation import Feedback, scorer\n\n" + body)
    return path
