"""``runtime traces list | show | tail``: read the traces in the store.

Reads the store directly (``--store-url``, else ``RUNTIME_STORE_URL``, else the embedded SQLite file under
``RUNTIME_HOME``), so it works against a shared PostgreSQL as well as beside a local server, with or
without a server running. ``tail`` polls: traces are written when their request ends, so a long stream
that started earlier can appear after shorter, newer ones; it looks back over ``--window`` seconds and
prints each trace once.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from registry.entities import SpanRecord, TraceRecord
from registry.errors import RegistryError
from runtime.config import Settings
from runtime.observability.query import normalize_trace_id, search_filters
from runtime.observability.tree import span_tree

if TYPE_CHECKING:
    from registry.store import SqlStore

__all__ = ["add_parser", "format_trace", "format_traces"]

Command = Callable[[argparse.Namespace, "SqlStore"], int]


def add_parser(subparsers: Any) -> None:
    group = subparsers.add_parser("traces", help="list, show and follow stored traces")
    commands = group.add_subparsers(dest="traces_command", metavar="COMMAND")
    commands.required = True

    listing = commands.add_parser("list", help="traces, newest first")
    _filters(listing)
    listing.add_argument("--limit", type=int, default=20, help="how many (default 20, at most 1000)")
    listing.add_argument("--page-token", help="continue after a previous page")
    listing.set_defaults(func=_command(_list))

    show = commands.add_parser("show", help="one trace as a span tree with timings and tokens")
    show.add_argument("trace_id", help="tr-<32 hex> (or the bare OpenTelemetry hex id)")
    _common(show)
    show.set_defaults(func=_command(_show))

    tail = commands.add_parser("tail", help="follow new traces as they are stored")
    _filters(tail)
    tail.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default 1)")
    tail.add_argument(
        "--window",
        type=float,
        default=600.0,
        help="seconds each poll looks back for traces stored late (default 600); the first poll looks back "
        "to --since when given",
    )
    tail.add_argument("--max", type=int, dest="max_traces", help="stop after printing this many traces")
    tail.set_defaults(func=_command(_tail))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store-url", help="store URL (RUNTIME_STORE_URL)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _filters(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--model-id", help="LoggedModel id (m-...)")
    parser.add_argument("--name", help="model name")
    parser.add_argument("--status", help="OK, ERROR, CANCELLED or TIMEOUT")
    parser.add_argument("--session", help="conversation id")
    parser.add_argument("--user", help="user id")
    parser.add_argument(
        "--prompt",
        help="traces that used a prompt version: prompts:/name/3, prompts:/name@alias, prompts:/name/latest",
    )
    parser.add_argument("--since", help="start at or after: epoch ms, ISO 8601 or a duration ago (15m)")
    parser.add_argument("--until", help="start before: epoch ms, ISO 8601 or a duration ago")
    parser.add_argument("--min-latency-ms", type=float, help="at least this slow")


def _command(run: Command) -> Callable[[argparse.Namespace], int]:
    def wrapper(args: argparse.Namespace) -> int:
        from registry.store import SqlStore

        url = args.store_url or Settings.from_env().resolved_store_url
        try:
            with SqlStore(url) as store:
                return run(args, store)
        except RegistryError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return exc.exit_code

    return wrapper


# -- list -------------------------------------------------------------------------------------------------


def _list(args: argparse.Namespace, store: SqlStore) -> int:
    found, token = store.search_traces(**search_filters(vars(args), default_limit=20))
    if args.json:
        print(json.dumps({"traces": [t.model_dump(mode="json") for t in found], "next_page_token": token}))
        return 0
    print(format_traces(found))
    if token:
        print(f"\nmore: --page-token {token}")
    return 0


def _ms(value: float | None) -> str:
    """A duration given in milliseconds, with its unit: ms below a second, s above."""
    if value is None:
        return "-"
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def _tokens(trace: TraceRecord) -> str:
    if trace.input_tokens is None and trace.output_tokens is None:
        return "-"
    mark = "~" if trace.tokens_estimated else ""
    return f"{mark}{trace.input_tokens or 0}/{trace.output_tokens or 0}"


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _clip(text: str | None, width: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def format_traces(traces: Iterable[TraceRecord]) -> str:
    header = ("TRACE", "STARTED", "MODEL", "ENDPOINT", "STATUS", "LATENCY", "TTFT", "TOKENS", "REQUEST")
    rows = [header]
    for t in traces:
        model = f"{t.model_name or '-'}" + (f"/{t.model_version}" if t.model_version is not None else "")
        rows.append(
            (
                t.trace_id,
                _when(t.start_time_ns),
                model,
                t.endpoint or "-",
                t.status.value,
                _ms(t.latency_ms),
                _ms(t.ttft_ms),
                _tokens(t),
                _clip(t.request_preview, 40),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)), row[-1]]).rstrip()
        for row in rows
    )


# -- show -------------------------------------------------------------------------------------------------


def _show(args: argparse.Namespace, store: SqlStore) -> int:
    trace_id = normalize_trace_id(args.trace_id)
    if trace_id is None:
        print(f"error: {args.trace_id!r} is not a trace id (tr-<32 hex>)", file=sys.stderr)
        return 2
    trace, spans = store.get_trace(trace_id)
    if args.json:
        print(json.dumps({"trace": trace.model_dump(mode="json"), "spans": span_tree(spans)}))
        return 0
    print(format_trace(trace, spans))
    return 0


def format_trace(trace: TraceRecord, spans: list[SpanRecord]) -> str:
    """A header with the request's facts, then the span tree with durations, offsets and tokens."""
    model = trace.model_name or "-"
    if trace.model_version is not None:
        model += f" v{trace.model_version}"
    if trace.model_id:
        model += f" ({trace.model_id})"
    lines = [
        f"trace    {trace.trace_id}   started {_when(trace.start_time_ns)}",
        f"model    {model}   endpoint {trace.endpoint or '-'}",
        f"status   {trace.status.value}   latency {_ms(trace.latency_ms)}   "
        f"ttft {_ms(trace.ttft_ms)}   tokens {_tokens(trace)}"
        + ("  (estimated)" if trace.tokens_estimated else ""),
    ]
    if trace.session_id or trace.user_id:
        lines.append(f"session  {trace.session_id or '-'}   user {trace.user_id or '-'}")
    if trace.request_preview:
        lines.append(f"request  {_clip(trace.request_preview, 100)}")
    if trace.response_preview:
        lines.append(f"response {_clip(trace.response_preview, 100)}")
    lines.append("")
    for root in span_tree(spans):
        _render_node(root, trace.start_time_ns, "", "", lines)
    return "\n".join(lines)


def _span_line(node: dict[str, Any], trace_start: int) -> str:
    attrs = node.get("attributes") or {}
    parts = [node["name"], f"[{node['span_type']}]", _ms(node["duration_ms"])]
    parts.append(f"at +{_ms((node['start_ns'] - trace_start) / 1e6)}")
    tokens_in, tokens_out = attrs.get("gen_ai.usage.input_tokens"), attrs.get("gen_ai.usage.output_tokens")
    if tokens_in is not None or tokens_out is not None:
        parts.append(f"tokens {tokens_in or 0}/{tokens_out or 0}")
    ttft = attrs.get("gen_ai.response.time_to_first_chunk", attrs.get("gen_ai.server.time_to_first_token"))
    if isinstance(ttft, int | float):
        parts.append(f"ttft {_ms(ttft * 1000)}")
    if node["status_code"] == "ERROR":
        parts.append(f"ERROR {_clip(node.get('status_message'), 80)}".rstrip())
    return "  ".join(parts)


def _render_node(node: dict[str, Any], start: int, lead: str, child_lead: str, out: list[str]) -> None:
    out.append(lead + _span_line(node, start))
    children = node["children"]
    for i, child in enumerate(children):
        last = i == len(children) - 1
        _render_node(
            child,
            start,
            child_lead + ("└── " if last else "├── "),
            child_lead + ("    " if last else "│   "),
            out,
        )


# -- tail -------------------------------------------------------------------------------------------------


def _tail(args: argparse.Namespace, store: SqlStore) -> int:
    """Print the traces since ``--since`` (else the last ``--window`` seconds), then each new one."""
    seen: dict[str, int] = {}
    printed = 0
    asked: int | None = search_filters(vars(args), default_limit=1000).get("since_ms")
    first = True
    while args.max_traces is None or printed < args.max_traces:
        now_ms = time.time_ns() // 1_000_000
        since = now_ms - int(args.window * 1000)
        if asked is not None:  # the first look goes back to --since; then only the window is looked at again
            since = asked if first else max(since, asked)
        first = False
        fresh = [t for t in _recent(store, args, since) if t.trace_id not in seen]
        for trace in sorted(fresh, key=lambda t: (t.start_time_ns, t.trace_id)):
            seen[trace.trace_id] = trace.start_time_ms
            print(json.dumps(trace.model_dump(mode="json")) if args.json else _tail_line(trace), flush=True)
            printed += 1
            if args.max_traces is not None and printed >= args.max_traces:
                return 0
        for trace_id in [k for k, start in seen.items() if start < since]:
            del seen[trace_id]
        time.sleep(args.interval)
    return 0


def _tail_line(t: TraceRecord) -> str:
    model = f"{t.model_name or '-'}" + (f"/{t.model_version}" if t.model_version is not None else "")
    return (
        f"{_when(t.start_time_ns)}  {t.trace_id}  {model:<16} {t.endpoint or '-':<14} {t.status.value:<9} "
        f"{_ms(t.latency_ms):>10}  {_tokens(t):>9}  {_clip(t.request_preview, 40)}"
    ).rstrip()


def _recent(store: SqlStore, args: argparse.Namespace, since_ms: int) -> list[TraceRecord]:
    filters = search_filters(vars(args), default_limit=1000)
    filters["since_ms"] = since_ms
    found: list[TraceRecord] = []
    token: str | None = None
    while True:
        page, token = store.search_traces(**filters, page_token=token)
        found.extend(page)
        if token is None or len(found) >= 10_000:
            return found
