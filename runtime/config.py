"""Settings: built once; an explicit argument wins over a ``RUNTIME_*`` environment variable over the default.

Every environment variable the runtime reads is named here and documented in the README; nothing else in
the runtime reads ``os.environ`` (OpenTelemetry's own ``OTEL_*`` variables are read by its SDK).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.errors import BadRequest

__all__ = ["ENV_PREFIX", "Settings"]

ENV_PREFIX = "RUNTIME_"


def _env(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


def _env_list(doc: str) -> Any:
    return field(default_factory=tuple, metadata={"doc": doc})


@dataclass(frozen=True, slots=True)
class Settings:
    model: str = _env(
        "examples/echo_agent.py", "What to serve: a .py file, a model folder or a models:/ URI."
    )
    host: str = _env("127.0.0.1", "Address to bind.")
    port: int = _env(8080, "Port to bind.")
    workers: int = _env(1, "Worker processes.")
    home: str = _env(".runtime", "Folder for the embedded store and artifacts.")
    store_url: str = _env("", "SQLAlchemy URL of the store; default sqlite under RUNTIME_HOME.")
    artifact_root: str = _env("", "Artifact folder; default RUNTIME_HOME/artifacts.")
    redis_url: str = _env("", "Redis URL (canaries, scoring queue, alias notifications). Optional.")
    canary_prefix: str = _env("runtime:canary", "Redis key prefix of canary state (one per deployment).")
    canary_poll_interval: float = _env(0.5, "Seconds between a server's checks of Redis for canary changes.")
    canary_stale_after: float = _env(
        2.0, "Seconds without an answer from Redis after which a server routes only to the champion."
    )
    canary_force_header: bool = _env(False, "Let clients pick a canary variant with x-runtime-variant.")
    canary_buffer: int = _env(
        100_000, "Canary statistics held in memory while Redis is down; more are dropped."
    )
    api_keys: tuple[str, ...] = _env_list("Comma-separated keys accepted as 'Authorization: Bearer <key>'.")
    admin_keys: tuple[str, ...] = _env_list("Comma-separated keys required for admin API writes.")
    max_body_bytes: int = _env(10 * 1024 * 1024, "Largest request body accepted (413 above).")
    max_concurrency: int = _env(512, "Requests served at once before answering 429.")
    request_timeout: float = _env(300.0, "Seconds a request (a whole stream) may take (504 / error event).")
    grace_period: float = _env(30.0, "Seconds in-flight requests get to finish after SIGTERM.")
    thread_pool_size: int = _env(64, "Threads that run sync agent code.")
    sse_ping_interval: float = _env(15.0, "Seconds between SSE keep-alive comments.")
    sse_send_timeout: float = _env(30.0, "Seconds one SSE write may block before the stream is dropped.")
    tracing: bool = _env(True, "Trace every request (OpenTelemetry) and store the traces.")
    metrics: bool = _env(True, "Serve Prometheus metrics on /metrics.")
    metrics_dir: str = _env(
        "",
        "Folder where worker processes share metrics, so /metrics counts all of them; "
        "`runtime serve --workers N` makes one when unset.",
    )
    capture_content: bool = _env(True, "Keep request/response previews on traces.")
    autotrace: bool = _env(True, "Trace calls agents make through the openai SDK.")
    trace_writer: str = _env(
        "process",
        "Where traces are written to the store: process (a writer process per server process) or thread.",
    )
    alias_poll_interval: float = _env(2.0, "Seconds between checks of a served alias (models:/name@alias).")
    prompt_cache_ttl: float = _env(
        30.0, "Seconds load_prompt trusts a cached prompt alias; Redis notifications refresh it at once."
    )
    scorers: str = _env("", "Python file of @scorer functions applied to served traffic (online evaluation).")
    sample_rate: float = _env(
        1.0, "Share of requests each RUNTIME_SCORERS scorer scores (0..1, by trace id)."
    )
    scoring_queue: str = _env(
        "auto",
        "Where sampled requests are scored: local, redis (runtime worker), auto (redis if configured).",
    )
    scoring_queue_size: int = _env(1000, "Sampled requests waiting to be scored before more are skipped.")
    scoring_workers: int = _env(4, "Jobs scored at once per process (in-process workers, runtime worker).")
    scoring_stream: str = _env(
        "runtime:scoring", "Redis Stream of scoring jobs (dead letters: <stream>:dead)."
    )
    scorer_timeout: float = _env(30.0, "Seconds one scorer may run before its assessment records a timeout.")
    scorer_poll_interval: float = _env(10.0, "Seconds between reads of the scorers attached in the registry.")
    judge_base_url: str = _env("", "OpenAI-compatible base URL of the LLM judge (e.g. https://host/v1).")
    judge_model: str = _env("", "Model name the LLM judge scorers ask for.")
    judge_api_key: str = field(
        default="", repr=False, metadata={"doc": "API key of the judge endpoint (never logged or stored)."}
    )
    judge_prices: str = _env("", "Judge cost in USD per million tokens: 'input,output' (e.g. 0.15,0.6).")
    log_level: str = _env("info", "Log level.")
    access_log: bool = _env(False, "Log one line per HTTP request (uvicorn's access log).")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **explicit: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if explicit.get(f.name) is not None:
                values[f.name] = explicit[f.name]
                continue
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, f.type, raw)
        return cls(**values)

    @classmethod
    def documented(cls) -> list[tuple[str, str, Any]]:
        """(variable, doc, default) for the README and ``--help``."""
        rows = []
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else ()
            rows.append((ENV_PREFIX + f.name.upper(), f.metadata["doc"], default))
        return rows

    def with_(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{os.path.join(self.home, 'runtime.db')}"

    @property
    def resolved_artifact_root(self) -> str:
        return self.artifact_root or os.path.join(self.home, "artifacts")


def _parse(name: str, kind: Any, raw: str) -> Any:
    var = ENV_PREFIX + name.upper()
    try:
        if kind in ("bool", bool):
            lowered = raw.strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(raw)
            return lowered in {"1", "true", "yes", "on"}
        if kind in ("int", int):
            return int(raw)
        if kind in ("float", float):
            return float(raw)
        if "tuple" in str(kind):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise BadRequest(f"{var}={raw!r} is not a valid {kind}") from exc
    return raw
