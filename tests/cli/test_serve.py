"""`runtime serve` as a user runs it: clear one-line failures before binding, and a graceful SIGTERM."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.servers import ROOT, ServeProcess, free_port

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
