"""Settings: built once; an explicit argument wins over a ``RUNTIME_*`` environment variable over the default.

Every environment variable the runtime reads is named here and documented in the README; nothing else in
the runtime reads ``os.environ`` (OpenTelemetry's own ``OTEL_*`` variables are read by its SDK).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
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
    max_header_bytes: int = _env(
        64 * 1024, "Largest request line and headers accepted (431 above; runtime serve)."
    )
    header_timeout: float = _env(
        60.0, "Seconds a client may take to send a request's headers (408 after; runtime serve)."
    )
    max_concurrency: int = _env(512, "Requests served at once before answering 429.")
    request_timeout: float = _env(300.0, "Seconds a request (a whole stream) may take (504 / error event).")
    grace_period: float = _env(30.0, "Seconds in-flight requests get to finish after SIGTERM.")
    thread_pool_size: int = _env(64, "Threads that run sync agent code.")
    sse_ping_interval: float = _env(15.0, "Seconds between SSE keep-alive comments (0: none).")
    sse_send_timeout: float = _env(
        30.0, "Seconds one SSE write may block before the stream is dropped (0: no limit)."
    )
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
    log_level: str = _env("info", "Log level: debug, info, warning, error or critical.")
    access_log: bool = _env(False, "Log one line per HTTP request (uvicorn's access log).")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            problem = _out_of_range(f.name, value)
            if problem is not None:
                raise BadRequest(f"{ENV_PREFIX + f.name.upper()}={value!r} {problem}", param=f.name)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **explicit: Any) -> Settings:
        """Settings from ``explicit`` values (command-line options) over ``environ`` over the defaults.

        A value of the wrong type or out of range raises ``BadRequest`` (exit code 2) naming where it came
        from: ``RUNTIME_PORT='83736' must be ...`` for the environment, ``port=83736 must be ...`` (the
        option's value) for an explicit one."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            var = ENV_PREFIX + f.name.upper()
            if explicit.get(f.name) is not None:
                value = explicit[f.name]
                shown = f"{f.name.replace('_', '-')}={value!r}"
            else:
                raw = env.get(var)
                if raw is None or raw == "":
                    continue
                value = _parse(f.name, f.type, raw)
                shown = f"{var}={raw!r}"
            problem = _out_of_range(f.name, value)
            if problem is not None:
                raise BadRequest(f"{shown} {problem}", param=f.name)
            values[f.name] = value
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
        rule = _out_of_range(name, None) or _TYPE_RULES.get(str(kind), f"must be a valid {kind}")
        raise BadRequest(f"{var}={raw!r} {rule}", param=name) from exc
    return raw


_TYPE_RULES = {
    "bool": "must be true or false (1, 0, yes, no, on, off)",
    "int": "must be a whole number",
    "float": "must be a number",
}


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _number(low: float, high: float = math.inf, *, low_open: bool = False) -> Callable[[Any], str | None]:
    """A check of a finite number from ``low`` (excluded when ``low_open``) to ``high``."""
    if low_open:
        rule = f"must be a finite number above {low:g}"
    elif high == math.inf:
        rule = f"must be a finite number of at least {low:g}"
    else:
        rule = f"must be a number from {low:g} to {high:g}"

    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return rule
        if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
            return rule
        return None

    return check


def _integer(low: int, high: int | None = None) -> Callable[[Any], str | None]:
    rule = (
        f"must be a whole number from {low} to {high}"
        if high is not None
        else f"must be a whole number of at least {low}"
    )

    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return rule
        return rule if value < low or (high is not None and value > high) else None

    return check


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    """A check of a word from ``choices``, in any case."""

    def check(value: Any) -> str | None:
        if isinstance(value, str) and value.strip().lower() in choices:
            return None
        return "must be one of " + ", ".join(choices)

    return check


def _judge_prices(value: Any) -> str | None:
    rule = "must be 'input,output': two numbers of at least 0, in USD per million tokens (e.g. 0.15,0.6)"
    if not isinstance(value, str):
        return rule
    if not value.strip():
        return None
    parts = value.split(",")
    try:
        prices = [float(part) for part in parts]
    except ValueError:
        return rule
    return None if len(prices) == 2 and all(math.isfinite(p) and p >= 0 for p in prices) else rule


# The range of every setting that has one; 0 stays allowed where it means something: no SSE pings, no send
# timeout, no grace period, a prompt alias never trusted from the cache.
_RANGES: dict[str, Callable[[Any], str | None]] = {
    "port": _integer(1, 65535),
    "workers": _integer(1),
    "canary_poll_interval": _number(0, low_open=True),
    "canary_stale_after": _number(0, low_open=True),
    "canary_buffer": _integer(1),
    "max_body_bytes": _integer(1),
    "max_header_bytes": _integer(1024),
    "header_timeout": _number(0, low_open=True),
    "max_concurrency": _integer(1),
    "request_timeout": _number(0, low_open=True),
    "grace_period": _number(0),
    "thread_pool_size": _integer(1),
    "sse_ping_interval": _number(0),
    "sse_send_timeout": _number(0),
    "alias_poll_interval": _number(0, low_open=True),
    "prompt_cache_ttl": _number(0),
    "sample_rate": _number(0, 1),
    "scoring_queue_size": _integer(1),
    "scoring_workers": _integer(1),
    "scorer_timeout": _number(0, low_open=True),
    "scorer_poll_interval": _number(0, low_open=True),
    "judge_prices": _judge_prices,
    "log_level": _one_of(*LOG_LEVELS),
    "trace_writer": _one_of("process", "thread"),
}


def _out_of_range(name: str, value: Any) -> str | None:
    """Why ``value`` cannot be setting ``name`` (``must be ...``), or None when it can."""
    check = _RANGES.get(name)
    return None if check is None else check(value)
