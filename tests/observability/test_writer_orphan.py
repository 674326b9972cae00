"""A trace writer whose server died does not wait for a store that never answers: it exits after a grace.

The hang is real: the writer's PostgreSQL table is locked by the test (as a frozen store, or a migration
holding a lock, would leave it), so the writer's insert waits; its server is SIGKILLed meanwhile.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from registry.store import SqlStore
from tests.conftest_db import new_pg_schema_url
from tests.observability.test_writer_process import gone, stored_traces
from tests.servers import wait_until

# A server that starts its writer, hands it one batch and dies without a word (no CLOSE).
DYING_SERVER = """
import os, signal, sys
from runtime.observability.store_export import ThreadWriter
from runtime.observability.writer_client import ProcessWriter
from tests.observability.test_writer_process import request_batch

grace = float(sys.argv[2])
writer = ProcessWriter(
    sys.argv[1], lambda outcome: None, ThreadWriter(None, lambda outcome: None), orphan_grace=grace
)
writer.start()
while not writer._ready:
    writer._receive(1.0)
print(writer.pid, flush=True)
sys.stdin.readline()  # the test has locked the table
batch, count = request_batch()
writer.write(batch, count)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture
def url(pg_database_url: str) -> str:
    store_url = new_pg_schema_url(pg_database_url)
    SqlStore(store_url).close()  # migrated, as the server does before its writer starts
    return store_url


@contextlib.contextmanager
def locked_traces(url: str) -> Iterator[None]:
    """The traces table locked against every other session until the block ends."""
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with contextlib.closing(psycopg.connect(libpq, autocommit=False, connect_timeout=5)) as locker:
        # Should the writer never give up, PostgreSQL ends this session (and the lock) after 60 s.
        locker.execute("SET idle_in_transaction_session_timeout = '60s'")
        locker.execute("LOCK TABLE traces IN ACCESS EXCLUSIVE MODE")
        yield
        locker.rollback()


def test_a_writer_whose_server_died_gives_a_hung_store_its_grace_then_exits(url: str) -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(DYING_SERVER), url, "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert server.stdout is not None and server.stdin is not None
        writer = int(server.stdout.readline())
        with locked_traces(url):
            server.stdin.write("go\n")
            server.stdin.flush()
            assert server.wait(timeout=30) == -signal.SIGKILL
            # Its insert waits on the lock; the writer gives up 2 s after its server is gone, the lock
            # still held.
            assert wait_until(lambda: gone(writer), timeout=20)
        _, stderr = server.communicate(timeout=10)  # the writer held the server's stderr: it wrote there
    finally:
        if server.poll() is None:
            server.kill()
    assert "the server is gone and the store did not take the last spans within 2 s" in stderr
    assert stored_traces(url) == 0  # exited without the batch, as it said


def test_a_writer_whose_server_died_still_writes_what_it_got_when_the_store_answers(url: str) -> None:
    server = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DYING_SERVER), url, "30"],
        input="go\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert server.returncode == -signal.SIGKILL, server.stderr
    assert wait_until(lambda: gone(int(server.stdout.split()[0])), timeout=10)
    assert stored_traces(url) == 1
    assert "exiting without them" not in server.stderr
