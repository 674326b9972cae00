"""`runtime serve` as a user runs it: clear one-line failures before binding, and a graceful SIGTERM."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from registry.store import SqlStore
from tests.conftest_db import pg_admin_url
from tests.servers import ROOT, ServeProcess, free_port, wait_until

SLOW_STREAM = """
import asyncio
from runtime.agents import ResponsesAgent, set_agent

class Slow(ResponsesAgent):
    async def predict_stream(self, request):
        for i in range(10):
            yield self.create_text_delta(f"w{i} ", "m1")
            await asyncio.sleep(0.1)

set_agent(Slow())
"""


def run_serve(*args: str) -> subprocess.CompletedProcess[str]:
    port = str(free_port())
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli.main", "serve", *args, "--port", port],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (None, "agent file not found"),
        ("import nope_not_a_module\n", "raised on import (line 1): ModuleNotFoundError"),
        ("def broken(:\n", "has a syntax error at line 1"),
        ("x = 1\n", "never calls set_agent"),
        ("from runtime.agents import set_agent\nset_agent(object())\n", "implements neither predict"),
    ],
)
def test_serve_fails_fast_with_one_clear_line(tmp_path: Path, source: str | None, message: str) -> None:
    path = tmp_path / "agent.py"
    if source is not None:
        path.write_text(source)
    result = run_serve(str(path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    assert "Uvicorn running" not in result.stderr + result.stdout


def _pg_url(database: str, port: int | None = None) -> str:
    url = make_url(pg_admin_url()).set(database=database)
    return (url if port is None else url.set(port=port)).render_as_string(hide_password=False)


def _pg_admin() -> psycopg.Connection[tuple[object, ...]]:
    url = make_url(pg_admin_url()).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


@pytest.mark.parametrize(
    ("target", "store", "code", "message"),
    [
        # Nothing listens on the port: the store resolves a models:/ target, so it must answer.
        ("models:/echo@champion", "unreachable", 1, "cannot resolve models:/echo@champion: "),
        ("models:/echo@champion", "missing database", 1, "does not exist); check that the store runs"),
        # A URL that can never work stops any target, the parent of --workers too, without its password.
        ("examples/echo_agent.py", "mysql://u:secret@db/x", 2, "unsupported store URL 'mysql://u:***@db/x'"),
        ("examples/echo_agent.py --workers 2", "mysql://x", 2, "use sqlite:///PATH or postgresql+psycopg"),
        ("examples/echo_agent.py", "postgresql+nodriver://db/x", 2, "unsupported store URL"),
        ("examples/echo_agent.py", "sqlite below a file", 2, "cannot create the folder of the SQLite store"),
    ],
)
def test_a_store_that_cannot_serve_the_target_stops_serve_with_one_line(
    tmp_path: Path, target: str, store: str, code: int, message: str
) -> None:
    if store == "sqlite below a file":
        (tmp_path / "a-file").write_text("")
        store = f"sqlite:///{tmp_path / 'a-file' / 'runtime.db'}"
    elif store == "unreachable":
        store = _pg_url("runtime", port=free_port())
    elif store == "missing database":
        store = _pg_url(f"runtime_test_missing_{uuid.uuid4().hex[:10]}")
    result = run_serve(*target.split(), "--store-url", store)
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    assert "secret" not in result.stderr
    assert "Uvicorn running" not in result.stderr + result.stdout


def _dropped_for_store_errors(url: str) -> int:
    text = httpx.get(url + "/metrics", timeout=5).text
    found = re.search(r'^runtime_trace_spans_dropped_total\{reason="store_error"\} (\S+)$', text, re.M)
    return int(float(found.group(1))) if found else 0


@pytest.mark.postgres
def test_a_file_is_served_while_its_store_does_not_answer_and_uses_it_once_it_does(tmp_path: Path) -> None:
    """README: the store being down degrades traces and the registry API, never requests, also at start-up.
    The store is a PostgreSQL database that does not exist yet; it is created while the server runs."""
    name = f"runtime_test_late_{uuid.uuid4().hex[:10]}"
    env = {"RUNTIME_HOME": str(tmp_path / "home")}
    try:
        with ServeProcess(["examples/echo_agent.py", "--store-url", _pg_url(name)], env=env) as server:
            server.wait_ready()
            r = httpx.post(server.url + "/v1/responses", json={"input": "served anyway"}, timeout=10)
            assert r.status_code == 200
            assert r.json()["output"][0]["content"][0]["text"] == "served anyway"
            assert wait_until(lambda: _dropped_for_store_errors(server.url) == 1, timeout=15)
            down = httpx.get(server.url + "/api/models", timeout=10)
            assert (down.status_code, down.json()["error"]["code"]) == (503, "store_unavailable")
            output = server.output()
            assert f'database "{name}" does not exist' in output
            assert "starting without the store, opened once it answers" in output
            ready = httpx.get(server.url + "/ready", timeout=10).json()
            assert (ready["status"], sorted(ready["degraded"])) == ("degraded", ["store"])

            with _pg_admin() as admin:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            assert wait_until(
                lambda: httpx.get(server.url + "/api/models", timeout=10).status_code == 200, timeout=15
            )
            assert httpx.get(server.url + "/ready", timeout=10).json()["status"] == "ready"
            r = httpx.post(server.url + "/v1/responses", json={"input": "now stored"}, timeout=10)
            trace_id = r.headers["x-runtime-trace-id"]
            assert wait_until(
                lambda: httpx.get(f"{server.url}/api/traces/{trace_id}", timeout=10).status_code == 200,
                timeout=15,
            ), server.output()
            assert server.terminate(timeout=30) == 0
            assert "Traceback" not in server.output()
    finally:
        with _pg_admin() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_sigterm_lets_an_inflight_stream_finish_then_exits_zero(tmp_path: Path) -> None:
    agent = tmp_path / "slow.py"
    agent.write_text(SLOW_STREAM)
    with ServeProcess([str(agent), "--grace-period", "10"]) as server:
        server.wait_ready()
        frames: list[str] = []
        started = threading.Event()

        def consume() -> None:
            with httpx.stream(
                "POST",
                server.url + "/invocations",
                timeout=30,
                json={"input": [{"role": "user", "content": "x"}], "stream": True},
            ) as r:
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        frames.append(line[6:])
                        started.set()

        reader = threading.Thread(target=consume)
        reader.start()
        assert started.wait(10)
        code = server.terminate(timeout=20)
        reader.join(20)
        assert code == 0, server.output()
    assert frames[-1] == "[DONE]"
    deltas = [json.loads(f)["delta"] for f in frames[:-1] if "delta" in f]
    assert deltas == [f"w{i} " for i in range(10)], "the stream was cut instead of drained"


def test_serve_example_agent_with_env_options(tmp_path: Path) -> None:
    env = {"RUNTIME_API_KEYS": "abc", "RUNTIME_HOME": str(tmp_path / "home")}
    with ServeProcess(["examples/echo_agent.py"], env=env) as server:
        server.wait_ready()
        r = httpx.post(
            server.url + "/v1/responses", json={"input": "hi you"}, headers={"authorization": "Bearer abc"}
        )
        assert r.status_code == 200
        assert r.json()["output"][0]["content"][0]["text"] == "hi you"
        assert httpx.post(server.url + "/v1/responses", json={"input": "x"}).status_code == 401


def test_serve_with_two_workers(tmp_path: Path) -> None:
    env = {"RUNTIME_HOME": str(tmp_path / "home"), "RUNTIME_API_KEYS": "k"}
    with ServeProcess(["examples/echo_agent.py", "--workers", "2"], env=env) as server:
        server.wait_ready(timeout=60)
        auth = {"authorization": "Bearer k"}
        answers = {
            httpx.post(server.url + "/v1/responses", json={"input": f"n{i}"}, headers=auth).json()["output"][
                0
            ]["content"][0]["text"]
            for i in range(6)
        }
        assert answers == {f"n{i}" for i in range(6)}
        assert (
            httpx.post(server.url + "/v1/responses", json={"input": "x"}).status_code == 401
        )  # keys reach workers
        assert server.terminate(timeout=30) == 0


STUCK = """
import asyncio
from runtime.agents import ResponsesAgent, ResponsesAgentResponse, set_agent

class Stuck(ResponsesAgent):
    name = "stuck"

    async def predict(self, request):
        await asyncio.sleep(60)
        return ResponsesAgentResponse(output=[self.create_text_output_item("late", "m1")])

    async def predict_stream(self, request):
        yield self.create_text_delta("first ", "m1")
        await asyncio.sleep(60)

set_agent(Stuck())
"""


def test_requests_still_running_when_the_grace_period_ends_get_a_clean_503(tmp_path: Path) -> None:
    """SIGTERM with a 1 s grace period and three requests that would take a minute: the plain call gets the
    JSON 503 ``shutting_down`` with Retry-After (not uvicorn's plain-text 500), each stream ends with that
    error event and its protocol's end, the process exits 0, and the traces say what happened."""
    agent = tmp_path / "stuck.py"
    agent.write_text(STUCK)
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    env = {"RUNTIME_STORE_URL": store_url, "RUNTIME_HOME": str(tmp_path / "home")}
    results: dict[str, Any] = {}
    streaming = threading.Barrier(3)  # two streams have their first delta, and the test

    def plain() -> None:
        r = httpx.post(server.url + "/v1/responses", json={"input": "x"}, timeout=30)
        results["plain"] = (r.status_code, r.headers, r.json(), r.headers.get("content-type"))

    def streamed(path: str) -> None:
        lines: list[str] = []
        with httpx.stream("POST", server.url + path, json={"input": "x", "stream": True}, timeout=30) as r:
            for line in r.iter_lines():
                lines.append(line)
                if "output_text.delta" in line and "first " in line:
                    streaming.wait(10)
        results[path] = [line[6:] for line in lines if line.startswith("data: ")]

    with ServeProcess([str(agent), "--grace-period", "1"], env=env, cwd=tmp_path) as server:
        server.wait_ready()
        threads = [threading.Thread(target=plain)]
        threads += [threading.Thread(target=streamed, args=(p,)) for p in ("/invocations", "/v1/responses")]
        for thread in threads:
            thread.start()
        streaming.wait(10)
        assert wait_until(lambda: _in_flight(server.url) == 3, timeout=10)
        code = server.terminate(timeout=20)
        for thread in threads:
            thread.join(20)
        assert code == 0, server.output()
        assert "Exception in ASGI application" not in server.output(), server.output()[-6000:]

    status, headers, body, content_type = results["plain"]
    assert (status, content_type, headers.get("retry-after")) == (503, "application/json", "1")
    assert body["error"]["code"] == "shutting_down"
    invocations = results["/invocations"]
    assert invocations[-1] == "[DONE]"
    assert json.loads(invocations[-2])["code"] == "shutting_down"
    responses = [json.loads(frame) for frame in results["/v1/responses"]]
    assert [e["type"] for e in responses[-2:]] == ["error", "response.failed"]
    assert responses[-1]["response"]["error"]["code"] == "shutting_down"
    [partial] = responses[-1]["response"]["output"]  # what was streamed before the end, kept
    assert (partial["status"], partial["content"][0]["text"]) == ("incomplete", "first ")
    with SqlStore(store_url) as store:
        found, _ = store.search_traces(limit=10)
        roots = [store.get_trace(t.trace_id)[1][0] for t in found]
    assert [t.status.value for t in found] == ["ERROR"] * 3
    assert [root.attributes["error.type"] for root in roots] == ["shutting_down"] * 3


def _in_flight(url: str) -> float:
    """The requests the server is serving now, from its /metrics."""
    text = httpx.get(url + "/metrics", timeout=5).text
    lines = [line for line in text.splitlines() if line.startswith("runtime_requests_in_flight")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


SYNC_STUCK = """
import time
from runtime.agents import ResponsesAgent, ResponsesAgentResponse, set_agent

class SyncStuck(ResponsesAgent):
    def predict(self, request):
        time.sleep(30)
        return ResponsesAgentResponse(output=[self.create_text_output_item("late", "m1")])

set_agent(SyncStuck())
"""


def test_a_sync_agent_stuck_past_the_grace_period_does_not_keep_the_process_alive(tmp_path: Path) -> None:
    """The request is answered (503) at the end of the grace period; Python would then join the agent's
    thread for the rest of its 30 s sleep; the process exits 0 a moment after its shutdown instead."""
    agent = tmp_path / "stuck_sync.py"
    agent.write_text(SYNC_STUCK)
    answered: list[int] = []
    with ServeProcess([str(agent), "--grace-period", "1"], cwd=tmp_path) as server:
        server.wait_ready()
        thread = threading.Thread(
            target=lambda: answered.append(
                httpx.post(server.url + "/invocations", json={"input": "x"}, timeout=30).status_code
            )
        )
        thread.start()
        assert wait_until(lambda: _in_flight(server.url) == 1, timeout=10)
        started = time.monotonic()
        code = server.terminate(timeout=25)
        elapsed = time.monotonic() - started
        thread.join(10)
        assert code == 0, server.output()
        assert elapsed < 12, f"exited {elapsed:.1f} s after SIGTERM:\n{server.output()}"
        assert "still running in threads after the shutdown" in server.output()
    assert answered == [503]


def test_worker_processes_log_in_the_standard_format_at_the_configured_level(tmp_path: Path) -> None:
    """Each --workers process configures logging as a single-process `runtime serve` does: the runtime's
    INFO line that each worker's app logs at start (the scorers it runs) shows, in the standard format."""
    scorers = tmp_path / "scorers.py"
    scorers.write_text(
        "from runtime.evaluation import scorer\n\n@scorer\ndef short(outputs):\n    return True\n"
    )
    env = {
        "RUNTIME_HOME": str(tmp_path / "home"),
        "RUNTIME_SCORING_QUEUE": "local",
        "RUNTIME_LOG_LEVEL": "INFO",
    }
    line = re.compile(
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO runtime\.evaluation: "
        r"scoring short at rate 1 \(in-process\)$",
        re.M,
    )
    with ServeProcess(
        ["examples/echo_agent.py", "--workers", "2", "--scorers", str(scorers)], env=env
    ) as server:
        server.wait_ready(timeout=60)
        assert wait_until(lambda: len(line.findall(server.output())) == 2, timeout=30), server.output()
        assert server.terminate(timeout=30) == 0
