"""A second load generator for non-streaming loads: wrk (C, one thread), when it is installed.

    .venv/bin/python -m bench.paired --loadgen wrk        # tracing on/off measured with wrk instead

Why: on the benchmark's two cores the load generator shares the CPUs with the server and its trace writer,
so a result could be the Python load generator's doing. wrk drives the same ``LoadSpec`` (one thread, one
keep-alive connection per concurrent request, closed loop) from compiled code: where both agree, the load
generator is not what is being measured. It cannot parse SSE, so streaming loads stay with
:mod:`bench.loadgen`.

It runs as that module does (``python -m bench.wrk`` reads a spec as JSON and prints one JSON result with
the keys :mod:`bench.measure` reads): wrk once for the warm-up, then once for the measured window; a Lua
script sets the request and, when wrk is done, prints its counts and latency percentiles as JSON. wrk
counts a response whose status is not 2xx or 3xx as an error; its latencies include them. wrk runs for
whole seconds: the warm-up and the duration are rounded (at least one second each).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.loadgen import LoadSpec

__all__ = ["lua_script", "main", "parse_done", "run_wrk", "summary", "whole_seconds", "wrk_missing"]

_MARK = "BENCH-WRK "  # the line the script prints when wrk is done
_ERRORS = ("connect", "read", "write", "status", "timeout")
_PERCENTILES = {"p50": 50.0, "p99": 99.0}


def wrk_missing() -> str | None:
    """Why wrk cannot be used here, or None when it can."""
    if shutil.which("wrk") is None:
        return "wrk is not installed (Debian: apt install wrk)"
    return None


def _lua_string(text: str) -> str:
    """``text`` as a Lua long string whose brackets it does not contain."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def lua_script(spec: LoadSpec) -> str:
    """The wrk script of ``spec``: a POST of its JSON body; when done, a line of JSON after :data:`_MARK`."""
    errors = ",".join(f'"{kind}":%d' for kind in _ERRORS)
    latency = ",".join(f'"{key}":%d' for key in (*_PERCENTILES, "max", "mean"))
    values = ", ".join(f"summary.errors.{kind}" for kind in _ERRORS)
    percentiles = ", ".join(f"latency:percentile({pct})" for pct in _PERCENTILES.values())
    return f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {_lua_string(spec.body)}

function done(summary, latency, requests)
  io.write(string.format('{_MARK}{{"requests":%d,"duration_us":%d,"errors":{{{errors}}},'
    .. '"latency_us":{{{latency}}}}}\\n',
    summary.requests, summary.duration, {values},
    {percentiles}, latency.max, latency.mean))
end
"""


def parse_done(stdout: str) -> dict[str, Any]:
    """What the script printed when wrk was done; ValueError if it printed nothing (wrk failed)."""
    for line in stdout.splitlines():
        if line.startswith(_MARK):
            found: dict[str, Any] = json.loads(line[len(_MARK) :])
            return found
    raise ValueError(f"wrk printed no result:\n{stdout[-2000:]}")


def whole_seconds(seconds: float) -> int:
    """wrk takes whole seconds: ``seconds`` rounded, at least one."""
    return max(1, round(seconds))


def _wrk(spec: LoadSpec, script: Path, seconds: float) -> dict[str, Any]:
    url = f"http://{spec.host}:{spec.port}{spec.path}"
    timeout_s = max(1, int(spec.grace))
    command = ["wrk", "-t1", f"-c{spec.concurrency}", f"-d{whole_seconds(seconds)}s"]
    command += [f"--timeout={timeout_s}s", "-s", str(script), url]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + spec.grace + 30, check=False
    )
    if done.returncode != 0:
        raise ValueError(f"wrk exited with {done.returncode}: {done.stderr[-2000:]}")
    return parse_done(done.stdout)


def summary(measured: dict[str, Any], warmup_requests: int) -> dict[str, Any]:
    """``measured`` (what the script printed) in :mod:`bench.loadgen`'s result keys."""
    errors = {kind: count for kind, count in measured["errors"].items() if count}
    elapsed = max(measured["duration_us"] / 1e6, 1e-9)
    failed = errors.get("status", 0)  # answered, but not 2xx/3xx: counted in requests by wrk, not here
    answered = max(0, measured["requests"] - failed)
    latency = {key: round(value / 1000, 3) for key, value in measured["latency_us"].items()}
    return {
        "requests": answered,
        "issued": warmup_requests + measured["requests"],
        "elapsed_s": round(elapsed, 3),
        "rps": round(answered / elapsed, 1),
        "latency_ms": latency if answered else None,
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "loadgen": "wrk",
    }


def run_wrk(spec: LoadSpec) -> dict[str, Any]:
    """Warm up, then measure ``spec`` (not streaming) with wrk."""
    if spec.stream:
        raise ValueError("wrk cannot measure a stream: use bench.loadgen")
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as folder:
        script = Path(folder) / "load.lua"
        script.write_text(lua_script(spec))
        warmup = _wrk(spec, script, spec.warmup)["requests"] if spec.warmup > 0 else 0
        return summary(_wrk(spec, script, spec.duration), warmup)


def main() -> int:
    missing = wrk_missing()
    if missing:
        print(missing, file=sys.stderr)
        return 2
    spec = LoadSpec.from_json(sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read())
    json.dump(run_wrk(spec), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
