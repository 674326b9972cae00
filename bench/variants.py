"""The servers a run compares, as ServerSpecs: runtime variants, the bare ceiling, hello, MLflow 3."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from bench.servers import LOOPBACK, ServerSpec

__all__ = [
    "BENCH_DIR",
    "LOAD_VARIANTS",
    "bare",
    "hello",
    "load_variants",
    "mlflow_variants",
    "part_variants",
    "runtime_missing",
    "slow_variants",
]

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
_ON_PATH = {"PYTHONPATH": str(PROJECT_DIR)}  # servers run from a scratch folder
AGENTS = BENCH_DIR / "agents"
MLFLOW_DIR = BENCH_DIR / "mlflow_agents"
_OBS_OFF = {"RUNTIME_TRACING": "false", "RUNTIME_METRICS": "false"}
_MLFLOW_SERVE_FLAGS = ("--env-manager", "local", "-h", LOOPBACK, "-p", "{port}", "-w", "1")
_OBS_ON = {"RUNTIME_TRACING": "true", "RUNTIME_METRICS": "true"}
_TRACING_ONLY = {"RUNTIME_TRACING": "true", "RUNTIME_METRICS": "false"}
_METRICS_ONLY = {"RUNTIME_TRACING": "false", "RUNTIME_METRICS": "true"}
# Both on, 10 % of the traces kept (the README's advice for tail latency at high load).
_SAMPLED = {**_OBS_ON, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}

LOAD_VARIANTS = (
    "hello",
    "bare",
    "runtime-async",
    "runtime-sync",
    "runtime-async-obs-off",
    "runtime-async-2w",
)


def runtime_missing() -> str | None:
    """Why ``runtime serve`` cannot run yet, or None when it can."""
    try:
        found = importlib.util.find_spec("runtime.cli.serve")
    except ModuleNotFoundError:
        found = None
    if found is None:
        return "runtime serve is not available yet (runtime/cli/serve.py is missing)"
    return None


def _runtime(
    name: str, agent: str, env: dict[str, str], workers: int = 1, max_concurrency: int | None = None
) -> ServerSpec:
    argv = [sys.executable, "-m", "runtime.cli.main", "serve", str(AGENTS / agent)]
    argv += ["--host", LOOPBACK, "--port", "{port}"]
    if max_concurrency is not None:
        argv += ["--max-concurrency", str(max_concurrency)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    return ServerSpec(name=name, kind="runtime", argv=tuple(argv), env={**_ON_PATH, **env})


def bare(name: str = "bare", deltas: int = 50, interval: float = 0.0) -> ServerSpec:
    argv = [sys.executable, "-m", "bench.bare_app", "--host", LOOPBACK, "--port", "{port}"]
    argv += ["--deltas", str(deltas), "--delta-interval", str(interval)]
    return ServerSpec(name=name, kind="bare", argv=tuple(argv), env=_ON_PATH)


def hello() -> ServerSpec:
    argv = (sys.executable, "-m", "bench.hello_app", "--host", LOOPBACK, "--port", "{port}")
    return ServerSpec(name="hello", kind="hello", argv=argv, env=_ON_PATH)


def load_variants() -> dict[str, ServerSpec]:
    return {
        "hello": hello(),
        "bare": bare(),
        "runtime-async": _runtime("runtime-async", "echo_async.py", _OBS_ON),
        "runtime-sync": _runtime("runtime-sync", "echo_sync.py", _OBS_ON),
        "runtime-async-obs-off": _runtime("runtime-async-obs-off", "echo_async.py", _OBS_OFF),
        "runtime-async-2w": _runtime("runtime-async-2w", "echo_async.py", _OBS_ON, workers=2),
    }


def part_variants() -> dict[str, ServerSpec]:
    """One part of the observability at a time (``bench.paired --parts``; not in the full run)."""
    return {
        "runtime-async-tracing": _runtime("runtime-async-tracing", "echo_async.py", _TRACING_ONLY),
        "runtime-async-metrics": _runtime("runtime-async-metrics", "echo_async.py", _METRICS_ONLY),
        "runtime-async-sampled": _runtime("runtime-async-sampled", "echo_async.py", _SAMPLED),
    }


def slow_variants(deltas: int, streams: int, mlflow_python: str | None) -> dict[str, ServerSpec]:
    """The runtime answers 429 past ``--max-concurrency`` (default 512): raised here to hold every stream."""
    env = {**_OBS_ON, "BENCH_SLOW_DELTAS": str(deltas)}
    limit = max(1024, 2 * streams)
    variants = {
        "bare-slow": bare("bare-slow", deltas, 0.1),
        "runtime-slow": _runtime("runtime-slow", "slow_stream.py", env, max_concurrency=limit),
    }
    if mlflow_python:
        variants["mlflow-agent-slow"] = _mlflow_agent_server(
            "mlflow-agent-slow", mlflow_python, tracing=True, slow_deltas=deltas
        )
    return variants


def _mlflow_agent_server(name: str, python: str, tracing: bool, slow_deltas: int = 0) -> ServerSpec:
    """MLflow's agent server (FastAPI on uvicorn, as ``AgentServer.run`` starts it) serving the echo agent."""
    env = {
        **_venv_path(python),
        "PYTHONPATH": str(MLFLOW_DIR),
        "BENCH_MLFLOW_TRACING": "true" if tracing else "false",
        "BENCH_SLOW_DELTAS": str(slow_deltas),
    }
    argv = (python, "-m", "uvicorn", "agent_server_app:app", "--host", LOOPBACK, "--port", "{port}")
    return ServerSpec(
        name=name,
        kind="mlflow",
        argv=argv,
        env=env,
        ready_path="/health",
        paths={"invocations": "/invocations", "responses": "/responses"},
        string_input=False,
    )


def _venv_path(python: str) -> dict[str, str]:
    """MLflow starts ``uvicorn`` by name: put the bin folder of the given python first on PATH."""
    return {"PATH": f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def mlflow_variants(python: str, model_dir: Path) -> dict[str, ServerSpec]:
    """``mlflow models serve`` (no streaming, no /responses) and the agent server with tracing on and off."""
    serve = ServerSpec(
        name="mlflow-serve",
        kind="mlflow",
        argv=(python, "-m", "mlflow", "models", "serve", "-m", str(model_dir), *_MLFLOW_SERVE_FLAGS),
        env=_venv_path(python),
        ready_path="/ping",
        paths={"invocations": "/invocations"},
        string_input=False,
        streams=False,
        ready_timeout=120.0,
    )
    return {
        "mlflow-serve": serve,
        "mlflow-agent": _mlflow_agent_server("mlflow-agent", python, tracing=True),
        "mlflow-agent-tracing-off": _mlflow_agent_server("mlflow-agent-tracing-off", python, tracing=False),
    }
