"""Real servers: a client hanging up mid-stream, and SIGTERM flushing every finished request's trace."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.store import SqlStore
from runtime.app import create_app
from tests.observability.conftest import settings_for
from tests.servers import ServeProcess, serve_app, wait_until

SLOW_AGENT = """
import asyncio

from runtime.agents import ResponsesAgent, set_agent


class Slow(ResponsesAgent):
    name = "slow"

    async def predict_stream(self, request):
        for i in range(10_000):
            yield self.create_text_delta(f"w{i} ", "m1")
            await asyncio.sleep(0.01)


set_agent(Slow())
"""


def read_deltas(response: httpx.Response, count: int) -> list[str]:
    deltas: list[str] = []
    for line in response.iter_lines():
        if line.startswith("data: ") and "output_text.delta" in line:
            deltas.append(json.loads(line[6:])["delta"])
            if len(deltas) == count:
                break
    return deltas


@pytest.mark.parametrize("path", ["/v1/responses", "/invocations"])
def test_client_disconnect_mid_stream_is_a_cancelled_trace_with_tokens_so_far(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
    agent_file = tmp_path / "slow_agent.py"
    agent_file.write_text(SLOW_AGENT)
    app = create_app(settings_for(tmp_path, model=str(agent_file)))
    with serve_app(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        body: dict[str, Any] = {"input": [{"role": "user", "content": "go"}], "stream": True}
        with client.stream("POST", path, json=body) as response:
            trace_id = response.headers["x-runtime-trace-id"]
            deltas = read_deltas(response, 5)
        assert deltas == ["w0 ", "w1 ", "w2 ", "w3 ", "w4 "]  # then the client hangs up

        def stored() -> dict[str, Any] | None:
            r = client.get(f"/api/traces/{trace_id}")
            return r.json() if r.status_code == 200 else None

        assert wait_until(lambda: stored() is not None, timeout=10)
        found = stored()
        assert found is not None
        trace = found["trace"]
        assert trace["status"] == "CANCELLED"
        assert trace["endpoint"] == path
        assert trace["response_preview"].startswith("w0 w1 w2 w3 w4 ")
        assert trace["output_tokens"] >= 5 // 4 and trace["tokens_estimated"] is True
        assert trace["ttft_ms"] is not None and trace["latency_ms"] >= trace["ttft_ms"]
        metrics = client.get("/metrics").text
        assert f'endpoint="{path}",variant="",status="CANCELLED"}} 1' in metrics


def test_sigterm_flushes_every_finished_request_to_the_store(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    env = {
        "RUNTIME_STORE_URL": store_url,
        "RUNTIME_HOME": str(tmp_path / "home"),
        "OTEL_BSP_SCHEDULE_DELAY": "600000",  # nothing leaves the queue unless shutdown flushes it
    }
    echo = Path(__file__).resolve().parents[2] / "examples" / "echo_agent.py"
    sent: list[str] = []
    with ServeProcess([str(echo)], env=env, cwd=tmp_path) as server:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for i in range(12):
                stream = i % 3 == 0
                path = "/invocations" if i % 2 else "/v1/responses"
                body = {"input": [{"role": "user", "content": f"message {i}"}], "stream": stream}
                r = client.post(path, json=body)
                assert r.status_code == 200
                sent.append(r.headers["x-runtime-trace-id"])
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0
    with SqlStore(store_url) as store:
        found, _ = store.search_traces(limit=100)
        assert sorted(t.trace_id for t in found) == sorted(sent)
        assert all(t.status.value == "OK" for t in found)
        _, spans = store.get_trace(sent[0])
        assert [s.name for s in spans] == ["invoke_agent echo"]
