"""Fixtures for observability tests: apps whose finished spans land in an in-memory exporter too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.testclient import TestClient

from runtime.app import create_app
from runtime.config import Settings
from runtime.observability.providers import Observability
from runtime.serving import LoadedAgent


def settings_for(tmp_path: Path, **kw: Any) -> Settings:
    """Settings of a test app: its own SQLite store file, no pings, nothing read from the environment."""
    values: dict[str, Any] = {
        "home": str(tmp_path / "home"),
        "store_url": f"sqlite:///{tmp_path / 'traces.db'}",
        "sse_ping_interval": 0,
        **kw,
    }
    return Settings.from_env(environ={}, **values)


def observability_of(app: Starlette) -> Observability:
    obs = app.state.runtime.resources["observability"]
    assert isinstance(obs, Observability)
    return obs


def capture_spans(app: Starlette) -> InMemorySpanExporter:
    """Also send the app's finished spans, synchronously, to an in-memory exporter."""
    exporter = InMemorySpanExporter()
    observability_of(app).add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def by_name(spans: tuple[ReadableSpan, ...] | list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"expected one span {name!r}, got {[s.name for s in spans]}"
    return found[0]


def root_of(spans: tuple[ReadableSpan, ...] | list[ReadableSpan]) -> ReadableSpan:
    roots = [s for s in spans if s.parent is None]
    assert len(roots) == 1, [s.name for s in roots]
    return roots[0]


class TracedApp:
    def __init__(self, app: Starlette, client: TestClient, spans: InMemorySpanExporter) -> None:
        self.app = app
        self.client = client
        self.spans = spans

    @property
    def observability(self) -> Observability:
        return observability_of(self.app)

    def flush(self) -> None:
        assert self.observability.flush(10)


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[Any]:
    """A factory: ``traced(agent, **settings)`` -> a started :class:`TracedApp` (closed after the test)."""
    clients: list[TestClient] = []

    def make(agent: LoadedAgent | None = None, **kw: Any) -> TracedApp:
        app = create_app(settings_for(tmp_path, **kw), agent=agent)
        spans = (
            capture_spans(app)
            if observability_of(app).tracer_provider is not None
            else InMemorySpanExporter()
        )
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return TracedApp(app, client, spans)

    yield make
    for client in reversed(clients):
        client.__exit__(None, None, None)
