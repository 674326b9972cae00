"""Disconnects, sync agents off the event loop, timeouts and the concurrency limit, on a real server."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from runtime.app import create_app
from runtime.config import Settings
from tests.servers import serve_app, wait_until
from tests.serving.agents import (
    Firehose,
    Sleeper,
    SlowAsyncStream,
    SlowPredict,
    SlowSync,
    SlowSyncStream,
    loaded,
)

STREAM_BODIES = {
    "/v1/responses": {"input": "go", "stream": True},
    "/invocations": {"input": [{"role": "user", "content": "go"}], "stream": True},
}


@pytest.mark.parametrize("path", sorted(STREAM_BODIES))
@pytest.mark.parametrize("kind", ["async", "sync"])
def test_client_disconnect_closes_the_agent_generator_within_a_second(kind: str, path: str) -> None:
    agent: Any = SlowAsyncStream(0.02) if kind == "async" else SlowSyncStream(0.02)
    with serve_app(create_app(Settings(sse_ping_interval=0), agent=loaded(agent))) as url:
        with httpx.stream("POST", url + path, json=STREAM_BODIES[path], timeout=10) as r:
            lines = r.iter_lines()
            deltas = 0
            for line in lines:
                if "output_text.delta" in line and line.startswith("data:"):
                    deltas += 1
                if deltas == 3:
                    break
        # the response context is closed: the connection is gone
        assert agent.closed.wait(1.0), "the agent's finally did not run within 1 s of the disconnect"
        produced = agent.produced
        time.sleep(0.2)  # let a runaway generator show itself
        assert agent.produced <= produced + 1, "the agent kept generating for nobody"


def test_sync_predict_runs_off_the_event_loop_and_overlaps() -> None:
    agent = SlowSync(seconds=0.5)
    with serve_app(create_app(Settings(), agent=loaded(agent))) as url:
        with ThreadPoolExecutor(4) as pool:
            futures = [
                pool.submit(
                    httpx.post,
                    url + "/invocations",
                    json={"input": [{"role": "user", "content": "x"}]},
                    timeout=10,
                )
                for _ in range(4)
            ]
            assert wait_until(lambda: agent.active >= 1, timeout=5)
            health = httpx.get(url + "/health", timeout=5)  # answered while agents block their threads
            assert health.status_code == 200
            assert agent.active >= 1, "health answered only after the slow agent finished"
            results = [f.result() for f in futures]
        assert all(r.status_code == 200 for r in results)
        assert agent.max_active >= 2, "concurrent sync requests did not overlap"


def test_timeout_before_streaming_is_504_and_after_is_an_error_event() -> None:
    with serve_app(
        create_app(Settings(request_timeout=0.3, sse_ping_interval=0), agent=loaded(Sleeper()))
    ) as url:
        r = httpx.post(url + "/invocations", json={"input": [{"role": "user", "content": "x"}]}, timeout=10)
        assert r.status_code == 504
        assert r.json()["error"]["code"] == "timeout"
        r = httpx.post(url + "/v1/responses", json={"input": "x", "stream": True}, timeout=10)
        names = [line[7:] for line in r.text.splitlines() if line.startswith("event: ")]
        assert names[-2:] == ["error", "response.failed"]
        error = next(
            json.loads(line[6:])
            for line in r.text.splitlines()
            if line.startswith("data: ") and '"type":"error"' in line
        )
        assert error["code"] == "timeout"


def test_concurrency_limit_answers_429_with_retry_after() -> None:
    agent = SlowSync(seconds=1.0)
    with serve_app(create_app(Settings(max_concurrency=1), agent=loaded(agent))) as url:
        body = {"input": [{"role": "user", "content": "x"}]}
        first = threading.Thread(
            target=httpx.post, args=(url + "/invocations",), kwargs={"json": body, "timeout": 10}
        )
        first.start()
        assert wait_until(lambda: agent.active == 1, timeout=5)
        r = httpx.post(url + "/invocations", json=body, timeout=10)
        assert r.status_code == 429
        assert r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == "overloaded"
        assert httpx.get(url + "/health").status_code == 200  # health does not count towards the limit
        first.join(10)


def test_api_keys_guard_everything_but_health_ready_and_metrics() -> None:
    app = create_app(Settings(api_keys=("k1", "k2")), agent=loaded(SlowSync(0)))
    with serve_app(app) as url:
        body = {"input": [{"role": "user", "content": "x"}]}
        assert httpx.post(url + "/invocations", json=body).status_code == 401
        assert (
            httpx.post(url + "/invocations", json=body, headers={"authorization": "Bearer k3"}).status_code
            == 401
        )
        assert (
            httpx.post(url + "/invocations", json=body, headers={"authorization": "Basic k1"}).status_code
            == 401
        )
        assert (
            httpx.post(url + "/invocations", json=body, headers={"authorization": "Bearer k2"}).status_code
            == 200
        )
        assert httpx.get(url + "/v1/models").status_code == 401
        assert httpx.get(url + "/health").status_code == 200
        assert httpx.get(url + "/ready").status_code == 200
        assert httpx.get(url + "/metrics").status_code == 200  # Prometheus scrapes without a key, as vLLM's
        assert httpx.get(url + "/api/traces").status_code == 401
        err = httpx.get(url + "/version").json()["error"]
        assert err["code"] == "unauthorized"
        assert "k1" not in json.dumps(err)


@pytest.mark.parametrize("path", ["/invocations", "/v1/responses"])
def test_client_disconnect_cancels_a_non_streaming_agent(path: str) -> None:
    agent = SlowPredict()
    body = {"input": [{"role": "user", "content": "x"}]} if path == "/invocations" else {"input": "x"}
    with serve_app(create_app(Settings(), agent=loaded(agent))) as url:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url + path, json=body, timeout=httpx.Timeout(5, read=0.5))
        assert agent.started.is_set()
        assert agent.cancelled.wait(2.0), "the agent kept running after its client went away"
        assert httpx.get(url + "/health").status_code == 200


def test_a_client_that_stops_reading_is_dropped_after_the_send_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging
    import socket

    caplog.set_level(logging.INFO)
    agent = Firehose()
    settings = Settings(sse_send_timeout=0.5, sse_ping_interval=0)
    with serve_app(create_app(settings, agent=loaded(agent))) as url:
        port = int(url.rsplit(":", 1)[1])
        body = b'{"input": "x", "stream": true}'
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(
                b"POST /v1/responses HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(body), body)
            )
            # never read: the server's writes back up, and the watchdog must give up on us
            assert agent.closed.wait(10), "a stuck client kept the stream (and the agent) alive"
            assert wait_until(lambda: "its client stopped reading" in caplog.text)
        assert agent.produced < 100_000
    # the response had started: no error response is attempted after it, and nothing is logged as a failure
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
