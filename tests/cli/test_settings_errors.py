"""Settings that can never work stop a command at once with one ``error:`` line and exit code 2: values out of
range, malformed Redis URLs, a metrics folder that cannot be written; nothing reaches a traceback."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from runtime.cli.main import main
from runtime.config import Settings
from runtime.errors import BadRequest
from runtime.observability.prometheus import Registry
from runtime.observability.shared_metrics import FAILURE_LOG_INTERVAL, SharedMetrics
from tests.servers import ROOT, ServeProcess, free_port


@pytest.mark.parametrize(
    ("variable", "value", "rule"),
    [
        ("PORT", "83736", "must be a whole number from 1 to 65535"),
        ("PORT", "0", "must be a whole number from 1 to 65535"),
        ("PORT", "-1", "must be a whole number from 1 to 65535"),
        ("PORT", "abc", "must be a whole number from 1 to 65535"),  # a wrong type reads the same
        ("WORKERS", "0", "must be a whole number of at least 1"),
        ("THREAD_POOL_SIZE", "0", "must be a whole number of at least 1"),
        ("MAX_CONCURRENCY", "-5", "must be a whole number of at least 1"),
        ("MAX_BODY_BYTES", "0", "must be a whole number of at least 1"),
        ("CANARY_BUFFER", "0", "must be a whole number of at least 1"),
        ("SCORING_WORKERS", "0", "must be a whole number of at least 1"),
        ("SCORING_QUEUE_SIZE", "0", "must be a whole number of at least 1"),
        ("REQUEST_TIMEOUT", "nan", "must be a finite number above 0"),
        ("REQUEST_TIMEOUT", "0", "must be a finite number above 0"),
        ("REQUEST_TIMEOUT", "inf", "must be a finite number above 0"),
        ("GRACE_PERIOD", "-1", "must be a finite number of at least 0"),
        ("GRACE_PERIOD", "1e999", "must be a finite number of at least 0"),
        ("SSE_PING_INTERVAL", "-0.5", "must be a finite number of at least 0"),
        ("SSE_SEND_TIMEOUT", "nan", "must be a finite number of at least 0"),
        ("ALIAS_POLL_INTERVAL", "0", "must be a finite number above 0"),
        ("CANARY_POLL_INTERVAL", "0", "must be a finite number above 0"),
        ("CANARY_STALE_AFTER", "-inf", "must be a finite number above 0"),
        ("PROMPT_CACHE_TTL", "-1", "must be a finite number of at least 0"),
        ("SCORER_TIMEOUT", "0", "must be a finite number above 0"),
        ("SCORER_POLL_INTERVAL", "0", "must be a finite number above 0"),
        ("SAMPLE_RATE", "1.5", "must be a number from 0 to 1"),
        ("SAMPLE_RATE", "nan", "must be a number from 0 to 1"),
        ("SAMPLE_RATE", "-0.1", "must be a number from 0 to 1"),
        ("JUDGE_PRICES", "0.15", "must be 'input,output'"),
        ("JUDGE_PRICES", "0.15,-1", "must be 'input,output'"),
        ("LOG_LEVEL", "verbose", "must be one of debug, info, warning, error, critical"),
        ("TRACE_WRITER", "bogus", "must be one of process, thread"),
        ("TRACING", "maybe", "must be true or false"),
    ],
)
def test_a_value_out_of_range_is_one_usage_error(variable: str, value: str, rule: str) -> None:
    with pytest.raises(BadRequest) as raised:
        Settings.from_env({f"RUNTIME_{variable}": value})
    assert raised.value.message.startswith(f"RUNTIME_{variable}={value!r} {rule}")
    assert raised.value.exit_code == 2


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("PORT", "1", "port", 1),
        ("PORT", "65535", "port", 65535),
        ("SSE_PING_INTERVAL", "0", "sse_ping_interval", 0.0),  # 0: no pings
        ("SSE_SEND_TIMEOUT", "0", "sse_send_timeout", 0.0),  # 0: no limit
        ("GRACE_PERIOD", "0", "grace_period", 0.0),
        ("PROMPT_CACHE_TTL", "0", "prompt_cache_ttl", 0.0),  # 0: every load asks the store
        ("SAMPLE_RATE", "0", "sample_rate", 0.0),
        ("SAMPLE_RATE", "1", "sample_rate", 1.0),
        ("LOG_LEVEL", "WARNING", "log_level", "WARNING"),
        ("JUDGE_PRICES", "0.15,0.6", "judge_prices", "0.15,0.6"),
    ],
)
def test_values_at_the_edges_of_their_range_are_kept(
    variable: str, value: str, field: str, expected: object
) -> None:
    assert getattr(Settings.from_env({f"RUNTIME_{variable}": value}), field) == expected


def test_explicit_values_and_settings_built_in_code_are_checked_the_same_way() -> None:
    with pytest.raises(BadRequest, match=r"^port=70000 must be a whole number from 1 to 65535$"):
        Settings.from_env({}, port=70000)
    with pytest.raises(BadRequest, match=r"^request-timeout=nan must be a finite number above 0$"):
        Settings.from_env({"RUNTIME_REQUEST_TIMEOUT": "10"}, request_timeout=float("nan"))
    with pytest.raises(BadRequest, match=r"^RUNTIME_WORKERS=0 must be a whole number of at least 1$"):
        Settings(workers=0)
    with pytest.raises(BadRequest, match=r"^RUNTIME_CANARY_POLL_INTERVAL=0\.0 must be"):
        Settings().with_(canary_poll_interval=0.0)


def run_serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli.main", "serve", "examples/echo_agent.py", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def assert_one_error_line(result: subprocess.CompletedProcess[str], message: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert (result.returncode, len(lines)) == (2, 1), result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert message in lines[0]
    assert "secret" not in result.stderr + result.stdout
    assert "Uvicorn running" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), {"RUNTIME_PORT": "83736"}, "RUNTIME_PORT='83736' must be a whole number from 1 to 65535"),
        (("--port", "-1"), {}, "port=-1 must be a whole number from 1 to 65535"),
        (("--timeout", "nan"), {}, "request-timeout=nan must be a finite number above 0"),
        (("--workers", "0"), {}, "workers=0 must be a whole number of at least 1"),
        (("--sample-rate", "2"), {}, "sample-rate=2.0 must be a number from 0 to 1"),
        (("--log-level", "verbose"), {}, "log-level='verbose' must be one of debug, info"),
        ((), {"RUNTIME_LOG_LEVEL": "verbose"}, "RUNTIME_LOG_LEVEL='verbose' must be one of debug"),
        ((), {"RUNTIME_CANARY_POLL_INTERVAL": "0"}, "RUNTIME_CANARY_POLL_INTERVAL='0' must be a finite"),
        # A setting create_app refuses is one line too.
        (
            (),
            {"RUNTIME_SCORING_QUEUE": "bogus", "RUNTIME_LOG_LEVEL": "warning"},  # no store INFO lines
            "RUNTIME_SCORING_QUEUE must be auto, local or redis",
        ),
        # runtime worker's Redis URL check, before uvicorn starts, without the password.
        ((), {"RUNTIME_REDIS_URL": "redis://:secret@127.0.0.1:abc/9"}, "invalid Redis URL (--redis-url"),
        (("--redis-url", "notaurl://x"), {}, "error: invalid Redis URL (--redis-url or RUNTIME_REDIS_URL): "),
        (("--workers", "2"), {"RUNTIME_REDIS_URL": "http://x"}, "must specify one of the following schemes"),
        ((), {"RUNTIME_METRICS_DIR": "/proc/nope"}, "RUNTIME_METRICS_DIR='/proc/nope' cannot be used"),
        (("--workers", "2"), {"RUNTIME_METRICS_DIR": "/proc/nope"}, "cannot create or write to it"),
        # An address uvicorn cannot listen on, said before the agent loads and naming the host.
        (("--host", "not a host!"), {}, "'not a host!' is not an address or a known host name"),
        ((), {"RUNTIME_HOST": "192.0.2.1"}, "cannot listen on 192.0.2.1:"),  # TEST-NET-1: not this machine's
    ],
)
def test_serve_refuses_settings_that_cannot_work_with_one_line(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    if not any(a == "--port" for a in args) and "RUNTIME_PORT" not in env:
        args = (*args, "--port", str(free_port()))
    result = run_serve(*args, env={"RUNTIME_HOME": str(tmp_path / "home"), **env})
    assert_one_error_line(result, message)


def test_serve_refuses_a_port_in_use_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_serve("--port", str(port), env={"RUNTIME_HOME": str(tmp_path / "home")})
    assert_one_error_line(
        result, f"cannot listen on 127.0.0.1:{port} (--host/RUNTIME_HOST, --port/RUNTIME_PORT)"
    )
    assert "in use" in result.stderr


def test_serve_refuses_a_metrics_folder_below_a_file(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    env = {"RUNTIME_HOME": str(tmp_path / "home"), "RUNTIME_METRICS_DIR": str(tmp_path / "a-file" / "m")}
    assert_one_error_line(run_serve("--port", str(free_port()), env=env), "cannot create or write to it")


@pytest.mark.parametrize("command", ["history", "start bot --challenger 2", "status bot", "rollback bot"])
@pytest.mark.parametrize(
    "redis_url", ["redis://:secret@127.0.0.1:abc/9", "notaurl://x", "http://x", "redis://:se/cret@h:1/0"]
)
def test_canary_commands_refuse_a_malformed_redis_url_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, redis_url: str
) -> None:
    store = f"sqlite:///{tmp_path / 'runtime.db'}"
    assert main(["canary", *command.split(), "--redis-url", redis_url, "--store-url", store]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid Redis URL (--redis-url or RUNTIME_REDIS_URL): "), err
    assert len(err.strip().splitlines()) == 1
    assert "secret" not in err and "'se'" not in err and "cret" not in err


@pytest.mark.parametrize("command", ["history", "start bot --challenger 2", "promote bot"])
def test_canary_commands_exit_2_for_a_malformed_store_url(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    store = "mysql://u:secret@db/x"
    assert (
        main(["canary", *command.split(), "--redis-url", "redis://127.0.0.1:1/0", "--store-url", store]) == 2
    )
    err = capsys.readouterr().err
    assert err.strip() == (
        "error: unsupported store URL 'mysql://u:***@db/x': use sqlite:///PATH or postgresql+psycopg://..."
    )


def test_a_metrics_folder_that_cannot_be_written_is_logged_once_a_minute_without_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a-file").write_text("")
    shared = SharedMetrics(tmp_path / "a-file" / "metrics", Registry(), interval=0.01)

    async def publish_a_while() -> None:
        async with shared.publishing():
            await asyncio.sleep(0.3)  # some 30 failed publishes, and the last one when the block ends

    with caplog.at_level(logging.WARNING, logger="runtime.observability"):
        asyncio.run(publish_a_while())
        [record] = caplog.records
        assert record.exc_info is None
        assert record.getMessage().startswith(f"could not publish metrics to {tmp_path / 'a-file'}")
        assert "logged at most once a minute" in record.getMessage()
        assert shared._failure_logged_at is not None
        shared._failure_logged_at = time.monotonic() - FAILURE_LOG_INTERVAL - 1  # a minute later
        asyncio.run(publish_a_while())
    assert len(caplog.records) == 2


def test_the_docker_healthcheck_asks_the_port_in_runtime_port(tmp_path: Path) -> None:
    """The HEALTHCHECK command as Docker runs it (``/bin/sh -c``), against a server on another port."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    [line] = [line for line in text.splitlines() if line.startswith("HEALTHCHECK")]
    command = line.split(" CMD ", 1)[1].strip()
    assert not command.startswith("["), "the exec form would not expand RUNTIME_PORT"
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # `python`: this one

    def healthcheck(port: str | None) -> int:
        env = {**os.environ, "PATH": path}
        env.pop("RUNTIME_PORT", None)
        if port is not None:
            env["RUNTIME_PORT"] = port
        done = subprocess.run(
            ["/bin/sh", "-c", command], env=env, capture_output=True, timeout=30, check=False
        )
        return done.returncode

    with ServeProcess(["examples/echo_agent.py"], env={"RUNTIME_HOME": str(tmp_path / "home")}) as server:
        server.wait_ready()
        assert httpx.get(server.url + "/health", timeout=5).status_code == 200
        assert healthcheck(str(server.port)) == 0
        assert healthcheck(str(free_port())) != 0  # nothing there: unhealthy
        assert "8080" in command and "${RUNTIME_PORT:-8080}" in command  # the default when unset
