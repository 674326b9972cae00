"""Instructions per request, counted by callgrind: a repeatable measure of the hot path on a noisy machine.

    .venv/bin/python -m bench.callgrind                      # tracing + metrics on and off, /invocations
    .venv/bin/python -m bench.callgrind --modes on --traceparent --requests 2000

Requests/s on a shared 2-core machine move by 10-20 % between runs; instruction counts do not, so a change
of a few percent to the request path is visible here and nowhere else. The app (the async echo agent, an
embedded store in a temporary folder) is driven in process, through its ASGI entry, with no sockets; after
the warm-up the driver turns callgrind's instrumentation on (``callgrind_control``), serves ``--requests``,
and turns it off, so start-up and shut-down are not counted. Every thread of the serving process counts
(the exporter's timed flushes vary with timing: expect ~2 % spread with tracing on, none with it off); the
trace writer is another process and does not. Needs valgrind.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BODY = b'{"input": [{"role": "user", "content": "hello there"}]}'
MODES = {
    "on": "tracing and metrics on",
    "off": "tracing and metrics off",
    "tracing": "tracing on, metrics off",
    "metrics": "metrics on, tracing off",
}
TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _callgrind(instrument: bool) -> None:
    if os.environ.get("BENCH_CALLGRIND"):
        subprocess.run(
            ["callgrind_control", "-i", "on" if instrument else "off", str(os.getpid())],
            check=True,
            capture_output=True,
        )


async def drive(
    mode: str,
    requests: int,
    warmup: int,
    traceparent: bool,
    measuring: Callable[[bool], None] = _callgrind,
) -> None:
    """Serve ``warmup`` then ``requests`` requests through the app in ``mode``, calling ``measuring(True)``
    between the two and ``measuring(False)`` after (callgrind's instrumentation here; :mod:`bench.inproc`
    reads the thread's CPU time)."""
    from runtime.app import create_app
    from runtime.config import Settings

    home = tempfile.mkdtemp(prefix="bench-callgrind-")
    settings = Settings.from_env(
        environ={},
        home=home,
        tracing=mode in ("on", "tracing"),
        metrics=mode in ("on", "metrics"),
        sse_ping_interval=0,
        model=str(ROOT / "bench" / "agents" / "echo_async.py"),
    )
    app = create_app(settings)
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
        (b"accept", b"*/*"),
    ]
    if traceparent:
        headers.append((b"traceparent", TRACEPARENT))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/invocations",
        "raw_path": b"/invocations",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    statuses: set[int] = set()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    lifespan_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan_out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await lifespan_in.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, lifespan_in.get, lifespan_out.put)
    )
    await lifespan_out.get()
    for _ in range(warmup):
        await app(dict(scope), receive, send)
    gc.collect()
    measuring(True)
    for _ in range(requests):
        await app(dict(scope), receive, send)
    measuring(False)
    await lifespan_in.put({"type": "lifespan.shutdown"})
    await lifespan_out.get()
    await lifespan
    shutil.rmtree(home, ignore_errors=True)
    if statuses != {200}:
        raise SystemExit(f"requests answered {sorted(statuses)}, not only 200")


def _measure(mode: str, requests: int, warmup: int, traceparent: bool) -> int:
    """Instructions per request of one mode, from a run of this module under callgrind."""
    with tempfile.TemporaryDirectory() as folder:
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={folder}/callgrind.out",
            sys.executable,
            "-m",
            "bench.callgrind",
            "--inner",
            mode,
            "--requests",
            str(requests),
            "--warmup",
            str(warmup),
            *(["--traceparent"] if traceparent else []),
        ]
        env = {**os.environ, "BENCH_CALLGRIND": "1", "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1)) // requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.callgrind", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--modes", default="on,off", help="comma-separated: on (tracing+metrics), off, tracing, metrics"
    )
    parser.add_argument("--requests", type=int, default=1000, help="counted requests (default 1000)")
    parser.add_argument("--warmup", type=int, default=300, help="requests before counting (default 300)")
    parser.add_argument("--traceparent", action="store_true", help="send a W3C traceparent with each")
    parser.add_argument("--inner", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:
        asyncio.run(drive(args.inner, args.requests, args.warmup, args.traceparent))
        return 0
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind (with callgrind_control) is needed: apt install valgrind", file=sys.stderr)
        return 1
    modes = [m.strip() for m in args.modes.split(",")]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {unknown}; choose from {sorted(MODES)}")
    for mode in modes:
        per_request = _measure(mode, args.requests, args.warmup, args.traceparent)
        extra = " with traceparent" if args.traceparent else ""
        print(f"/invocations, {MODES[mode]}{extra}: {per_request:,} instructions per request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
