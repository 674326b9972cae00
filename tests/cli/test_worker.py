"""`runtime worker` as an operator starts it: it waits for a Redis that does not answer yet, as a running
worker does, and stops with one ``error:`` line on what waiting cannot fix."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.servers import ROOT, free_port, wait_until

pytestmark = pytest.mark.redis

REDIS_URL = os.environ.get("RUNTIME_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RETRYING = "Redis error, retrying in 1 s"
SCORERS = "from runtime.evaluation import scorer\n\n@scorer\ndef seen(outputs):\n    return True\n"


def _on_port(url: str, port: int) -> str:
    """``url`` (its credentials and database) pointed at 127.0.0.1:``port``."""
    scheme, rest = url.split("://", 1)
    netloc, _, path = rest.partition("/")
    credentials, at, _ = netloc.rpartition("@")
    return f"{scheme}://{credentials}{at}127.0.0.1:{port}/{path}"


class Worker:
    """A real ``runtime worker`` process; its log goes to a file (a full pipe would stall it)."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        scorers = tmp_path / "scorers.py"
        scorers.write_text(SCORERS)
        self.log = tmp_path / "worker.log"
        self._out = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runtime.cli.main", "worker", "--scorers", str(scorers), *args],
            cwd=tmp_path,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)},
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def text(self) -> str:
        return self.log.read_text()

    def terminate(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            self._out.close()


class LateRedis:
    """The test Redis behind a port of its own that listens only from :meth:`start`: a Redis that comes up
    after the worker. Bytes are forwarded both ways, one thread per direction and connection."""

    def __init__(self, target: str) -> None:
        host_port = target.split("://", 1)[1].split("/", 1)[0].rpartition("@")[2]
        host, _, port = host_port.partition(":")
        self.target = (host or "127.0.0.1", int(port or 6379))
        self.port = free_port()
        self.url = _on_port(target, self.port)
        self._server: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()

    def start(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.1)  # a blocked accept() would not notice the close
        self._spawn(self._accept, self._server)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self, server: socket.socket) -> None:
        while not self._closed.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
            self._sockets += [client, upstream]
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed.set()
        if self._server is not None:
            self._server.close()
        for sock in self._sockets:
            sock.close()
        for thread in self._threads:
            thread.join(5)


def test_a_worker_started_before_redis_waits_for_it_then_consumes(tmp_path: Path, stream: str) -> None:
    late = LateRedis(REDIS_URL)
    store = f"sqlite:///{tmp_path / 'store.db'}"
    worker = Worker(tmp_path, "--redis-url", late.url, "--store-url", store, "--stream", stream)
    try:
        assert wait_until(lambda: worker.text().count(RETRYING) >= 2, timeout=30), worker.text()
        assert worker.proc.poll() is None
        late.start()
        assert wait_until(lambda: f"consuming {stream}" in worker.text(), timeout=15), worker.text()
        with redis.Redis.from_url(REDIS_URL, decode_responses=True) as r:
            groups: Any = r.xinfo_groups(stream)
        assert [g["name"] for g in groups] == ["scorers"]
        assert worker.terminate() == 0, worker.text()
    finally:
        worker.terminate()
        late.close()
    assert "Traceback" not in worker.text()


def test_a_worker_stopped_while_waiting_for_redis_exits_zero(tmp_path: Path) -> None:
    nothing = _on_port(REDIS_URL, free_port())
    worker = Worker(tmp_path, "--redis-url", nothing, "--store-url", f"sqlite:///{tmp_path / 'store.db'}")
    try:
        assert wait_until(lambda: worker.text().count(RETRYING) >= 2, timeout=30), worker.text()
        assert worker.proc.poll() is None
        assert worker.terminate(timeout=10) == 0, worker.text()
    finally:
        worker.terminate()
    assert "stopped before Redis answered" in worker.text()
    assert "Traceback" not in worker.text()


def test_a_worker_whose_store_does_not_answer_still_starts(tmp_path: Path, stream: str) -> None:
    """Jobs it takes stay pending until the store answers, as when the store goes down under a running one."""
    store = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/runtime"
    worker = Worker(tmp_path, "--redis-url", REDIS_URL, "--store-url", store, "--stream", stream)
    try:
        assert wait_until(lambda: f"consuming {stream}" in worker.text(), timeout=30), worker.text()
        assert "starting without the store, opened once it answers" in worker.text()
        assert worker.terminate() == 0, worker.text()
    finally:
        worker.terminate()
    assert "Traceback" not in worker.text()


@pytest.mark.parametrize(
    ("redis_url", "store_url", "code", "message"),
    [
        ("http://127.0.0.1:6379/0", None, 2, "error: invalid Redis URL (--redis-url or RUNTIME_REDIS_URL)"),
        # Credentials Redis refuses are no outage: waiting would never end.
        ("nobody-{uuid}:wrong@", None, 1, "error: Redis refused the credentials in the Redis URL"),
        (None, "mysql://x", 2, "error: unsupported store URL 'mysql://x'"),
    ],
)
def test_what_waiting_cannot_fix_stops_the_worker_with_one_line(
    tmp_path: Path, redis_url: str | None, store_url: str | None, code: int, message: str
) -> None:
    if redis_url is None:
        redis_url = REDIS_URL
    elif redis_url.endswith("@"):
        scheme, rest = REDIS_URL.split("://", 1)
        redis_url = f"{scheme}://{redis_url.format(uuid=uuid.uuid4().hex[:8])}{rest.rpartition('@')[2]}"
    store_url = store_url or f"sqlite:///{tmp_path / 'store.db'}"
    worker = Worker(tmp_path, "--redis-url", redis_url, "--store-url", store_url, "--log-level", "warning")
    try:
        assert worker.proc.wait(30) == code, worker.text()
    finally:
        worker.terminate()
    lines = worker.text().strip().splitlines()
    assert len(lines) == 1, worker.text()
    assert lines[0].startswith(message)
