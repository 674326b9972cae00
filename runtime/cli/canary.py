"""``runtime canary``: start, watch, promote, roll back and list canaries.

The CLI talks to Redis (``--redis-url`` / ``RUNTIME_REDIS_URL``) and the store directly, like every replica,
so it needs no running server. Exit codes: 0 done, 1 failed (a conflict: someone else decided first;
Redis or the store unreachable), 2 bad usage (a malformed Redis or store URL too).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from registry.client import RegistryClient
from registry.errors import InvalidArgument, RegistryError
from runtime.canary.control import CanaryControl
from runtime.canary.model import CanaryDefinition, Mode, new_canary_id, parse_duration
from runtime.canary.operator import decide, show
from runtime.canary.render import render_history, render_report
from runtime.canary.state import CanaryStore
from runtime.cli.common import check_redis_url
from runtime.config import Settings
from runtime.errors import BadRequest, Unavailable
from runtime.store_calls import store_call

__all__ = ["add_parser"]

CLI_REDIS_TIMEOUT = 5.0
_CLEAR = "\x1b[H\x1b[2J"


def _actor(args: argparse.Namespace) -> str:
    if args.actor:
        return str(args.actor)
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env(
        redis_url=args.redis_url, store_url=args.store_url, canary_prefix=args.prefix
    )
    if not settings.redis_url:
        raise BadRequest("canaries need Redis: pass --redis-url or set RUNTIME_REDIS_URL")
    check_redis_url(settings.redis_url)  # as runtime serve and runtime worker: one line, exit 2
    return settings


def _registry(settings: Settings) -> RegistryClient:
    try:
        return RegistryClient(settings.resolved_store_url, settings.resolved_artifact_root)
    except InvalidArgument:
        raise  # a store URL that can never work: a usage error (exit 2), as for every other command
    except RegistryError as exc:
        raise Unavailable(exc.message) from exc


def _run(command: Callable[[argparse.Namespace, CanaryControl], Awaitable[int]], registry: bool) -> Any:
    """Open Redis (and the store when ``registry``) for one command, and close them whatever happens."""

    def run(args: argparse.Namespace) -> int:
        settings = _settings(args)
        client = _registry(settings) if registry else None

        async def main() -> int:
            store = CanaryStore.from_url(settings.redis_url, settings.canary_prefix, CLI_REDIS_TIMEOUT)
            try:
                return await command(args, CanaryControl(store, client))
            finally:
                await store.close()

        try:
            return asyncio.run(main())
        finally:
            if client is not None:
                client.close()

    return run


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


async def _start(args: argparse.Namespace, control: CanaryControl) -> int:
    if not args.champion.startswith("@"):
        raise BadRequest("--champion must name an alias, like @champion: promotion moves it")
    try:
        definition = CanaryDefinition(
            canary_id=new_canary_id(),
            model=args.model,
            champion_alias=args.champion.removeprefix("@"),
            challenger_version=args.challenger,
            weight=args.weight,
            mode=Mode(args.mode),
            sticky_by=args.sticky_by,
            min_requests=args.min_requests,
            max_duration_s=parse_duration(args.max_duration) if args.max_duration else None,
            auto=args.auto,
            guards=tuple(args.guard or ()),
            primary=args.primary,
            alpha=args.alpha,
            started_by=_actor(args),
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise BadRequest(f"invalid {where}: {error['msg']}") from exc
    state = await control.start(definition, args.reason)
    if args.json:
        _print_json(state.summary())
        return 0
    d = state.definition
    print(
        f"started canary {d.canary_id}: {d.model} v{d.challenger_version} against @{d.champion_alias} "
        f"(v{d.champion_version}), {d.mode.value} {d.weight:g}%"
    )
    return 0


async def _status(args: argparse.Namespace, control: CanaryControl) -> int:
    shown = 0
    while True:
        report = await show(control, args.target)
        shown += 1
        if args.json:
            print(json.dumps(report, sort_keys=True), flush=True)
        else:
            prefix = _CLEAR if args.watch and sys.stdout.isatty() else ""
            print(prefix + render_report(report, report["audit"]), flush=True)
        ended = report["canary"]["status"] in ("promoted", "rolled_back") or "redis_state" in report
        if not args.watch or ended or (args.count and shown >= args.count):
            return 0
        if not sys.stdout.isatty() and not args.json:
            print(flush=True)
        await asyncio.sleep(args.interval)


async def _decide(args: argparse.Namespace, control: CanaryControl) -> int:
    state = await decide(control, args.target, args.action, _actor(args), args.reason)
    d, canary_id = state.definition, state.canary_id
    if args.action == "promote":
        moved = f"@{d.champion_alias} now points at {d.model} v{d.challenger_version}"
        print(f"promoted canary {canary_id}: {moved}")
    else:
        print(f"rolled back canary {canary_id}: {d.model} v{d.challenger_version} no longer gets traffic")
    return 0


async def _history(args: argparse.Namespace, control: CanaryControl) -> int:
    registry = control.registry
    assert registry is not None
    try:
        records = await store_call(lambda: registry.store.list_canaries(args.model, args.limit))
    except RegistryError as exc:
        raise Unavailable(exc.message) from exc
    if args.json:
        _print_json([r.model_dump(mode="json") for r in records])
    else:
        print(render_history(records))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--redis-url", help="Redis URL (RUNTIME_REDIS_URL)")
    p.add_argument("--store-url", help="store URL (RUNTIME_STORE_URL)")
    p.add_argument("--prefix", help="Redis key prefix (RUNTIME_CANARY_PREFIX)")


def add_parser(subparsers: Any) -> None:
    group = subparsers.add_parser(
        "canary", help="compare a challenger version with the champion, then decide"
    )
    commands = group.add_subparsers(dest="canary_command", metavar="COMMAND")
    commands.required = True

    p = commands.add_parser("start", help="start routing part of a model's traffic to a challenger version")
    p.add_argument("model", help="registered model name")
    p.add_argument("--challenger", type=int, required=True, help="challenger version number")
    p.add_argument("--champion", default="@champion", help="alias of the champion (moved on promotion)")
    p.add_argument(
        "--weight", type=float, default=10.0, help="percent of traffic (or mirrored, in shadow mode)"
    )
    p.add_argument("--sticky-by", default="user", help="user | session | header:NAME | none")
    p.add_argument("--mode", choices=[m.value for m in Mode], default="split")
    p.add_argument("--min-requests", type=int, default=500, help="per variant, before promotion")
    p.add_argument("--max-duration", help="e.g. 2h, 30m: roll back if undecided by then")
    p.add_argument("--auto", action="store_true", help="promote / roll back on the verdict")
    p.add_argument(
        "--guard", action="append", help="score (or 'latency') that must not get worse; repeatable"
    )
    p.add_argument("--primary", help="metric that must be better or equal to promote (default: first score)")
    p.add_argument("--alpha", type=float, default=0.05, help="false alarm rate of the sequential test")
    p.add_argument("--reason", help="why, for the audit log")
    p.add_argument("--actor", help="who, for the audit log (default user@host)")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=_run(_start, registry=True))

    p = commands.add_parser("status", help="the comparison so far, side by side, with the verdict")
    p.add_argument("target", help="canary id, or model name (its running or latest canary)")
    p.add_argument("--watch", action="store_true", help="refresh until the canary ends")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes")
    p.add_argument("--count", type=int, help="with --watch: stop after this many refreshes")
    p.add_argument("--json", action="store_true", help="JSON (one object per refresh with --watch)")
    _common(p)
    p.set_defaults(func=_run(_status, registry=True))

    for action, text in (
        ("promote", "move the champion alias to the challenger"),
        ("rollback", "stop routing"),
    ):
        p = commands.add_parser(action, help=text)
        p.add_argument("target", help="canary id, or model name (its running canary)")
        p.add_argument("--reason", help="why, for the audit log")
        p.add_argument("--actor", help="who, for the audit log (default user@host)")
        _common(p)
        p.set_defaults(func=_run(_decide, registry=True), action=action)

    p = commands.add_parser("history", help="past and running canaries with their outcomes")
    p.add_argument("model", nargs="?", help="only this model")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=_run(_history, registry=True))
