"""``runtime serve`` bounds a request's head: its size (431) and the time it takes to arrive (408), before
any key is checked; and it raises its soft limit of open files, as every open stream holds a socket."""

from __future__ import annotations

import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import ServeProcess


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    env = {
        "RUNTIME_HOME": str(tmp_path / "home"),
        "RUNTIME_MAX_HEADER_BYTES": "4096",
        "RUNTIME_HEADER_TIMEOUT": "0.5",
        "RUNTIME_API_KEYS": "secret-key",
        "RUNTIME_LOG_LEVEL": "warning",
    }
    with ServeProcess(["examples/echo_agent.py"], env=env) as process:
        process.wait_ready()
        yield process


def _answer(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _connect(server: ServeProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def test_a_head_over_the_limit_is_431_and_the_connection_closes(server: ServeProcess) -> None:
    with _connect(server) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nhost: x\r\nx-filler: " + b"a" * 8192)
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 431 ")
    # Within the limit, requests are served as ever (and the key is still checked).
    headers = {"authorization": "Bearer secret-key", "x-filler": "a" * 2000}
    r = httpx.post(
        f"{server.url}/invocations", json={"input": [{"role": "user", "content": "hi"}]}, headers=headers
    )
    assert r.status_code == 200, r.text


def test_a_head_that_does_not_arrive_in_time_is_408_and_an_idle_connection_closes(
    server: ServeProcess,
) -> None:
    with _connect(server) as slow, _connect(server) as idle:
        slow.sendall(b"POST /invocations HTTP/1.1\r\nhost: x\r\n")  # and never the rest
        started = time.monotonic()
        assert _answer(slow).startswith(b"HTTP/1.1 408 ")
        assert _answer(idle) == b""  # a connection that sent nothing is closed without an answer
        assert time.monotonic() - started < 5
    # A keep-alive connection serves request after request, each head timed on its own.
    headers = {"authorization": "Bearer secret-key"}
    with httpx.Client(base_url=server.url, headers=headers) as client:
        for _ in range(3):
            assert client.get("/version").status_code == 200
            time.sleep(0.3)


def test_the_soft_limit_of_open_files_is_raised(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 1024:
        pytest.fail(f"this machine's hard limit of open files ({hard}) leaves nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # a common default, inherited by the server
    try:
        process = ServeProcess(["examples/echo_agent.py"], env={"RUNTIME_HOME": str(tmp_path / "home")})
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    with process:
        process.wait_ready()
        limits = Path(f"/proc/{process.proc.pid}/limits").read_text()
    [line] = [row for row in limits.splitlines() if row.startswith("Max open files")]
    expected = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    assert int(line.split()[3]) == expected
