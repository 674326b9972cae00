"""``runtime serve TARGET``: load the agent (failing fast, before binding), then run uvicorn."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

from registry.errors import RegistryError
from runtime.cli.common import check_redis_url, configure_logging
from runtime.config import ENV_PREFIX, Settings
from runtime.errors import RuntimeErrorBase
from runtime.observability.shared_metrics import check_writable, start_afresh

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve", help="serve an agent over HTTP (OpenAI Responses + MLflow /invocations)"
    )
    p.add_argument("target", nargs="?", help="agent .py file, model folder or models:/ URI (RUNTIME_MODEL)")
    p.add_argument("--host", help="address to bind (RUNTIME_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (RUNTIME_PORT, default 8080)")
    p.add_argument("--workers", type=int, help="worker processes (RUNTIME_WORKERS, default 1)")
    p.add_argument("--api-key", action="append", dest="api_keys", help="accepted API key (repeatable)")
    p.add_argument("--timeout", type=float, dest="request_timeout", help="per-request timeout in seconds")
    p.add_argument("--max-concurrency", type=int, help="requests at once before 429")
    p.add_argument("--grace-period", type=float, help="seconds to drain in-flight requests on SIGTERM")
    p.add_argument("--store-url", help="store URL (RUNTIME_STORE_URL)")
    p.add_argument("--redis-url", help="Redis URL (RUNTIME_REDIS_URL)")
    p.add_argument("--log-level", help="log level (RUNTIME_LOG_LEVEL)")
    p.add_argument(
        "--scorers", help="Python file of @scorer functions to run on live traffic (RUNTIME_SCORERS)"
    )
    p.add_argument(
        "--sample-rate", type=float, help="share of requests each scorer scores, 0..1 (RUNTIME_SAMPLE_RATE)"
    )
    p.set_defaults(func=run)


def _explicit(args: argparse.Namespace) -> dict[str, Any]:
    keys = (
        "host",
        "port",
        "workers",
        "request_timeout",
        "max_concurrency",
        "grace_period",
        "store_url",
        "redis_url",
        "log_level",
        "scorers",
        "sample_rate",
    )
    values = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    if args.target:
        values["model"] = args.target
    if args.api_keys:
        values["api_keys"] = tuple(args.api_keys)
    return values


def _export(values: dict[str, Any]) -> None:
    """Hand explicit options to worker processes, which build their settings from the environment."""
    for key, value in values.items():
        text = ",".join(value) if isinstance(value, tuple) else str(value)
        os.environ[ENV_PREFIX + key.upper()] = text


@contextlib.contextmanager
def _shared_metrics(settings: Settings) -> Iterator[None]:
    """The folder through which the workers' /metrics count all of them: RUNTIME_METRICS_DIR, emptied of
    an earlier run's, or a temporary one, removed when the workers have stopped."""
    if not settings.metrics:
        yield
        return
    if settings.metrics_dir:
        start_afresh(settings.metrics_dir)
        yield
        return
    folder = tempfile.mkdtemp(prefix="runtime-metrics-")
    os.environ[ENV_PREFIX + "METRICS_DIR"] = folder
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _listen_problem(host: str, port: int) -> str | None:
    """Why uvicorn could not listen on ``host:port`` (an unknown host, an address not of this machine, a port
    in use or reserved), or None: said in one line before the agent loads, where uvicorn says it after a
    load that may take minutes, without naming the host (``[Errno -2] Name or service not known``)."""
    where = f"cannot listen on {host}:{port} (--host/RUNTIME_HOST, --port/RUNTIME_PORT)"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        return f"{where}: {host!r} is not an address or a known host name ({exc})"
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no bar
        try:
            probe.bind(address)
        except OSError as exc:
            return f"{where}: {exc.strerror or exc}"
    return None


def _http_protocol(settings: Settings) -> dict[str, Any]:
    """uvicorn's HTTP protocol with a bounded request head (size and time, see runtime.http_protocol); where
    httptools is missing, h11 with its own bound on the head's size."""
    try:
        from runtime.http_protocol import LimitedHttpToolsProtocol
    except ImportError:  # uvicorn without its [standard] extras
        return {"http": "h11", "h11_max_incomplete_event_size": settings.max_header_bytes}
    return {"http": LimitedHttpToolsProtocol}


_OPEN_FILES = 65536


def _raise_open_files_limit() -> None:
    """Raise the soft limit of open files towards the hard one (as vLLM does): every open stream is a socket,
    and the usual soft limit of 1024 would refuse connections long before the server is busy."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = _OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, _OPEN_FILES)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from runtime.app import create_app
    from runtime.loading import load_target
    from runtime.model_source import check_store_url

    explicit = _explicit(args)
    settings = Settings.from_env(**explicit)  # a value of the wrong type or out of range: main's one line
    try:
        configure_logging(settings.log_level)
    except ValueError as exc:  # Settings only lets valid level names through; never a traceback anyway
        print(f"error: RUNTIME_LOG_LEVEL: {exc}", file=sys.stderr)
        return 2
    problem = _listen_problem(settings.host, settings.port)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        agent = load_target(settings.model, settings)
    except RuntimeErrorBase as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    # A store URL that can never work stops the start here, in the parent of any --workers. A store that does
    # not answer stops it only for a models:/ target, which it must resolve (above): a file or folder is
    # served without it until it answers (traces dropped and counted). Registry errors reach main's one line.
    # So does a Redis URL that can never work (runtime worker's check), and a metrics folder that cannot be
    # written, which would otherwise fail every second in every worker.
    check_store_url(settings)
    if settings.redis_url:
        check_redis_url(settings.redis_url)
    if settings.metrics and settings.metrics_dir:
        check_writable(settings.metrics_dir)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        "access_log": settings.access_log,
        "timeout_graceful_shutdown": settings.grace_period,
        "lifespan": "on",
        **_http_protocol(settings),
    }
    _raise_open_files_limit()
    # uvicorn drains on SIGTERM, then re-raises the signal to the handler it found: make that one exit 0,
    # so a drained shutdown reads as success to process managers (Kubernetes, systemd, docker stop).
    signal.signal(signal.SIGTERM, _exit_cleanly)
    if settings.workers > 1:
        _export(explicit)
        with _shared_metrics(settings):
            uvicorn.run("runtime.app:app_from_env", factory=True, workers=settings.workers, **common)
    else:
        try:
            app = create_app(settings, agent=agent, server_process=True)
        except (RuntimeErrorBase, RegistryError) as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return exc.exit_code
        except ValueError as exc:  # a setting some library refused: a usage error, in one line
            print(f"error: {exc}", file=sys.stderr)
            return 2
        uvicorn.run(app, **common)
    return 0
