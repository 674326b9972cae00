"""``runtime evaluate attach | detach | attached | summary | run``: scorers on served models, and datasets.

Scorers are named as the catalog knows them: a built-in (``no_pii``), a built-in with arguments as JSON
(``'latency_slo:{"max_ms": 500}'``), or a scorer of the ``--scorers`` file. ``attach`` writes to the store
that the servers of the model read (see :mod:`runtime.evaluation.attachments`); servers and workers must
load the same ``--scorers`` file for names that are not built-ins.

``run`` executes the agent in this process through the runtime's own serving path (AgentService with
tracing), so each row leaves a trace linked to the model (endpoint ``evaluate``), then scores every row with
the same engine as live traffic and prints a summary; ``--compare`` runs a second model on the same rows
and adds a paired t-test per score.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import uuid
from typing import TYPE_CHECKING, Any

from runtime.config import Settings
from runtime.errors import BadRequest

if TYPE_CHECKING:
    from registry.client import RegistryClient
    from runtime.evaluation.catalog import ScorerCatalog
    from runtime.evaluation.job import ScorerRef, ScoringJob
    from runtime.evaluation.offline import Comparison, ModelRun, Row

__all__ = ["add_parser", "parse_scorer"]


def add_parser(subparsers: Any) -> None:
    group = subparsers.add_parser("evaluate", help="attach scorers to served models, summarize, run datasets")
    commands = group.add_subparsers(dest="evaluate_command", metavar="COMMAND")
    commands.required = True

    attach = commands.add_parser("attach", help="score a served model's traffic with a scorer")
    _common(attach)
    attach.add_argument("uri", help="models:/ URI (attaches to the version it names now)")
    attach.add_argument("--scorer", required=True, help='NAME or NAME:{"json": "args"}')
    attach.add_argument(
        "--rate", type=float, default=1.0, help="share of requests to score, 0..1 (default 1)"
    )
    attach.add_argument(
        "--filter", default="", help="only requests matching e.g. status=OK,endpoint=/v1/responses"
    )
    attach.set_defaults(func=_run(_attach))

    detach = commands.add_parser("detach", help="stop scoring a model's traffic with a scorer")
    _common(detach)
    detach.add_argument("uri")
    detach.add_argument("--scorer", required=True)
    detach.set_defaults(func=_run(_detach))

    attached = commands.add_parser("attached", help="the scorers attached to a model")
    _common(attached)
    attached.add_argument("uri")
    attached.set_defaults(func=_run(_attached))

    summary = commands.add_parser("summary", help="pass rate / mean with 95%% CI per scorer for a model")
    _common(summary)
    summary.add_argument("uri")
    summary.add_argument("--since", help="only assessments since: epoch ms, ISO 8601 or a duration ago (1h)")
    summary.add_argument("--name", help="only this score name")
    summary.set_defaults(func=_run(_summary))

    run = commands.add_parser("run", help="run a model over a JSONL dataset and score every row")
    _common(run)
    run.add_argument("uri", help="model to evaluate: models:/ URI, model folder or agent file")
    run.add_argument("--data", required=True, help="JSONL rows with 'inputs' and optional 'expectations'")
    run.add_argument(
        "--scorer", action="append", default=[], help="scorer (repeatable); default: --scorers file"
    )
    run.add_argument("--compare", help="a second model run on the same rows, compared with a paired t-test")
    run.add_argument("--concurrency", type=int, default=4, help="rows run and scored at once (default 4)")
    run.set_defaults(func=_run(_evaluate))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store-url", help="store URL (RUNTIME_STORE_URL)")
    parser.add_argument("--scorers", help="Python file of @scorer functions (RUNTIME_SCORERS)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def parse_scorer(text: str) -> tuple[str, dict[str, Any]]:
    """``NAME`` or ``NAME:{json object}`` -> (name, arguments)."""
    name, sep, raw = text.partition(":")
    if not sep:
        return name.strip(), {}
    try:
        args = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"arguments of scorer {name!r} are not JSON: {exc}") from exc
    if not isinstance(args, dict):
        raise BadRequest(f"arguments of scorer {name!r} must be a JSON object")
    return name.strip(), args


def _run(command: Any) -> Any:
    def wrapper(args: argparse.Namespace) -> int:
        from registry.client import RegistryClient
        from registry.errors import RegistryError

        settings = Settings.from_env(store_url=args.store_url, scorers=args.scorers)
        try:
            with RegistryClient(settings.resolved_store_url, settings.resolved_artifact_root) as client:
                code: int = command(args, settings, client)
                return code
        except RegistryError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return exc.exit_code

    return wrapper


def _catalog(settings: Settings) -> ScorerCatalog:
    from runtime.evaluation.catalog import ScorerCatalog

    try:
        return ScorerCatalog.from_file(settings.scorers or None)
    except Exception as exc:
        raise BadRequest(f"cannot load scorers: {type(exc).__name__}: {exc}") from exc


def _refs(texts: list[str], catalog: ScorerCatalog) -> list[ScorerRef]:
    """Scorer references, each checked against the catalog (unknown names, bad arguments) up front."""
    from runtime.evaluation.job import ScorerRef

    refs = [ScorerRef(name=n, args=a) for n, a in map(parse_scorer, texts)]
    if not refs:
        refs = [ScorerRef(name=s.name) for s in catalog.user_scorers()]
    if not refs:
        raise BadRequest("name at least one --scorer, or give a --scorers file")
    for ref in refs:
        try:
            catalog.resolve(ref)
        except (LookupError, TypeError, ValueError) as exc:
            raise BadRequest(str(exc)) from exc
    return refs


# -- attach / detach / attached ---------------------------------------------------------------------------


def _attach(args: argparse.Namespace, settings: Settings, client: RegistryClient) -> int:
    from runtime.evaluation.attachments import attach
    from runtime.evaluation.sampling import Attachment, CallFilter

    name, scorer_args = parse_scorer(args.scorer)
    catalog = _catalog(settings)
    if catalog.knows(name) or scorer_args:
        _refs([args.scorer], catalog)  # a built-in's arguments, checked before anything is stored
    else:
        print(
            f"note: {name!r} is not a built-in: servers and workers must load it with --scorers",
            file=sys.stderr,
        )
    try:
        attachment = Attachment(name, args.rate, CallFilter.parse(args.filter), scorer_args)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    model = attach(client, args.uri, attachment)
    print(f"attached {name} to {model.model_id} ({model.name}) at rate {args.rate:g}")
    if catalog.in_file(name):
        runs = "the built-in with these arguments" if scorer_args else "the file's scorer at this rate"
        print(
            f"note: on servers whose --scorers file defines {name!r}, this attachment replaces it for "
            f"this model's traffic ({runs}); detach gives it back",
            file=sys.stderr,
        )
    return 0


def _detach(args: argparse.Namespace, settings: Settings, client: RegistryClient) -> int:
    from runtime.evaluation.attachments import attach
    from runtime.evaluation.sampling import Attachment

    model = attach(client, args.uri, Attachment(args.scorer, 0.0))
    print(f"detached {args.scorer} from {model.model_id} ({model.name})")
    return 0


def _attached(args: argparse.Namespace, settings: Settings, client: RegistryClient) -> int:
    from runtime.evaluation.attachments import model_for_uri, parse_attachments

    found = parse_attachments(model_for_uri(client, args.uri).tags)
    if args.json:
        print(
            json.dumps(
                [{"scorer": a.name, "rate": a.rate, "filter": str(a.filter), "args": a.args} for a in found]
            )
        )
        return 0
    for a in found:
        print(f"{a.name}  rate {a.rate:g}" + (f"  filter {a.filter}" if a.filter.conditions else ""))
    return 0


# -- summary ----------------------------------------------------------------------------------------------


def _summary(args: argparse.Namespace, settings: Settings, client: RegistryClient) -> int:
    from runtime.evaluation.attachments import model_for_uri
    from runtime.evaluation.summary import format_summary, summarize
    from runtime.observability.query import parse_time_ms

    model = model_for_uri(client, args.uri)
    since = parse_time_ms(args.since, "since") if args.since else None
    found = client.search_assessments(
        model_id=model.model_id, name=args.name, since_ms=since, limit=1_000_000
    )
    rows = summarize(found)
    if args.json:
        print(json.dumps({"model_id": model.model_id, "summary": [r.to_json() for r in rows]}))
    elif not rows:
        print(f"no assessments for {model.model_id} ({model.name}) yet")
    else:
        print(f"{model.name} ({model.model_id}): {len(found)} assessments\n")
        print(format_summary(rows))
    return 0


# -- run --------------------------------------------------------------------------------------------------


def _evaluate(args: argparse.Namespace, settings: Settings, client: RegistryClient) -> int:
    from runtime.evaluation.offline import compare_runs, format_comparison, read_dataset
    from runtime.evaluation.summary import format_summary, summarize

    catalog = _catalog(settings)
    refs = _refs(args.scorer, catalog)
    try:
        rows = read_dataset(args.data)
    except (OSError, ValueError) as exc:
        raise BadRequest(str(exc)) from exc
    run_id = uuid.uuid4().hex[:12]
    uris = [args.uri] + ([args.compare] if args.compare else [])
    runs = [
        asyncio.run(_one_model(uri, label, rows, refs, settings, catalog, client, args.concurrency, run_id))
        for uri, label in zip(uris, "AB", strict=False)
    ]
    comparison = compare_runs(runs[0], runs[1]) if len(runs) == 2 else []
    if args.json:
        print(json.dumps(_run_json(run_id, uris, runs, comparison)))
        return 0
    for uri, run in zip(uris, runs, strict=True):
        failed = sum(e is not None for e in run.errors)
        print(f"\n{run.label}: {uri}  ({len(rows)} rows, {failed} agent errors, run {run_id})\n")
        print(format_summary(summarize(run.assessments())))
    if comparison:
        print("\nB vs A, paired over the same rows:\n")
        print(format_comparison(comparison, "A", "B"))
    return 0


def _run_json(run_id: str, uris: list[str], runs: list[ModelRun], comparison: list[Comparison]) -> Any:
    from runtime.evaluation.summary import summarize

    models = [
        {
            "uri": uri,
            "rows": len(run.jobs),
            "agent_errors": sum(e is not None for e in run.errors),
            "trace_ids": [job.trace_id if job else None for job in run.jobs],
            "summary": [row.to_json() for row in summarize(run.assessments())],
        }
        for uri, run in zip(uris, runs, strict=True)
    ]
    compared = [
        {"name": c.name, "mean_a": c.mean_a, "mean_b": c.mean_b, **dataclasses.asdict(c.test)}
        for c in comparison
    ]
    return {"run_id": run_id, "models": models, "comparison": compared}


async def _one_model(
    uri: str,
    label: str,
    rows: list[Row],
    refs: list[ScorerRef],
    settings: Settings,
    catalog: ScorerCatalog,
    client: RegistryClient,
    concurrency: int,
    run_id: str,
) -> ModelRun:
    from runtime.evaluation.job import ScoringJob
    from runtime.evaluation.offline import run_model, score_run
    from runtime.evaluation.online import build_engine
    from runtime.loading import load_target
    from runtime.observability.providers import build_observability
    from runtime.serving import AgentService, AgentSlot

    loaded = await asyncio.to_thread(load_target, uri, settings)
    observability = build_observability(settings, os.environ)
    service = AgentService(
        AgentSlot(loaded), timeout=settings.request_timeout, telemetry=observability.telemetry
    )

    async def predict(row: Row) -> ScoringJob:
        request = _request(row.inputs)
        call = service.new_call(f"eval-{run_id}-{label}{row.index}", "evaluate", False, request)
        await service.invoke(request, call)
        job = ScoringJob.from_call(call, refs)
        return job.model_copy(
            update={"inputs": row.inputs, "expectations": row.expectations, "run_id": run_id}
        )

    provider = observability.tracer_provider
    try:
        run = await run_model(label, rows, predict, concurrency=concurrency)
        await asyncio.to_thread(observability.flush)
        engine = build_engine(
            settings,
            catalog,
            client,
            tracer=provider.get_tracer("runtime.evaluation") if provider is not None else None,
            trace_wait=5.0 if provider is not None else 0.0,
        )
        try:
            await score_run(run, engine, concurrency=concurrency)
        finally:
            await engine.aclose()
    finally:
        await asyncio.to_thread(observability.shutdown)
    return run


def _request(inputs: Any) -> Any:
    from runtime.protocol.agent import ResponsesAgentRequest

    if isinstance(inputs, str):
        body: dict[str, Any] = {"input": [{"role": "user", "content": inputs}]}
    elif isinstance(inputs, list):
        body = {"input": inputs}
    elif isinstance(inputs, dict) and "input" in inputs:
        body = dict(inputs)
        if isinstance(body["input"], str):
            body["input"] = [{"role": "user", "content": body["input"]}]
    else:
        body = {"input": [{"role": "user", "content": json.dumps(inputs)}]}
    return ResponsesAgentRequest.model_validate(body)
