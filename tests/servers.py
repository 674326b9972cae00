"""Real servers for tests: an ASGI app under uvicorn in a thread, or `runtime serve` as a process.

Both bind 127.0.0.1 on a free port and stop within a bounded time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes; the bounded wait every test uses."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class ThreadServer:
    """uvicorn serving ``app`` in a background thread with its own event loop."""

    def __init__(self, app: Any, **config: Any) -> None:
        self.port = free_port()
        cfg = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", **config
        )
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.run(self.server.serve())

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        if not wait_until(lambda: self.server.started, timeout=15):
            raise RuntimeError("test server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@contextlib.contextmanager
def serve_app(app: Any, **config: Any) -> Iterator[str]:
    with ThreadServer(app, **config) as server:
        yield server.url


class ServeProcess:
    """A real ``runtime serve`` process (``python -m runtime.cli.main serve ...``)."""

    def __init__(
        self, args: list[str], env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # PYTHONFAULTHANDLER: a server that will not stop is sent SIGABRT, and prints where every thread is.
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1", **(env or {})}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "runtime.cli.main",
                "serve",
                *args,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=full_env,
            cwd=cwd or ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        """Read the server's output as it comes: a chatty server must never block on a full pipe."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.append(line)

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"runtime serve exited early:\n{self.output()}")
            try:
                return httpx.get(self.url + "/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        if not wait_until(ready, timeout=timeout, interval=0.1):
            raise RuntimeError(f"runtime serve not ready in {timeout}s:\n{self.output()}")

    def output(self) -> str:
        """Everything the server printed so far (all of it once it has exited)."""
        if self.proc.poll() is not None:
            self._reader.join(5)
        return "".join(self._lines)

    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # the faulthandler's stacks go to the output read below
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
            self._reader.join(5)
            raise AssertionError(
                f"runtime serve did not stop within {timeout:.0f} s of SIGTERM; its threads:\n"
                + "".join(self._lines)[-20000:]
            ) from None
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.terminate()
        finally:  # a server that would not stop fails its own test, not the next one with a leaked pipe
            self._reader.join(5)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
