"""A replica whose canary decision waits on a locked store still stops at once on SIGTERM.

Once in CI a ``runtime serve`` replica of ``test_replicas`` did not exit within 30 s of SIGTERM. The canary
control ran its store calls in the event loop's default executor, whose threads Python joins at shutdown:
a call waiting on a locked SQLite file held the process until the busy timeout (30 s) gave up.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from registry.client import RegistryClient
from runtime.cli.main import main
from tests.canary.conftest import ON_FLAKY, REDIS_URL, cli_options, register
from tests.servers import ServeProcess, wait_until


def test_a_promotion_waiting_on_a_locked_store_does_not_hold_the_replica_after_sigterm(
    tmp_path: Path, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with RegistryClient(f"sqlite:///{tmp_path / 'runtime.db'}", tmp_path / "artifacts") as client:
        register(client, tmp_path, "v1", ON_FLAKY)
        register(client, tmp_path, "v2")
        client.set_alias("bot", "champion", 1)
    env = {
        "RUNTIME_HOME": str(tmp_path / "home"),
        "RUNTIME_STORE_URL": f"sqlite:///{tmp_path / 'runtime.db'}",
        "RUNTIME_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
        "RUNTIME_REDIS_URL": REDIS_URL,
        "RUNTIME_CANARY_PREFIX": prefix,
        "RUNTIME_CANARY_POLL_INTERVAL": "0.2",
        "RUNTIME_TRACING": "false",
        "RUNTIME_SCORING_QUEUE": "local",
        "RUNTIME_LOG_LEVEL": "critical",  # v1 fails on purpose: no tracebacks in the pipe
    }
    lock = sqlite3.connect(tmp_path / "runtime.db", isolation_level=None, timeout=5)
    with contextlib.closing(lock), ServeProcess(["models:/bot@champion"], env=env, cwd=tmp_path) as server:
        server.wait_ready(timeout=60)
        capsys.readouterr()
        auto = ["--challenger", "2", "--weight", "50", "--auto", "--sticky-by", "none"]
        options = ["--min-requests", "20", "--json", *cli_options(tmp_path, prefix)]
        assert main(["canary", "start", "bot", *auto, *options]) == 0
        cid = json.loads(capsys.readouterr().out)["canary_id"]

        with httpx.Client(base_url=server.url, timeout=30) as http, redis.Redis.from_url(REDIS_URL) as r:

            def ask() -> httpx.Response:
                return http.post("/invocations", json={"input": [{"role": "user", "content": "flaky"}]})

            assert wait_until(lambda: ask().headers.get("x-runtime-variant") is not None, timeout=20)
            lock.execute("BEGIN IMMEDIATE")  # the store's write lock, held until the replica has stopped

            def decided() -> bool:  # v1 fails on "flaky", v2 does not: the replica promotes v2
                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(lambda _: ask(), range(16)))
                return r.hget(f"{prefix}:canary:{cid}", "status") != b"running"

            assert wait_until(decided, timeout=30, interval=0.05)
            # Claimed in Redis; moving the alias waits for the lock (SQLite's busy timeout is 30 s).
            assert r.hget(f"{prefix}:canary:{cid}", "status") == b"promoting"

        assert server.terminate(timeout=10) == 0  # was ~30 s: what remained of the busy timeout
