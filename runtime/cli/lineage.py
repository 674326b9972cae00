"""``runtime lineage URI``: what a model, prompt version or trace is connected to, as a tree.

::

    $ runtime lineage models:/support-bot@champion
    model models:/support-bot/2  (support-bot, m-3f2a..., READY)
    ├── prompts
    │   └── prompts:/support/3  aliases production  "tighter tone"
    ├── traces  42 (1 error)  latency mean 180.2 ms, max 1.20 s  tokens 5120 in / 2048 out
    │   ├── tr-9c1e...  2025-06-01 10:02:11  OK  160.4 ms  120/48
    │   └── ...
    └── scores
        └── relevance  40 (mean 0.82)

``--json`` prints the same view as ``GET /api/lineage``. The store is read directly, so this works with
or without a server running.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from registry import RegistryClient, RegistryError
from registry.lineage import Lineage, ModelRef, PromptRef, ScoreSummary, TraceRef, Traffic, lineage_of
from runtime.config import Settings

__all__ = ["add_parser", "format_lineage"]

Node = tuple[str, list[Any]]  # a label and its children (nodes)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("lineage", help="show what a model, prompt version or trace is linked to")
    p.add_argument("uri", help="models:/..., prompts:/... or a trace id (tr-...)")
    p.add_argument("--recent", type=int, default=5, help="recent traces to list (default 5)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--store-url", help="registry store (env RUNTIME_STORE_URL)")
    p.add_argument("--artifact-root", help="artifact folder (env RUNTIME_ARTIFACT_ROOT)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if not 0 <= args.recent <= 1000:
        print("error: --recent must be from 0 to 1000", file=sys.stderr)
        return 2
    settings = Settings.from_env(store_url=args.store_url, artifact_root=args.artifact_root)
    try:
        with RegistryClient(settings.resolved_store_url, settings.resolved_artifact_root) as client:
            view = lineage_of(client, args.uri, recent=args.recent)
    except RegistryError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(view.model_dump(mode="json"), indent=2) if args.json else format_lineage(view))
    return 0


def format_lineage(view: Lineage) -> str:
    lines = [_title(view)]
    _render(_sections(view), "", lines)
    return "\n".join(lines)


def _title(view: Lineage) -> str:
    if view.kind == "model" and view.model is not None:
        return f"model {view.uri}  ({_model_label(view.model)})"
    if view.kind == "prompt_version" and view.prompts:
        return f"prompt {_prompt_label(view.prompts[0])}"
    if view.trace is not None:
        return f"trace {_trace_label(view.trace)}"
    return view.uri


def _sections(view: Lineage) -> list[Node]:
    sections: list[Node] = []
    if view.kind == "trace":
        model: list[Node] = [(_model_label(view.model), [])] if view.model is not None else []
        sections.append(("model" if model else "model  (none recorded)", model))
    if view.kind != "prompt_version":
        sections.append(_listing("prompts", [(_prompt_label(p), []) for p in view.prompts]))
    if view.kind == "prompt_version":
        sections.append(_listing("models", [(_model_label(m), []) for m in view.models]))
    if view.traffic is not None:
        sections.append(_traffic(view.traffic))
    if view.kind == "model":
        sections.append(_listing("scores", [(_score_label(s), []) for s in view.scores]))
    if view.kind == "trace":
        items: list[Node] = [
            (f"{a.name} = {a.value!r}  ({a.source_type.value})" + _why(a.rationale), [])
            for a in view.assessments
        ]
        sections.append(_listing("assessments", items))
    return sections


def _listing(title: str, items: list[Node]) -> Node:
    return (title if items else f"{title}  (none)", items)


def _render(nodes: list[Node], lead: str, out: list[str]) -> None:
    for i, (label, children) in enumerate(nodes):
        last = i == len(nodes) - 1
        out.append(lead + ("└── " if last else "├── ") + label)
        _render(children, lead + ("    " if last else "│   "), out)


def _model_label(model: ModelRef) -> str:
    if model.missing:
        return f"{model.model_id} (deleted)"
    parts = [model.name or "-", model.model_id or "-"]
    if model.status:
        parts.append(model.status)
    versions = f"  registered as {', '.join(model.versions)}" if model.versions else ""
    return ", ".join(parts) + versions


def _prompt_label(prompt: PromptRef) -> str:
    if prompt.missing:
        return f"{prompt.uri}  (not in the registry)"
    label = prompt.uri
    if prompt.aliases:
        label += f"  aliases {', '.join(prompt.aliases)}"
    if prompt.commit_message:
        label += f'  "{prompt.commit_message}"'
    return label


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _trace_label(trace: TraceRef) -> str:
    tokens = "-"
    if trace.input_tokens is not None or trace.output_tokens is not None:
        tokens = f"{trace.input_tokens or 0}/{trace.output_tokens or 0}"
    when = _when(trace.start_time_ms)
    return f"{trace.trace_id}  {when}  {trace.status.value}  {_ms(trace.latency_ms)}  {tokens}"


def _traffic(traffic: Traffic) -> Node:
    errors = f" ({traffic.errors} error{'s' if traffic.errors != 1 else ''})" if traffic.errors else ""
    title = f"traces  {traffic.count}{errors}"
    if traffic.count:
        title += (
            f"  latency mean {_ms(traffic.mean_latency_ms)}, max {_ms(traffic.max_latency_ms)}"
            f"  tokens {traffic.input_tokens} in / {traffic.output_tokens} out"
        )
    items: list[Node] = [(_trace_label(t), []) for t in traffic.recent]
    if traffic.count > len(traffic.recent) and traffic.recent:
        items.append((f"... {traffic.count - len(traffic.recent)} more", []))
    return (title, items)


def _score_label(score: ScoreSummary) -> str:
    parts = [f"{score.name}  {score.count}"]
    if score.mean is not None:
        parts.append(f"mean {score.mean:.2f}")
    if score.labels:
        parts.append(", ".join(f"{k}: {v}" for k, v in sorted(score.labels.items())))
    if score.errors:
        parts.append(f"{score.errors} failed")
    return "  ".join(parts)


def _why(rationale: str | None) -> str:
    if not rationale:
        return ""
    flat = " ".join(rationale.split())
    return f"  {flat[:77]}..." if len(flat) > 80 else f"  {flat}"
