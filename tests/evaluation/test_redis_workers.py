"""Distributed scoring through a real Redis Stream, with real ``runtime worker`` processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from registry.client import RegistryClient
from registry.entities import Assessment
from registry.errors import StoreUnavailable
from runtime.app import create_app
from runtime.evaluation.catalog import ScorerCatalog
from runtime.evaluation.engine import ScoringEngine
from runtime.evaluation.job import ScorerRef, ScoringJob
from runtime.evaluation.redis_queue import JOB_FIELD
from runtime.evaluation.stream_worker import StreamWorker
from tests.evaluation.conftest import REDIS_URL, settings_for, stored_trace, write_scorers
from tests.servers import ROOT, ThreadServer, wait_until
from tests.serving.agents import AsyncEcho, loaded

pytestmark = pytest.mark.redis

GATED = """
import os
import time

CLAIMED = {claimed!r}


@scorer
def quick(outputs: str) -> bool:
    return bool(outputs)


@scorer
def gate(outputs: str) -> bool:
    # The first worker to get here records its pid and hangs (the test kills it); any later one passes.
    try:
        fd = os.open(CLAIMED, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return True
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    time.sleep(120)
    return True
"""


class Worker:
    """A real ``runtime worker`` process; its log goes to a file (a full pipe would stall it)."""

    def __init__(self, name: str, tmp_path: Path, scorers: Path, store_url: str, stream: str) -> None:
        self.log = tmp_path / f"{name}.log"
        self._out = self.log.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "runtime.cli.main",
                "worker",
                "--scorers",
                str(scorers),
                "--store-url",
                store_url,
                "--redis-url",
                REDIS_URL,
                "--stream",
                stream,
                "--consumer",
                name,
                "--claim-idle",
                "3",
                "--log-level",
                "info",
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def text(self) -> str:
        return self.log.read_text()

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._out.close()
        return self.proc.returncode


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def backlog(r: redis.Redis, stream: str) -> tuple[int, int]:
    """(entries in the stream, entries delivered but not acknowledged)."""
    pending: Any = r.xpending(stream, "scorers")
    return int(r.xlen(stream)), int(pending["pending"])


def test_workers_share_the_stream_and_a_killed_workers_jobs_are_scored_once(
    tmp_path: Path, stream: str, workers: list[Worker], client: RegistryClient
) -> None:
    claimed = tmp_path / "claimed"
    scorers = write_scorers(tmp_path / "scorers.py", GATED.format(claimed=str(claimed)))
    settings = settings_for(tmp_path, scorers=str(scorers), scoring_queue="redis", redis_url=REDIS_URL)
    settings = settings.with_(scoring_stream=stream)
    with ThreadServer(create_app(settings, agent=loaded(AsyncEcho(), "echo"))) as server:
        traces = []
        for i in range(6):
            r = httpx.post(f"{server.url}/v1/responses", json={"input": f"question {i}"}, timeout=10)
            assert r.status_code == 200
            traces.append(r.headers["x-runtime-trace-id"])
        with redis.Redis.from_url(REDIS_URL) as r:
            assert wait_until(lambda: r.xlen(stream) == 6, timeout=10)  # produced off the request path

            workers.extend(Worker(n, tmp_path, scorers, client.store_url, stream) for n in ("w1", "w2"))
            assert wait_until(claimed.exists, timeout=30), workers[0].text() + workers[1].text()
            assert wait_until(lambda: claimed.read_text() != "", timeout=5)
            victim = next(w for w in workers if str(w.proc.pid) == claimed.read_text())
            survivor = next(w for w in workers if w is not victim)
            os.kill(victim.proc.pid, signal.SIGKILL)  # mid-job: its gate job is delivered, not acknowledged
            assert victim.proc.wait(10) == -signal.SIGKILL

            def scored() -> Counter[tuple[str, str]]:
                return Counter(
                    (a.trace_id, a.name) for t in traces for a in client.search_assessments(trace_id=t)
                )

            expected = {(t, n) for t in traces for n in ("quick", "gate")}
            assert wait_until(lambda: set(scored()) == expected, timeout=30), survivor.text()
            assert set(scored().values()) == {1}  # every score exactly once, none lost with the dead worker
            assert wait_until(lambda: backlog(r, stream) == (0, 0), timeout=10)
            assert "reclaimed job" in survivor.text()
            assert r.xlen(f"{stream}:dead") == 0
        assert survivor.stop() == 0


def job(trace_id: str, *names: str) -> ScoringJob:
    return ScoringJob(trace_id=trace_id, scorers=[ScorerRef(name=n) for n in names], outputs="ok")


class FlakyStore:
    """The real store, except that the first write fails as if the database were down."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client
        self.failures = 1

    def log_assessment(self, assessment: Assessment) -> Assessment:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("store unavailable (simulated)")
        return self.client.log_assessment(assessment)

    def get_trace(self, trace_id: str) -> Any:
        return self.client.get_trace(trace_id)


def run_worker(worker: StreamWorker, until: Any, timeout: float = 20.0) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop, drain_timeout=5))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await asyncio.to_thread(until) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        stop.set()
        await task

    asyncio.run(main())


def test_poison_and_failed_jobs(stream: str, client: RegistryClient) -> None:
    store = FlakyStore(client)
    engine = ScoringEngine(ScorerCatalog(), store, trace_wait=0)
    worker = StreamWorker(
        engine, REDIS_URL, stream, consumer="solo", claim_idle=0.2, max_deliveries=2, block=0.1
    )
    retried = stored_trace(client)
    poisoned = stored_trace(client)
    with redis.Redis.from_url(REDIS_URL, decode_responses=True) as r:
        r.xgroup_create(stream, "scorers", id="0", mkstream=True)
        poison_id = r.xadd(stream, {JOB_FIELD: job(poisoned, "no_refusal").model_dump_json()})
        r.xreadgroup("scorers", "ghost", {stream: ">"}, count=1)  # a consumer that keeps dying on it:
        for _ in range(2):  # delivered three times, never acknowledged
            r.xclaim(stream, "scorers", "ghost", 0, [poison_id])
        r.xadd(stream, {JOB_FIELD: "{not json"})
        r.xadd(stream, {JOB_FIELD: job(retried, "no_refusal").model_dump_json()})

        def done() -> bool:
            return r.xlen(f"{stream}:dead") == 2 and backlog(r, stream) == (0, 0)

        run_worker(worker, done)
        assert done()
        dead = {e[1]["entry_id"]: e[1] for e in r.xrange(f"{stream}:dead")}
        assert dead[poison_id]["reason"] == "delivered 4 times without success"
        assert next(d["reason"] for k, d in dead.items() if k != poison_id).startswith("malformed job")
    # the job whose write failed stayed pending, was reclaimed after claim_idle and scored once
    assert store.failures == 0
    assert [a.name for a in client.search_assessments(trace_id=retried)] == ["no_refusal"]
    assert client.search_assessments(trace_id=poisoned) == []


def test_a_worker_recreates_its_group_when_redis_comes_back_empty(
    stream: str, client: RegistryClient
) -> None:
    """Redis restarted without persistence: stream and group are gone; the next job still gets scored."""
    engine = ScoringEngine(ScorerCatalog(), client, trace_wait=0)
    worker = StreamWorker(engine, REDIS_URL, stream, consumer="solo", block=0.1)
    before, after = stored_trace(client), stored_trace(client)
    with redis.Redis.from_url(REDIS_URL, decode_responses=True) as r:
        r.xadd(stream, {JOB_FIELD: job(before, "no_refusal").model_dump_json()})
        state = {"wiped": False}

        def scored_then_wiped_then_scored() -> bool:
            if not state["wiped"]:
                if not client.search_assessments(trace_id=before):
                    return False
                r.delete(stream)  # what a restart without persistence leaves: no stream, no group
                r.xadd(stream, {JOB_FIELD: job(after, "no_refusal").model_dump_json()})  # no group either
                state["wiped"] = True
            return bool(client.search_assessments(trace_id=after))

        run_worker(worker, scored_then_wiped_then_scored)
        assert state["wiped"]
        assert [a.name for a in client.search_assessments(trace_id=after)] == ["no_refusal"]
        assert backlog(r, stream) == (0, 0)  # the group is back: the job was acknowledged and removed


def test_redis_down_degrades_scoring_never_requests(tmp_path: Path) -> None:
    scorers = write_scorers(tmp_path / "s.py", "@scorer\ndef seen(outputs):\n    return True\n")
    settings = settings_for(
        tmp_path,
        scorers=str(scorers),
        scoring_queue="redis",
        redis_url="redis://127.0.0.1:1/0",
        tracing=False,
    )
    with ThreadServer(create_app(settings, agent=loaded(AsyncEcho(), "echo"))) as server:
        for i in range(3):
            assert (
                httpx.post(f"{server.url}/v1/responses", json={"input": f"q{i}"}, timeout=10).status_code
                == 200
            )

        def skipped() -> bool:
            text = httpx.get(f"{server.url}/metrics", timeout=5).text
            return 'runtime_scoring_skipped_total{reason="redis_error"} 3' in text

        assert wait_until(skipped, timeout=15)
