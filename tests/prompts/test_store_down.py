"""When the store cannot answer, cached prompts keep serving and ``fallback=`` covers a cold start.

The outage is real: a PostgreSQL database dropped under a warm cache, a store URL nothing listens on, and
tables locked so that reads wait (as on a frozen server) until ``aload_prompt`` stops waiting for them.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from runtime import store_calls
from runtime.observability import attributes as a
from runtime.prompts import FallbackPrompt, aload_prompt, configure, load_prompt
from tests.conftest_db import pg_admin_url
from tests.servers import wait_until

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:9/nothing-listens-here"


def _connect(url: str, autocommit: bool) -> psycopg.Connection[tuple[object, ...]]:
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(libpq, autocommit=autocommit, connect_timeout=5)


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return _connect(pg_admin_url(), autocommit=True)


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


def test_an_async_load_the_store_does_not_answer_in_time_is_served_as_in_an_outage(
    doomed_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``aload_prompt`` waits for the store at most the API deadline, then serves what an outage serves."""
    monkeypatch.setattr(store_calls.api_calls, "timeout", 0.5)
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")

    async def request() -> tuple[int, FallbackPrompt]:
        with tracer.start_as_current_span("request"):
            stale = await aload_prompt("prompts:/support@production")
            spare = await aload_prompt("prompts:/welcome@production", fallback="Welcome {{ name }}")
        with pytest.raises(StoreUnavailable, match=r"the prompt registry did not answer within 0\.5 s"):
            await aload_prompt("prompts:/support/2")  # never cached, no fallback: the outage shows
        assert isinstance(spare, FallbackPrompt)
        return stale.version, spare

    with RegistryClient(doomed_database, tmp_path / "artifacts") as client:
        client.register_prompt("support", "v1 {{ q }}")
        client.register_prompt("support", "v2 {{ q }}")
        client.set_prompt_alias("support", "production", 1)
        configure(client, ttl=0)  # no TTL: every alias load goes to the store
        assert load_prompt("prompts:/support@production").version == 1
        with contextlib.closing(_connect(doomed_database, autocommit=False)) as locker:
            # Without a deadline the reads would wait until PostgreSQL ends this session, 20 s from now.
            locker.execute("SET idle_in_transaction_session_timeout = '20s'")
            locker.execute("LOCK TABLE prompts, prompt_versions, prompt_aliases IN ACCESS EXCLUSIVE MODE")
            version, spare = asyncio.run(request())
        assert (version, spare.format(name="Ada")) == (1, "Welcome Ada")
        assert wait_until(lambda: store_calls.api_calls.waiting == 0)  # the reads end with the lock

    (span,) = exporter.get_finished_spans()  # recorded on the request's span, not in a store thread
    assert [(e.attributes or {}).get(a.PROMPT_SOURCE) for e in span.events] == ["stale", "fallback"]
    provider.shutdown()
