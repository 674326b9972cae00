"""``runtime worker``: score sampled requests from the Redis Stream that ``runtime serve`` replicas fill.

Run as many as needed, on any machine that reaches Redis and the store: they share one consumer group.
A worker loads the same scorers file as the servers (``--scorers``; the built-ins are always there),
writes assessments to the store, exports its ``gen_ai.evaluation.result`` spans there too (and over OTLP
when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set), and feeds every score to the canary counters in Redis.
SIGTERM or Ctrl-C: stop taking jobs, finish those in hand, exit 0.

Started before Redis answers, it waits for it as a running worker does when Redis goes away ("Redis error,
retrying in 1 s", then on): a worker belongs to a fleet that comes up in any order (Celery's workers retry
the broker at start-up too). A store that does not answer does not stop it either: jobs stay pending until
they can be stored. What waiting cannot fix stops it with one ``error:`` line: a malformed Redis or store
URL (exit 2), credentials Redis refuses or a stream key of another type (exit 1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from registry import InvalidArgument
from runtime.cli.common import check_redis_url, configure_logging
from runtime.config import Settings

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from opentelemetry.sdk.trace import TracerProvider

    from runtime.observability.lazy_store import LazyStore

__all__ = ["add_parser"]

log = logging.getLogger("runtime.worker")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("worker", help="score sampled requests from the Redis scoring stream")
    p.add_argument("--scorers", help="Python file of @scorer functions (RUNTIME_SCORERS)")
    p.add_argument("--store-url", help="store URL (RUNTIME_STORE_URL)")
    p.add_argument("--redis-url", help="Redis URL (RUNTIME_REDIS_URL)")
    p.add_argument("--stream", dest="scoring_stream", help="stream name (RUNTIME_SCORING_STREAM)")
    p.add_argument("--group", default="scorers", help="consumer group (default scorers)")
    p.add_argument("--consumer", help="consumer name (default <host>-<pid>)")
    p.add_argument(
        "--concurrency", type=int, dest="scoring_workers", help="jobs at once (RUNTIME_SCORING_WORKERS)"
    )
    p.add_argument(
        "--claim-idle",
        type=float,
        default=120.0,
        help="seconds before another worker's unacknowledged job is taken over (default 120)",
    )
    p.add_argument("--max-deliveries", type=int, default=5, help="deliveries before a job is dead-lettered")
    p.add_argument("--log-level", help="log level (RUNTIME_LOG_LEVEL)")
    p.set_defaults(func=run)


def _settings(args: argparse.Namespace) -> Settings:
    keys = ("scorers", "store_url", "redis_url", "scoring_stream", "scoring_workers", "log_level")
    return Settings.from_env(**{k: getattr(args, k) for k in keys if getattr(args, k, None) is not None})


def _tracing(settings: Settings) -> tuple[TracerProvider, LazyStore]:
    """Where the worker's evaluation spans go: the store (into the scored trace) and OTLP if configured."""
    from opentelemetry.sdk.trace import TracerProvider

    from runtime.observability.lazy_store import LazyStore
    from runtime.observability.providers import build_resource, otlp_processor
    from runtime.observability.store_export import StoreSpanProcessor

    store = LazyStore(settings.resolved_store_url)
    provider = TracerProvider(resource=build_resource(), shutdown_on_exit=False)
    provider.add_span_processor(StoreSpanProcessor(store, schedule_delay=0.5))
    otlp = otlp_processor(os.environ)
    if otlp is not None:
        provider.add_span_processor(otlp)
    return provider, store


async def _redis_answers(client: aioredis.Redis, stop: asyncio.Event) -> bool:
    """Wait until Redis answers a PING, retrying every second with a warning, as ``StreamWorker.run`` does;
    False when told to stop first. Credentials Redis refuses are no outage: that raises."""
    from redis.exceptions import AuthenticationError, RedisError

    while not stop.is_set():
        try:
            await client.ping()
        except AuthenticationError:
            raise
        except (RedisError, OSError) as exc:
            log.warning("Redis error, retrying in 1 s: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
        else:
            return True
    return False


def run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    configure_logging(settings.log_level)
    if not settings.redis_url:
        print("error: runtime worker needs a Redis URL (--redis-url or RUNTIME_REDIS_URL)", file=sys.stderr)
        return 2
    return asyncio.run(_serve(settings, args))


async def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import redis.asyncio as aioredis
    from redis.exceptions import AuthenticationError, RedisError

    from runtime.canary.scores import score_feed
    from runtime.evaluation.catalog import ScorerCatalog
    from runtime.evaluation.online import build_engine
    from runtime.evaluation.stream_worker import StreamWorker, default_consumer_name
    from runtime.model_source import registry_client

    try:
        catalog = ScorerCatalog.from_file(settings.scorers or None)
    except Exception as exc:
        print(f"error: cannot load scorers: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    try:
        check_redis_url(settings.redis_url)
    except InvalidArgument as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    client = registry_client(settings)  # a malformed store URL raises; one that does not answer is waited for
    probe = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=5)
    provider, store = _tracing(settings) if settings.tracing else (None, None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    consumer = args.consumer or default_consumer_name()
    try:
        try:
            answered = await _redis_answers(probe, stop)
        finally:
            await probe.aclose()
        if not answered:
            log.info("worker %s stopped before Redis answered", consumer)
            return 0
        # Scores feed the canary counters in Redis too: with the stream, workers are where scores appear.
        async with score_feed(settings.redis_url, settings.canary_prefix, f"worker:{consumer}") as to_canary:
            engine = build_engine(
                settings,
                catalog,
                client,
                tracer=provider.get_tracer("runtime.evaluation") if provider is not None else None,
                hooks=[to_canary],
            )
            worker = StreamWorker(
                engine,
                settings.redis_url,
                settings.scoring_stream,
                group=args.group,
                consumer=consumer,
                concurrency=settings.scoring_workers,
                claim_idle=args.claim_idle,
                max_deliveries=args.max_deliveries,
            )
            await worker.run(stop, drain_timeout=settings.grace_period)
    except AuthenticationError as exc:
        print(f"error: Redis refused the credentials in the Redis URL: {exc}", file=sys.stderr)
        return 1
    except RedisError as exc:  # only what its own retry loop does not cover: setting up the consumer group
        print(f"error: Redis: {exc}", file=sys.stderr)
        return 1
    finally:
        if provider is not None:
            await asyncio.to_thread(provider.shutdown)
        if store is not None:
            store.close()
        client.close()
    log.info("worker %s stopped after %d jobs", consumer, worker.processed)
    return 0
