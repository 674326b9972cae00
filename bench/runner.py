"""One bench run: start each server, drive every scenario at every concurrency, read memory and deferred work.

Servers run one at a time so that they never compete for the two cores; each is stopped before the next
starts. A server that cannot start (``runtime serve`` not written yet, mlflow absent) is recorded with
the reason and the run goes on.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.measure import (
    LoadgenError,
    deferred_cpu,
    first_request_ms,
    measure,
    settle,
    slow_streams,
    span_counts,
)
from bench.options import BenchOptions
from bench.procfs import process_tree
from bench.scenarios import DEFAULT_SCENARIOS, SCENARIOS
from bench.servers import RunningServer, ServerSpec, ServerStartError, start_server
from bench.variants import BENCH_DIR, load_variants, mlflow_variants, runtime_missing, slow_variants

__all__ = ["run_bench"]

_MB = 1024 * 1024
MLFLOW_ABSENT = (
    "MLflow: not measured (mlflow not installed; pass --mlflow-python PATH to a python that has it)"
)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _named(options: BenchOptions, candidates: Iterable[str]) -> list[str]:
    listed = list(candidates)
    chosen = [name for name in listed if name in options.only]
    return chosen or listed


def _unavailable(spec: ServerSpec) -> str | None:
    return runtime_missing() if spec.kind == "runtime" else None


def _start(spec: ServerSpec, workdir: Path) -> tuple[RunningServer | None, dict[str, Any]]:
    reason = _unavailable(spec)
    if reason is not None:
        _log(f"[{spec.name}] skipped: {reason}")
        return None, {"status": "skipped", "reason": reason}
    cwd = Path(tempfile.mkdtemp(prefix=f"{spec.name}-", dir=workdir))
    try:
        server = start_server(spec, workdir, cwd)
    except ServerStartError as exc:
        _log(f"[{spec.name}] failed to start: {exc}")
        return None, {"status": "failed", "reason": str(exc)}
    rss, _ = server.rss()
    _log(f"[{spec.name}] ready in {server.cold_start_s:.2f} s on port {server.port}")
    return server, {"status": "ok", "cold_start_s": round(server.cold_start_s, 3), "rss_idle_mb": rss / _MB}


def _load_one(server: RunningServer, scenarios: list[str], options: BenchOptions) -> dict[str, Any]:
    runs: dict[str, Any] = {}
    for name in scenarios:
        scenario = SCENARIOS[name]
        if scenario.path(server.spec) is None:
            runs[name] = {"status": "unsupported"}
            continue
        runs[name] = {"first_request_ms": first_request_ms(server, scenario)}
        for concurrency in options.concurrency:
            result = measure(server, scenario, concurrency, options)
            runs[name][str(concurrency)] = result
            _log(
                f"[{server.spec.name}] {name} c={concurrency}: {result['rps']} req/s,"
                f" p50 {result['p50_ms']} ms,"
                f" {result['deltas_per_s']} deltas/s, errors {result['errors']}"
            )
    return runs


def _run_server(
    spec: ServerSpec, scenarios: list[str], options: BenchOptions, workdir: Path
) -> dict[str, Any]:
    server, record = _start(spec, workdir)
    if server is None:
        return record
    try:
        cpu_before = server.cpu()
        record["runs"] = _load_one(server, scenarios, options)
        rss_total, rss_max = server.rss()
        record["rss_after_mb"] = round(rss_total / _MB, 1)
        record["rss_max_process_mb"] = round(rss_max / _MB, 1)
        record["processes"] = len(process_tree(server.pid))
        record["load_cpu_s"] = round(server.cpu() - cpu_before, 2)
        record["deferred_cpu_s"] = deferred_cpu(server, options.tail)
        if spec.kind == "runtime":
            record["spans"] = span_counts(server)
        record["alive"] = server.alive()
    except (LoadgenError, subprocess.TimeoutExpired) as exc:
        record.update(status="failed", reason=f"load failed: {exc}\n{server.log_tail()}")
        _log(f"[{spec.name}] {record['reason']}")
    finally:
        server.stop()
    return record


def _slow_one(spec: ServerSpec, options: BenchOptions, workdir: Path) -> dict[str, Any]:
    server, record = _start(spec, workdir)
    if server is None:
        return record
    scenario = SCENARIOS["responses-stream"]
    path = scenario.path(spec)
    assert path is not None
    try:
        first_request_ms(server, SCENARIOS["responses"])  # what a server starts once, started before
        settle(server)
        result = slow_streams(server, path, scenario.body(spec), options.slow_streams, options.slow_deltas)
        record.update(result)
        record["deferred_cpu_s"] = deferred_cpu(server, options.tail)
        if spec.kind == "runtime":
            record["spans"] = span_counts(server)
        _log(
            f"[{spec.name}] {result['completed']}/{result['streams']} streams, errors {result['errors']},"
            f" p99 extra gap {result['gap_extra_p99_ms']} ms, {result['kb_per_stream']} KB/stream"
        )
    except (LoadgenError, subprocess.TimeoutExpired) as exc:
        record.update(status="failed", reason=f"slow streams failed: {exc}\n{server.log_tail()}")
        _log(f"[{spec.name}] {record['reason']}")
    finally:
        server.stop()
    return record


def _prepare_mlflow(python: str, workdir: Path) -> tuple[Path | None, str | None]:
    """Save the MLflow echo agent as a model folder with ``python``: (folder, None) or (None, why not)."""
    model_dir = workdir / "mlflow-echo-model"
    script = BENCH_DIR / "mlflow_agents" / "save_model.py"
    try:
        proc = subprocess.run(
            [python, str(script), str(model_dir)], capture_output=True, timeout=300, check=False, cwd=workdir
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"MLflow: not measured ({exc})"
    if proc.returncode != 0:
        return None, f"MLflow: not measured (saving the model failed: {proc.stderr.decode()[-800:]})"
    return model_dir, None


def _machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _load_section(options: BenchOptions, workdir: Path) -> tuple[dict[str, Any], str | None]:
    variants = load_variants()
    mlflow_note: str | None = MLFLOW_ABSENT
    if options.mlflow_python:
        model_dir, mlflow_note = _prepare_mlflow(options.mlflow_python, workdir)
        if model_dir is not None:
            variants.update(mlflow_variants(options.mlflow_python, model_dir))
    scenarios = [
        name for name in _named(options, SCENARIOS) if name in options.only or name in DEFAULT_SCENARIOS
    ]
    servers: dict[str, Any] = {}
    for name in _named(options, variants):
        servers[name] = _run_server(variants[name], scenarios, options, workdir)
    if mlflow_note is None and not any(
        record.get("status") == "ok" for name, record in servers.items() if name.startswith("mlflow")
    ):
        mlflow_note = "MLflow: not measured (its servers did not start or were not selected; see above)"
    return servers, mlflow_note


def _wants_load(options: BenchOptions) -> bool:
    names = {*load_variants(), *SCENARIOS, "mlflow-serve", "mlflow-agent", "mlflow-agent-tracing-off"}
    return not options.only or any(name in names for name in options.only)


def _wants_slow(options: BenchOptions) -> bool:
    names = {"slow", "bare-slow", "runtime-slow", "mlflow-agent-slow"}
    return not options.only or any(name in names for name in options.only)


def run_bench(options: BenchOptions) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    results: dict[str, Any] = {
        "machine": _machine(),
        "options": _options_json(options),
        "workdir": str(workdir),
    }
    if _wants_load(options):
        results["servers"], results["mlflow"] = _load_section(options, workdir)
    if _wants_slow(options):
        variants = slow_variants(options.slow_deltas, options.slow_streams, options.mlflow_python)
        chosen = [n for n in variants if n in options.only] or list(variants)
        results["slow_streams"] = {name: _slow_one(variants[name], options, workdir) for name in chosen}
    return results


def _options_json(options: BenchOptions) -> dict[str, Any]:
    return {key: str(value) if isinstance(value, Path) else value for key, value in vars(options).items()}
