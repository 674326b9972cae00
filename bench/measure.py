"""One measurement against a running server: the load generator in its own process, repeated, medians.

Also the two server-side readings taken around a load: memory per open stream (RSS sampled while the
streams are open) and work deferred past the window (server CPU seconds burned in the seconds after
the load stopped).
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

from bench.loadgen import LoadSpec
from bench.options import BenchOptions
from bench.procfs import machine_busy_seconds, process_tree
from bench.scenarios import Scenario
from bench.servers import LOOPBACK, RunningServer
from bench.stats import median_or_none

__all__ = [
    "LoadgenError",
    "deferred_cpu",
    "first_request_ms",
    "load_spec",
    "measure",
    "settle",
    "slow_streams",
    "span_counts",
]

_MB = 1024 * 1024
_CPUS = os.cpu_count() or 1
_EXTRA_TIMEOUT_S = 60.0
_SAMPLE_S = 0.25
_SETTLED_S = 1.0


class LoadgenError(Exception):
    """The load generator process failed; its stderr is in the message."""


def _decode(stdout: bytes, stderr: bytes, code: int | None) -> dict[str, Any]:
    if code != 0:
        raise LoadgenError(f"loadgen exited with {code}: {stderr.decode(errors='replace')[-2000:]}")
    result: dict[str, Any] = json.loads(stdout)
    return result


def _timeout(spec: LoadSpec) -> float:
    return spec.warmup + spec.duration + spec.grace + _EXTRA_TIMEOUT_S


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_loadgen(spec: LoadSpec, server: RunningServer, module: str = "bench.loadgen") -> dict[str, Any]:
    """One load in a fresh process, with the CPU the server, the load generator and everything else used.

    ``module`` is the load generator: :mod:`bench.loadgen`, or :mod:`bench.wrk` (non-streaming loads)."""
    busy, server_cpu, loadgen_cpu = machine_busy_seconds(), server.cpu(), _children_cpu()
    main_thread_cpu, main_thread_wait = server.main_thread_cpu(), server.main_thread_wait()
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", module],
        input=spec.to_json().encode(),
        capture_output=True,
        timeout=_timeout(spec),
        check=False,
    )
    wall = time.perf_counter() - started
    result = _decode(proc.stdout, proc.stderr, proc.returncode)
    server_cpu = server.cpu() - server_cpu
    main_thread_cpu = server.main_thread_cpu() - main_thread_cpu
    main_thread_wait = server.main_thread_wait() - main_thread_wait
    loadgen_cpu = _children_cpu() - loadgen_cpu
    other = machine_busy_seconds() - busy - server_cpu - loadgen_cpu
    result["server_cpu_s"] = round(server_cpu, 3)
    result["server_main_thread_cpu_s"] = round(main_thread_cpu, 3)
    result["server_main_thread_wait_pct"] = round(main_thread_wait / wall * 100, 1)
    result["loadgen_process_cpu_s"] = round(loadgen_cpu, 3)
    result["other_cpu_pct"] = round(max(0.0, other) / (wall * _CPUS) * 100, 1)
    return result


def _pick(result: dict[str, Any], key: str, sub: str | None = None) -> float | None:
    value = result.get(key)
    if sub is not None:
        value = value.get(sub) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _medians(results: list[dict[str, Any]]) -> dict[str, Any]:
    def med(key: str, sub: str | None = None) -> float | None:
        return median_or_none([_pick(r, key, sub) for r in results])

    return {
        "rps": med("rps"),
        "p50_ms": med("latency_ms", "p50"),
        "p99_ms": med("latency_ms", "p99"),
        "events_per_s": med("events_per_s"),
        "deltas_per_s": med("deltas_per_s"),
        "ttfe_p50_ms": med("ttfe_ms", "p50"),
        "ttfe_p99_ms": med("ttfe_ms", "p99"),
        "other_cpu_pct": med("other_cpu_pct"),
        "errors": sum(int(r["errors"]) for r in results),
        "repeats": results,
    }


def measure(
    server: RunningServer, scenario: Scenario, concurrency: int, opts: BenchOptions
) -> dict[str, Any]:
    """Run the load ``opts.repeat`` times and return the medians (and every repeat)."""
    spec = load_spec(server, scenario, concurrency, opts.duration, opts.warmup)
    if spec is None:
        return {"status": "unsupported"}
    return _medians([run_loadgen(spec, server) for _ in range(opts.repeat)])


def load_spec(
    server: RunningServer, scenario: Scenario, concurrency: int, duration: float, warmup: float
) -> LoadSpec | None:
    """The load of ``scenario`` against ``server``, or None when the server does not serve it."""
    path = scenario.path(server.spec)
    if path is None:
        return None
    return LoadSpec(
        host=LOOPBACK,
        port=server.port,
        path=path,
        body=scenario.body(server.spec),
        concurrency=concurrency,
        duration=duration,
        warmup=warmup,
        stream=scenario.stream,
    )


def first_request_ms(server: RunningServer, scenario: Scenario) -> float | None:
    """Latency of the very first request of ``scenario`` (lazy initialisation shows here), or None on failure.

    It also keeps a server's one-off set-up out of the measured window.
    """
    path = scenario.path(server.spec)
    if path is None:
        return None
    started = time.perf_counter()
    answer = _fetch(server, "POST", path, scenario.body(server.spec))
    if answer is None:
        return None
    return round((time.perf_counter() - started) * 1000, 2)


def _fetch(server: RunningServer, method: str, path: str, body: str | None = None) -> bytes | None:
    """One request on a fresh connection: the body of a 200 answer, else None."""
    conn = http.client.HTTPConnection(LOOPBACK, server.port, timeout=_EXTRA_TIMEOUT_S)
    try:
        conn.request(method, path, body, {"Content-Type": "application/json"} if body is not None else {})
        response = conn.getresponse()
        payload = response.read()
    except OSError:
        return None
    finally:
        conn.close()
    return payload if response.status == 200 else None


def deferred_cpu(server: RunningServer, tail: float) -> float:
    """Server CPU seconds consumed during ``tail`` seconds of silence right after a load."""
    before = server.cpu()
    time.sleep(tail)
    return round(server.cpu() - before, 3)


_SPAN_COUNTERS = {
    "runtime_trace_spans_exported_total": "spans_exported",
    "runtime_trace_spans_dropped_total": "spans_dropped",
}


def span_counts(server: RunningServer) -> dict[str, int] | None:
    """Spans the runtime wrote to its store and spans it dropped (its ``/metrics``), after the load and
    its tail: tracing that keeps up drops none, and a high request rate bought by dropping spans shows."""
    payload = _fetch(server, "GET", "/metrics")
    if payload is None:
        return None
    text = payload.decode()
    counts = dict.fromkeys(_SPAN_COUNTERS.values(), 0)
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in _SPAN_COUNTERS:
            counts[_SPAN_COUNTERS[name]] += int(float(line.rsplit(" ", 1)[1]))
    return counts


def settle(server: RunningServer, timeout: float = 8.0) -> None:
    """Wait until the server's process tree has kept the same members for a second (after a first request
    the runtime starts its trace writer process, which takes most of a second), at most ``timeout``."""
    members, steady_since = process_tree(server.pid), time.monotonic()
    deadline = steady_since + timeout
    while time.monotonic() < deadline and time.monotonic() - steady_since < _SETTLED_S:
        time.sleep(_SAMPLE_S)
        now = process_tree(server.pid)
        if now != members:
            members, steady_since = now, time.monotonic()


def slow_streams(server: RunningServer, path: str, body: str, streams: int, deltas: int) -> dict[str, Any]:
    """``streams`` concurrent streams of ``deltas`` deltas at 10/s: errors, lateness, memory per stream.

    Memory per stream is the growth of the server's resident memory (its whole process tree) while the
    streams are open, from a server that has served a request already (see :func:`settle`): what it
    starts once (the runtime's trace writer) is not memory per stream."""
    time.sleep(0.5)
    rss_before, _ = server.rss()
    stream_s = deltas * 0.1
    spec = LoadSpec(
        host=LOOPBACK,
        port=server.port,
        path=path,
        body=body,
        concurrency=streams,
        duration=stream_s + 30.0,
        warmup=0.0,
        max_requests=streams,
        stream=True,
        delta_interval=0.1,
        grace=5.0,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.loadgen", spec.to_json()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    peak = rss_before
    deadline = time.monotonic() + _timeout(spec)
    while proc.poll() is None and time.monotonic() < deadline:
        peak = max(peak, server.rss()[0])
        time.sleep(_SAMPLE_S)
    stdout, stderr = proc.communicate(timeout=_EXTRA_TIMEOUT_S)
    result = _decode(stdout, stderr, proc.returncode)
    gaps = result.get("gap_extra_ms") or {}
    return {
        "streams": streams,
        "deltas_per_stream": deltas,
        "completed": result["requests"],
        "errors": result["errors"],
        "error_kinds": result["error_kinds"],
        "gap_extra_p50_ms": gaps.get("p50"),
        "gap_extra_p99_ms": gaps.get("p99"),
        "gap_extra_max_ms": gaps.get("max"),
        "ttfe_p99_ms": (result.get("ttfe_ms") or {}).get("p99"),
        "rss_before_mb": round(rss_before / _MB, 1),
        "rss_peak_mb": round(peak / _MB, 1),
        "kb_per_stream": round((peak - rss_before) / 1024 / streams, 1),
        "loadgen": result,
    }
