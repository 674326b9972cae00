"""wrk as the second load generator: its script, its result, and a real wrk against the tiny server.

No timing is asserted: the durations only bound how long each test runs.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest
from tiny_server import tiny_server

from bench.loadgen import LoadSpec
from bench.wrk import lua_script, parse_done, run_wrk, summary, whole_seconds, wrk_missing

_NO_WRK = wrk_missing()


def _spec(**overrides: Any) -> LoadSpec:
    fields: dict[str, Any] = {"host": "127.0.0.1", "port": 1, "path": "/json", "body": "{}"}
    fields.update({"concurrency": 2, "duration": 1.0, "warmup": 0.0, "grace": 2.0})
    return LoadSpec(**{**fields, **overrides})


def test_the_script_posts_the_body_whatever_brackets_it_holds() -> None:
    body = '{"input":"a ]] b ]=] c"}'
    script = lua_script(_spec(body=body))
    assert 'wrk.method = "POST"' in script
    assert 'wrk.headers["Content-Type"] = "application/json"' in script
    assert f"wrk.body = [==[{body}]==]" in script  # the first bracket level the body does not close


def test_what_wrk_printed_becomes_the_load_generator_result() -> None:
    printed = {
        "requests": 1200,
        "duration_us": 2_000_000,
        "errors": {"connect": 0, "read": 0, "write": 0, "status": 200, "timeout": 0},
        "latency_us": {"p50": 1500, "p99": 4000, "max": 9000, "mean": 1700},
    }
    stdout = "Running 2s test\nBENCH-WRK " + json.dumps(printed) + "\n"
    result = summary(parse_done(stdout), warmup_requests=300)
    assert result["requests"] == 1000  # a 500 answered is an error, not a measured request
    assert result["issued"] == 1500  # warm-up included, as bench.loadgen counts it
    assert result["rps"] == 500.0
    assert result["latency_ms"] == {"p50": 1.5, "p99": 4.0, "max": 9.0, "mean": 1.7}
    assert result["errors"] == 200
    assert result["error_kinds"] == {"status": 200}


def test_nothing_printed_is_an_error_not_an_empty_result() -> None:
    with pytest.raises(ValueError, match="wrk printed no result"):
        parse_done("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_streams_and_fractions_of_seconds() -> None:
    with pytest.raises(ValueError, match="cannot measure a stream"):
        run_wrk(_spec(stream=True))
    assert [whole_seconds(s) for s in (0.2, 1.0, 2.6)] == [1, 1, 3]


def test_without_wrk_the_module_says_how_to_get_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.wrk"],
        input=_spec().to_json(),
        capture_output=True,
        text=True,
        env={"PATH": "", "PYTHONPATH": ":".join(sys.path)},
        check=False,
    )
    assert done.returncode == 2
    assert "wrk is not installed" in done.stderr


def _run(path: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with tiny_server() as port:
            return await asyncio.to_thread(run_wrk, _spec(port=port, path=path))

    return asyncio.run(go())


@pytest.mark.skipif(_NO_WRK is not None, reason=f"optional benchmark tool: {_NO_WRK}")
def test_a_real_wrk_counts_answers_and_latencies() -> None:
    result = _run("/json")
    assert result["requests"] > 0
    assert result["errors"] == 0
    assert result["latency_ms"]["p50"] > 0
    assert result["issued"] == result["requests"]  # no warm-up asked for


@pytest.mark.skipif(_NO_WRK is not None, reason=f"optional benchmark tool: {_NO_WRK}")
def test_a_real_wrk_counts_error_statuses_apart() -> None:
    result = _run("/error")
    assert result["requests"] == 0
    assert result["errors"] > 0
    assert set(result["error_kinds"]) == {"status"}
    assert result["latency_ms"] is None
