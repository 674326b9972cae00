"""The composition root: ``create_app`` builds every resource, the lifespan owns and closes them."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import anyio.to_thread
from opentelemetry import trace as otel_trace
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from registry.client import RegistryClient
from registry.errors import RegistryError
from runtime.agents import builtin
from runtime.background import running
from runtime.canary_wiring import attach_canary, canary_running
from runtime.cli.common import configure_logging
from runtime.config import Settings
from runtime.errors import MethodNotAllowed, NotFound, RuntimeErrorBase
from runtime.evaluation.online import OnlineEvaluation, build_online_evaluation
from runtime.front import AgentHandler, Front
from runtime.ids import hex_id
from runtime.loading import load_target
from runtime.model_source import AliasFollower, is_moving_uri, registry_client, store_readiness
from runtime.observability.autotrace import instrument_openai, uninstrument_openai
from runtime.observability.llm_observer import LLMSpanObserver
from runtime.observability.prometheus import CallbackMetric
from runtime.observability.providers import Observability, build_observability
from runtime.prompts.service import PromptService
from runtime.protocol.call import CompositeTelemetry, Telemetry
from runtime.routes import (
    assessments_api,
    canary_api,
    health,
    invocations,
    lineage_api,
    metrics,
    models_api,
    prompts_api,
    responses,
    traces,
)
from runtime.routes.errors import error_response
from runtime.serving import AgentService, AgentSlot, LoadedAgent
from runtime.state import RuntimeState
from runtime.streaming.eventsource import EXIT_SEEN_WITHIN, server_exit

__all__ = ["app_from_env", "create_app"]

log = logging.getLogger("runtime.app")


async def _render(request: Request, exc: Exception) -> Response:
    rid = request.scope.get("state", {}).get("request_id")
    if isinstance(exc, HTTPException):
        exc = (
            NotFound(f"no route {request.url.path}")
            if exc.status_code == 404
            else MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
        )
    return error_response(exc, rid if isinstance(rid, str) else None)


def create_app(
    settings: Settings | None = None, agent: LoadedAgent | None = None, *, server_process: bool = False
) -> Front:
    """Build the ASGI app. ``agent`` (already loaded) skips loading ``settings.model``. ``server_process``:
    the app is the process's (``runtime serve``, a uvicorn worker), which may end itself at shutdown."""
    settings = settings or Settings.from_env()
    executor = ThreadPoolExecutor(max_workers=settings.thread_pool_size, thread_name_prefix=AGENT_THREADS)
    if agent is None:
        agent = load_target(settings.model, settings, executor)
    else:
        agent.runner._executor = executor  # the runner uses the app's pool from now on
    slot = AgentSlot(agent)
    observability = build_observability(settings, os.environ)
    registry = registry_client(settings)
    prompts = PromptService(settings, registry)
    evaluation = online_evaluation(settings, registry, observability)
    telemetry: Telemetry = observability.telemetry
    if evaluation.board.static or settings.model.startswith("models:/"):  # else nothing can be attached
        telemetry = CompositeTelemetry(observability.telemetry, evaluation.tap)
    service = AgentService(slot, timeout=settings.request_timeout, telemetry=telemetry)
    state = RuntimeState(
        settings=settings,
        service=service,
        resources={
            "registry": registry,
            "observability": observability,
            "evaluation": evaluation,
            "prompts": prompts,
        },
    )
    canary = attach_canary(state, slot, registry, executor, evaluation.hooks, evaluation.board.names)

    state.checks["prompt_notifications"] = prompts.readiness
    store_check = store_readiness(registry)
    if store_check is not None:
        state.checks["store"] = store_check

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with follow_alias(settings, slot, registry, executor), observed(settings, observability):
            # Everything built so far (modules, the agent, pydantic schemas) lives as long as the process:
            # move it out of the collector's reach, so collections triggered by per-request garbage stay
            # cheap instead of rescanning the whole heap (a measurable share of the hot path otherwise).
            gc.collect()
            gc.freeze()
            try:
                # Scores drain while the store is still open; load_prompt reads through this app's registry.
                async with (
                    canary_running(canary),
                    evaluation.running(),
                    prompts.running(),
                    running(stop_calls_before_grace_ends(service, settings.grace_period), "grace-watch"),
                ):
                    yield
            finally:
                await close_agent(slot.current)
                executor.shutdown(wait=False, cancel_futures=True)
                registry.close()
        if server_process:
            exit_past_stuck_agents()

    handlers: dict[str, AgentHandler] = {
        "/invocations": invocations.invocations,
        "/v1/responses": responses.create_response,
        "/responses": responses.create_response,
    }
    routes = [
        # The front serves POST on these itself; the routes make Starlette answer 405 to other methods.
        *(
            Route(path, _ServedByFront(handler, state), methods=["POST"])
            for path, handler in handlers.items()
        ),
        Route("/health", health.health, methods=["GET"]),
        Route("/ping", health.health, methods=["GET"]),
        Route("/ready", health.ready, methods=["GET"]),
        Route("/version", health.version, methods=["GET"]),
        Route("/v1/models", health.models, methods=["GET"]),
        Route("/metrics", metrics.metrics, methods=["GET"]),
        Route("/api/traces", traces.list_traces, methods=["GET"]),
        Route("/api/traces/{trace_id}", traces.get_trace, methods=["GET"]),
        *assessments_api.routes,
        *models_api.routes,
        *prompts_api.routes,
        *lineage_api.routes,
        *canary_api.routes,
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            RuntimeErrorBase: _render,
            RegistryError: _render,
            Exception: _render,
            404: _render,
            405: _render,
        },
    )
    app.state.runtime = state
    # Admin keys are serving keys too: an operator with one can read as well as write.
    return Front(
        app,
        state,
        handlers,
        api_keys=settings.api_keys + settings.admin_keys if settings.api_keys else (),
        errors=observability.metrics.http_errors if observability.metrics is not None else None,
        known_paths=[r.path for r in routes if isinstance(r, Route)],
    )


class _ServedByFront:
    """The Starlette route of an agent path. The front hands POST to the handler before Starlette sees it;
    this serves it only if the Starlette app is called without its front."""

    def __init__(self, handler: AgentHandler, state: RuntimeState) -> None:
        self.handler = handler
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = scope.setdefault("state", {}).get("request_id") or hex_id(8)
        await self.handler(self.state, scope, receive, send, rid)


def online_evaluation(
    settings: Settings, registry: RegistryClient, observability: Observability
) -> OnlineEvaluation:
    """Scoring of served traffic; its spans go through the app's tracer, its counters to ``/metrics``."""
    provider = observability.tracer_provider
    evaluation = build_online_evaluation(
        settings,
        registry,
        tracer=provider.get_tracer("runtime.evaluation") if provider is not None else None,
        tracing=provider is not None,
    )
    if observability.metrics is not None:
        for spec in evaluation.counters.specs():
            observability.metrics.registry.register(
                CallbackMetric(spec.name, spec.documentation, spec.kind, spec.labelnames, spec.read)
            )
    return evaluation


@contextlib.asynccontextmanager
async def observed(settings: Settings, observability: Observability) -> AsyncIterator[None]:
    """The process-global side of observability, set here and nowhere else.

    The first app in a process becomes the global tracer provider (so spans of OpenTelemetry-instrumented
    libraries inside agents join the request's trace), unless the user installed one; the openai SDK is
    patched and the built-in LLM agent observed while the app runs (the observer only records spans for
    requests of the app that serves them). On shutdown every queued span is written before the process
    may exit.
    """
    provider = observability.tracer_provider
    if provider is not None and isinstance(otel_trace.get_tracer_provider(), otel_trace.ProxyTracerProvider):
        otel_trace.set_tracer_provider(provider)
    autotraced = provider is not None and settings.autotrace and instrument_openai()
    if provider is not None and builtin.llm_call_observer is None:
        builtin.llm_call_observer = LLMSpanObserver()
    await anyio.to_thread.run_sync(observability.open_store)
    shared = observability.metrics.shared if observability.metrics is not None else None
    # The last publish comes after the shutdown: the trace writer counts the metrics of the last requests.
    publishing = shared.publishing(observability.settle_metrics) if shared is not None else None
    async with publishing if publishing is not None else contextlib.nullcontext():
        try:
            yield
        finally:
            if autotraced:
                uninstrument_openai()
            await anyio.to_thread.run_sync(observability.shutdown)


@contextlib.asynccontextmanager
async def follow_alias(
    settings: Settings, slot: AgentSlot, client: RegistryClient, executor: ThreadPoolExecutor
) -> AsyncIterator[None]:
    """While serving an alias or ``latest`` URI, keep the slot on the version it points at."""
    if not is_moving_uri(settings.model):
        yield
        return
    follower = AliasFollower(settings.model, slot, client, executor, settings.alias_poll_interval)
    async with running(follower.run(), "alias-follower"):
        yield


async def stop_calls_before_grace_ends(service: AgentService, grace: float) -> None:
    """After SIGTERM the server lets running requests finish for ``grace`` seconds, then cancels what is
    left: a plain-text 500 for a call, a stream cut without its end. Just before that (a tenth of the grace,
    at most a second, before it ends, counting from when the signal can have come at the earliest), the
    service ends those calls itself: a 503 ``shutting_down`` with ``Retry-After``, or that error event
    closing the stream, and traces saying so."""
    await server_exit()
    await asyncio.sleep(max(0.0, grace - EXIT_SEEN_WITHIN - min(1.0, grace / 10)))
    stopped = service.stop_calls()
    if stopped:
        log.warning(
            "grace period over: %d call(s) still running were ended (503 shutting_down, or an error event "
            "for a stream that had started)",
            stopped,
        )


async def close_agent(agent: LoadedAgent) -> None:
    """Let an agent release what it holds (the built-in LLM agent's connection pool) while its loop runs."""
    close = getattr(agent.runner.agent, "aclose", None)
    if close is None:
        return
    try:
        result = close()
        if asyncio.iscoroutine(result):
            await result
    except Exception:
        log.exception("closing agent %s failed", agent.info.name)


def app_from_env() -> Front:
    """Factory for ``uvicorn --factory`` and multi-worker serving: every worker builds its own app, in a
    process whose logging nobody configured yet: set up here as ``runtime serve`` does (RUNTIME_LOG_LEVEL)."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return create_app(settings, server_process=True)


AGENT_THREADS = "agent"  # the name prefix of the threads sync agents run in
_STUCK_EXIT_AFTER = 2.0  # seconds


def exit_past_stuck_agents() -> None:
    """After the shutdown, end the process even if a sync agent is still running in a thread.

    Every request was answered by then (past the grace period, with 503 ``shutting_down``) and every trace
    written, but Python joins the pool's threads at exit: a ``predict`` blocked in ``time.sleep`` or a hung
    socket would keep the process alive, and Kubernetes would wait for its SIGKILL. If such a thread is
    still busy once the shutdown is done, a watchdog ends the process with status 0 a moment later (the
    time for the server's last lines), unless it has exited by itself.
    """
    busy = [t for t in threading.enumerate() if t.name.startswith(AGENT_THREADS + "_") and t.is_alive()]
    for thread in busy:
        thread.join(0.05)  # idle pool threads leave as soon as they see the shutdown
    stuck = [t for t in busy if t.is_alive()]
    if not stuck:
        return
    log.warning(
        "%d agent call(s) still running in threads after the shutdown: the process exits without them",
        len(stuck),
    )

    def watchdog() -> None:
        time.sleep(_STUCK_EXIT_AFTER)
        logging.shutdown()
        os._exit(0)

    threading.Thread(target=watchdog, name="exit-watchdog", daemon=True).start()
