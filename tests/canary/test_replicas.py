"""Canaries across two real ``runtime serve`` processes sharing one Redis and one SQLite store.

The servers start once for the module; each test starts its own canary through the CLI and ends it, in
file order (the last one promotes, which moves the champion for good).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from registry.client import RegistryClient
from runtime.canary.assignment import assign
from runtime.canary.model import CHALLENGER
from runtime.cli.main import main
from tests.canary.conftest import (
    EXCEPT_EXAMPLE,
    ON_FLAKY,
    REDIS_URL,
    delete_prefix,
    register,
    register_unloadable,
)
from tests.servers import ROOT, ServeProcess, wait_until


@dataclass
class Reply:
    server: int
    user: str | None
    status: int
    answer: str | None
    variant: str | None
    version: str | None


@dataclass
class Fleet:
    home: Path
    store_url: str
    prefix: str
    versions: dict[str, int]
    servers: list[ServeProcess]
    redis: redis.Redis
    http: list[httpx.Client]
    sent: Counter[str] = field(default_factory=Counter)  # replies by variant: what the counters must say
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def options(self) -> list[str]:
        return ["--redis-url", REDIS_URL, "--store-url", self.store_url, "--prefix", self.prefix]

    def start(self, capsys: pytest.CaptureFixture[str], *args: str) -> str:
        capsys.readouterr()
        assert main(["canary", "start", "bot", *args, "--json", "--actor", "tester", *self.options]) == 0
        return str(json.loads(capsys.readouterr().out)["canary_id"])

    def end(self, canary_id: str) -> None:
        if self.status(canary_id) == "running":
            assert main(["canary", "rollback", canary_id, "--reason", "test over", *self.options]) == 0

    def status(self, canary_id: str) -> str:
        return str(self.redis.hget(f"{self.prefix}:canary:{canary_id}", "status"))

    def counters(self, canary_id: str, variant: str) -> dict[str, float]:
        raw = self.redis.hgetall(f"{self.prefix}:stats:{canary_id}:{variant}")
        return {k: float(v) for k, v in raw.items()}

    def audit(self, canary_id: str) -> list[dict[str, Any]]:
        return [json.loads(item) for item in self.redis.lrange(f"{self.prefix}:audit:{canary_id}", 0, -1)]

    def ask(self, server: int, user: str | None = None, text: str = "hi") -> Reply:
        body: dict[str, Any] = {"input": [{"role": "user", "content": text}]}
        if user is not None:
            body["context"] = {"user_id": user}
        r = self.http[server].post("/invocations", json=body)
        answer = r.json()["output"][0]["content"][0]["text"] if r.status_code == 200 else None
        variant = r.headers.get("x-runtime-variant")
        if variant is not None:
            with self.lock:
                self.sent[variant] += 1
        return Reply(server, user, r.status_code, answer, variant, r.headers.get("x-runtime-model-version"))

    def wait_routing(self, user: str | None, variant: str) -> None:
        """Until both replicas have picked the canary up (a known user lands on ``variant``)."""
        for server in range(len(self.servers)):
            assert wait_until(lambda s=server: self.ask(s, user).variant == variant, timeout=20, interval=0.1)

    def wait_stopped(self, user: str | None = None) -> None:
        for server in range(len(self.servers)):
            assert wait_until(lambda s=server: self.ask(s, user).variant is None, timeout=20, interval=0.1)

    def wait_status(self, canary_id: str, status: str, drive: str | None = None) -> None:
        """Until the canary reaches ``status``; with ``drive``, keep sending that text (a bounded load)."""

        def reached() -> bool:
            if drive is not None:
                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(lambda i: self.ask(i % 2, None, drive), range(16)))
            return self.status(canary_id) == status

        assert wait_until(reached, timeout=40, interval=0.05), self.audit(canary_id)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    home = tmp_path_factory.mktemp("fleet")
    store_url = f"sqlite:///{home / 'runtime.db'}"
    prefix = f"test:canary:{uuid.uuid4().hex}"
    with RegistryClient(store_url, home / "artifacts") as client:
        versions = {
            "v1": register(client, home, "v1", ON_FLAKY),
            "v2": register(client, home, "v2"),
            "erroring": register(client, home, "v3", EXCEPT_EXAMPLE),
            "unloadable": register_unloadable(client, home),
        }
        client.set_alias("bot", "champion", versions["v1"])
    env = {
        "RUNTIME_HOME": str(home),
        "RUNTIME_STORE_URL": store_url,
        "RUNTIME_ARTIFACT_ROOT": str(home / "artifacts"),
        "RUNTIME_REDIS_URL": REDIS_URL,
        "RUNTIME_CANARY_PREFIX": prefix,
        "RUNTIME_CANARY_POLL_INTERVAL": "0.2",
        "RUNTIME_ALIAS_POLL_INTERVAL": "0.5",
        "RUNTIME_TRACING": "false",
        "RUNTIME_SCORING_QUEUE": "local",
        "RUNTIME_LOG_LEVEL": "critical",  # ServeProcess reads its pipe at exit: agent errors would fill it
    }
    servers = [ServeProcess(["models:/bot@champion"], env=env, cwd=home) for _ in range(2)]
    try:
        for server in servers:
            server.wait_ready(timeout=60)
        http = [httpx.Client(base_url=s.url, timeout=30) for s in servers]
        with redis.Redis.from_url(REDIS_URL, decode_responses=True) as r, http[0], http[1]:
            yield Fleet(home, store_url, prefix, versions, servers, r, http)
    finally:
        for server in servers:
            server.__exit__()
        delete_prefix(prefix)


def binomial_tolerance(n: int, p: float) -> float:
    return 4.5 * math.sqrt(n * p * (1 - p))


def test_split_matches_the_weight_sticks_across_replicas_and_counters_add_up(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    weight = 30
    cid = fleet.start(capsys, "--challenger", str(fleet.versions["v2"]), "--weight", str(weight))
    first_challenger = next(
        f"probe-{i}" for i in range(1000) if assign(cid, f"probe-{i}", weight) == CHALLENGER
    )
    fleet.wait_routing(first_challenger, CHALLENGER)

    users = [f"user-{i}" for i in range(200)]
    with ThreadPoolExecutor(16) as pool:
        replies = list(
            pool.map(lambda job: fleet.ask(job[0], job[1]), [(s, u) for u in users for s in (0, 1)])
        )
    assert {r.status for r in replies} == {200}
    by_user: dict[str, set[str | None]] = {}
    for r in replies:
        by_user.setdefault(str(r.user), set()).add(r.variant)
        assert r.answer == ("v2" if r.variant == CHALLENGER else "v1")
    assert all(len(v) == 1 for v in by_user.values()), "a user saw both variants"
    assert all(by_user[u] == {assign(cid, u, weight)} for u in users)
    on_challenger = sum(by_user[u] == {CHALLENGER} for u in users)
    assert abs(on_challenger - len(users) * weight / 100) <= binomial_tolerance(len(users), weight / 100)

    def exact() -> bool:
        return all(
            fleet.counters(cid, v).get("requests") == fleet.sent[v] for v in ("champion", "challenger")
        )

    assert wait_until(exact, timeout=10), (fleet.sent, fleet.counters(cid, "champion"))
    for variant in ("champion", "challenger"):
        c = fleet.counters(cid, variant)
        n = fleet.sent[variant]
        assert (c["ok"], c["input_tokens"], c["output_tokens"], c.get("errors", 0)) == (n, 2 * n, 3 * n, 0)
    shown = httpx.get(f"{fleet.servers[1].url}/api/canaries/{cid}").json()
    assert shown["variants"]["challenger"]["requests"] == fleet.sent["challenger"]
    assert [e["action"] for e in shown["audit"]] == ["start"]

    assert main(["canary", "rollback", cid, "--reason", "enough", "--actor", "tester", *fleet.options]) == 0
    fleet.wait_stopped(first_challenger)


def test_shadow_mode_never_changes_the_champions_answers(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet.sent.clear()
    cid = fleet.start(
        capsys, "--challenger", str(fleet.versions["v2"]), "--mode", "shadow", "--weight", "100"
    )
    fleet.wait_routing("someone", "champion")
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: fleet.ask(i % 2, f"user-{i}"), range(60)))
    assert {(r.status, r.answer, r.variant, r.version) for r in replies} == {(200, "v1", "champion", "1")}

    def mirrored() -> bool:  # weight 100: every champion request was mirrored once
        return fleet.counters(cid, "challenger").get("requests") == fleet.sent["champion"]

    assert wait_until(mirrored, timeout=15), (fleet.sent, fleet.counters(cid, "challenger"))
    assert fleet.counters(cid, "champion")["requests"] == fleet.sent["champion"]
    assert fleet.sent["challenger"] == 0
    fleet.end(cid)
    fleet.wait_stopped()


def test_auto_rollback_fires_on_an_erroring_challenger_and_status_watch_follows_it(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "--challenger",
        str(fleet.versions["erroring"]),
        "--weight",
        "50",
        "--auto",
        "--sticky-by",
        "none",
    ]
    cid = fleet.start(capsys, *args, "--min-requests", "100000")
    watch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runtime.cli.main",
            "canary",
            "status",
            cid,
            "--watch",
            "--interval",
            "0.3",
            *fleet.options,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert watch.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(watch.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        assert wait_until(lambda: any(f"{cid}  bot  running" in line for line in lines), timeout=30), lines
        fleet.wait_status(cid, "rolled_back", drive="hello")
        decision = fleet.audit(cid)[-1]
        assert decision["action"] == "rollback" and decision["actor"].startswith("replica:")
        assert decision["reason"].startswith("auto: challenger is worse on error_rate")
        assert decision["numbers"]["variants"]["challenger"]["errors"] > 0
        assert watch.wait(timeout=30) == 0  # --watch ends with the canary
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
        reader.join(10)
        watch.stdout.close()
    output = "".join(lines)
    assert f"{cid}  bot  rolled_back" in output and "verdict: worse -> rollback" in output
    fleet.wait_stopped()


def test_a_challenger_that_fails_to_load_is_rolled_back_with_the_reason(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    cid = fleet.start(capsys, "--challenger", str(fleet.versions["unloadable"]))
    fleet.wait_status(cid, "rolled_back")
    decision = fleet.audit(cid)[-1]
    assert decision["action"] == "rollback"
    assert "failed to load" in decision["reason"] and "cannot be imported" in decision["reason"]
    for server in fleet.servers:  # degraded while the failed canary ran, ready once it is over
        assert wait_until(
            lambda s=server: httpx.get(s.url + "/ready").json()["status"] == "ready", timeout=10
        )


def test_auto_promote_on_a_better_challenger_moves_the_alias_on_every_replica(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--challenger", str(fleet.versions["v2"]), "--weight", "50", "--auto", "--sticky-by", "none"]
    cid = fleet.start(capsys, *args, "--min-requests", "20")
    fleet.wait_status(cid, "promoted", drive="flaky")  # v1 fails on it, v2 does not
    assert [e["action"] for e in fleet.audit(cid)] == ["start", "promote", "promoted"]
    for server in (0, 1):  # each replica notices within a poll and serves the challenger as the champion

        def promoted(s: int = server) -> bool:
            replies = [fleet.ask(s, None, "flaky") for _ in range(10)]
            return {(r.status, r.answer, r.version, r.variant) for r in replies} == {(200, "v2", "2", None)}

        assert wait_until(promoted, timeout=10)
    with RegistryClient(fleet.store_url, fleet.home / "artifacts") as client:
        assert client.store.get_model_version_by_alias("bot", "champion").version == fleet.versions["v2"]
        record = client.store.get_canary(cid)
        assert record.status == "promoted" and str(record.decided_by).startswith("replica:")
        assert [e.action for e in client.store.canary_events(cid)] == ["start", "promote", "promoted"]
    capsys.readouterr()
    assert main(["canary", "history", "bot", "--json", *fleet.options]) == 0
    history = {h["canary_id"]: h["status"] for h in json.loads(capsys.readouterr().out)}
    assert history[cid] == "promoted" and len(history) == 5
