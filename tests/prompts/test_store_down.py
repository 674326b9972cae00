"""When the store cannot answer, cached prompts keep serving and ``fallback=`` covers a cold start.

The outage is real: a PostgreSQL database dropped under a warm cache, and a store URL nothing listens on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from psycopg import sql
from sqlalchemy.engine import make_url

from registry import RegistryClient, StoreUnavailable
from runtime.observability import attributes as a
from runtime.prompts import FallbackPrompt, configure, load_prompt
from tests.conftest_db import pg_admin_url

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:9/nothing-listens-here"


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    url = make_url(pg_admin_url()).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


@pytest.fixture
def doomed_database() -> Iterator[str]:
    """A PostgreSQL database of its own, which the test may drop while clients still use it."""
    name = f"runtime_test_down_{uuid.uuid4().hex[:10]}"
    with _admin() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(pg_admin_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        with _admin() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _drop(url: str) -> None:
    name = make_url(url).database
    assert name is not None
    with _admin() as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_a_warm_cache_keeps_serving_through_an_outage(doomed_database: str, tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with RegistryClient(doomed_database, tmp_path / "artifacts") as client:
        client.register_prompt("support", "v1 {{ q }}")
        client.register_prompt("support", "v2 {{ q }}")
        client.set_prompt_alias("support", "production", 2)
        configure(client, ttl=0)  # no TTL: every alias load goes to the store while it is up
        assert load_prompt("prompts:/support@production").version == 2
        assert load_prompt("prompts:/support/1").version == 1

        _drop(doomed_database)

        with tracer.start_as_current_span("request"):
            stale = load_prompt("prompts:/support@production")
            again = load_prompt("prompts:/support@production", fallback="never used: a version is known")
            pinned = load_prompt("prompts:/support/1")
            spare = load_prompt("prompts:/welcome@production", fallback="Welcome {{ name }}")
        assert (stale.version, again.version, pinned.version) == (2, 2, 1)
        assert isinstance(spare, FallbackPrompt)
        assert (spare.version, spare.uri) == (0, "prompts:/welcome@production")
        assert spare.format(name="Ada") == "Welcome Ada"
        with pytest.raises(StoreUnavailable, match="store unavailable"):
            load_prompt("prompts:/support/3")  # never cached, no fallback: the outage shows
        with pytest.raises(StoreUnavailable):
            load_prompt("prompts:/welcome@production")

    (span,) = exporter.get_finished_spans()
    sources = [(e.attributes or {}).get(a.PROMPT_SOURCE) for e in span.events]
    assert sources == ["stale", "stale", "cache", "fallback"]
    assert (span.attributes or {})[a.PROMPTS] == ("prompts:/support/2", "prompts:/support/1")
    provider.shutdown()


def test_a_cold_start_serves_the_fallback_until_the_store_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNTIME_STORE_URL", UNREACHABLE)
    configure()  # as outside a server: the store is opened from the environment on first use
    spare = load_prompt(
        "prompts:/support@production", fallback=[{"role": "system", "content": "Be {{ tone }}"}]
    )
    assert isinstance(spare, FallbackPrompt)
    assert spare.format(tone="brief") == [{"role": "system", "content": "Be brief"}]
    with pytest.raises(StoreUnavailable, match=r"Connection refused|connection failed"):
        load_prompt("prompts:/support@production")
