"""Start a server under test as a subprocess on a free loopback port and wait until it is ready.

Cold start is the time from ``Popen`` to the first 200 on the ready path. Each server runs in its own session
(process group) so that stopping it also stops its workers; only groups this module started are signalled.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.procfs import cpu_seconds, main_thread_cpu_seconds, main_thread_wait_seconds, rss_bytes

__all__ = ["RunningServer", "ServerSpec", "ServerStartError", "free_port", "start_server"]

LOOPBACK = "127.0.0.1"
_POLL_S = 0.01
_STOP_GRACE_S = 10.0


class ServerStartError(Exception):
    """The server exited or never answered its ready path; the message carries the end of its log."""


@dataclass(frozen=True)
class ServerSpec:
    """How to run one variant. ``argv`` may hold ``{port}``; ``paths`` maps a scenario kind to a URL path."""

    name: str
    kind: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    ready_path: str = "/ready"
    paths: Mapping[str, str] = field(
        default_factory=lambda: {"invocations": "/invocations", "responses": "/v1/responses"}
    )
    string_input: bool = True  # accepts ``"input": "hello"`` (MLflow wants a list of messages)
    streams: bool = True
    ready_timeout: float = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _ready(port: int, path: str) -> bool:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=2.0)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class RunningServer:
    spec: ServerSpec
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    cold_start_s: float = 0.0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss(self) -> tuple[int, int]:
        return rss_bytes(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def main_thread_cpu(self) -> float:
        return main_thread_cpu_seconds(self.pid)

    def main_thread_wait(self) -> float:
        return main_thread_wait_seconds(self.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self) -> str:
        return _tail(self.log_path)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(_STOP_GRACE_S)


def start_server(spec: ServerSpec, workdir: Path, cwd: Path) -> RunningServer:
    """Start ``spec`` and return once it answers 200 on its ready path (or raise ServerStartError)."""
    port = free_port()
    argv = [part.format(port=port) for part in spec.argv]
    log_path = workdir / f"{spec.name}.log"
    env = {**os.environ, **spec.env}
    with log_path.open("wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = RunningServer(spec, port, proc, log_path)
    deadline = started + spec.ready_timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            tail = server.log_tail()
            last = tail.splitlines()[-1] if tail else ""
            raise ServerStartError(f"{spec.name} exited with {proc.returncode} ({last})\n{tail}")
        if _ready(port, spec.ready_path):
            server.cold_start_s = time.perf_counter() - started
            return server
        time.sleep(_POLL_S)
    server.stop()
    raise ServerStartError(f"{spec.name} not ready after {spec.ready_timeout:.0f} s:\n{server.log_tail()}")
