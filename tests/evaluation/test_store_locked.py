"""Scoring that waits on a locked store: it never holds a stopped server, and never takes the API's budget.

The lock is real: a second SQLite connection holds the store's write lock (``BEGIN IMMEDIATE``), so every
assessment write waits in SQLite's busy handler (30 s). Scoring used to wait in the event loop's default
executor, whose threads Python joins at shutdown: such a server exited only when the busy timeout gave up.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runtime import store_calls
from runtime.app import create_app
from tests.evaluation.conftest import settings_for, write_scorers
from tests.evaluation.test_online import ask, assessments, metric
from tests.servers import ROOT, ServeProcess, ThreadServer, wait_until
from tests.serving.agents import AsyncEcho, loaded


@pytest.fixture
def write_lock(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to the test store; ``execute("BEGIN IMMEDIATE")`` takes its write lock until closed."""
    lock = sqlite3.connect(tmp_path / "runtime.db", isolation_level=None, timeout=5)
    with contextlib.closing(lock):
        yield lock


def test_a_score_waiting_on_a_locked_store_does_not_hold_the_server_after_sigterm(
    tmp_path: Path, write_lock: sqlite3.Connection
) -> None:
    scored = tmp_path / "scored"
    scorers = write_scorers(
        tmp_path / "scorers.py",
        f"from pathlib import Path\n\n@scorer\ndef seen(outputs):\n    Path({str(scored)!r}).touch()\n"
        "    return True\n",
    )
    env = {
        "RUNTIME_HOME": str(tmp_path / "home"),
        "RUNTIME_STORE_URL": f"sqlite:///{tmp_path / 'runtime.db'}",
        "RUNTIME_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
        "RUNTIME_SCORERS": str(scorers),
        "RUNTIME_SCORING_QUEUE": "local",
        "RUNTIME_TRACING": "false",  # nothing but the score writes to the store
        "RUNTIME_GRACE_PERIOD": "1",  # the queue is drained for 1 s, then its workers are cancelled
    }
    with ServeProcess([str(ROOT / "examples" / "echo_agent.py")], env=env, cwd=tmp_path) as server:
        server.wait_ready(timeout=60)
        write_lock.execute("BEGIN IMMEDIATE")  # held until the server has stopped
        ask(server.url, "score me")
        # Scored: the score's write follows at once and waits for the lock (SQLite's busy timeout is 30 s).
        assert wait_until(scored.exists, timeout=20)
        assert server.terminate(timeout=10) == 0  # was ~30 s: what remained of the busy timeout
    assert "the scores of this request are lost" not in server.output()  # cancelled, not failed


def test_background_writes_stuck_on_the_lock_fill_their_own_budget_not_the_apis(
    tmp_path: Path, write_lock: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_calls.background_calls, "limit", 4)
    monkeypatch.setattr(store_calls.api_calls, "limit", 4)  # as full as background's if they were shared
    scorers = write_scorers(tmp_path / "scorers.py", "@scorer\ndef seen(outputs):\n    return True\n")
    settings = settings_for(tmp_path, scorers=str(scorers), scoring_workers=6, tracing=False)
    with ThreadServer(create_app(settings, agent=loaded(AsyncEcho(), "echo"))) as server:
        url = server.url
        write_lock.execute("BEGIN IMMEDIATE")
        try:
            for i in range(6):
                ask(url, f"score me {i}")
            # Four writes wait for the lock; the two past the budget are refused at once (scores lost).
            assert wait_until(lambda: metric(url, "runtime_scoring_jobs_failed_total") == 2, timeout=20)
            listed = httpx.get(f"{url}/api/traces", params={"limit": 1}, timeout=20)
            assert listed.status_code == 200, listed.text  # an API store call still runs
            assert store_calls.background_calls.waiting == 4
        finally:
            write_lock.execute("ROLLBACK")
        assert wait_until(lambda: len(assessments(url, name="seen")) == 4, timeout=20)
        assert metric(url, "runtime_scoring_jobs_failed_total") == 2
