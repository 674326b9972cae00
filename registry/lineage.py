"""Lineage views: what a model, a prompt version or a trace is connected to, in one read-only answer.

::

    models:/support-bot/2   -> its prompt versions, its traffic (count, errors, latency, tokens, recent
                               traces) and its scores (assessments grouped by name)
    prompts:/support/3      -> the models built with it, the traces that loaded it (same traffic figures)
    tr-<32 hex>             -> the model that served it, the prompt versions it loaded, its assessments

The HTTP API and the CLI render the same :class:`Lineage`. Links are read from where they are recorded: prompt
version -> model and prompt version -> trace edges, and the model columns of traces; a link to something
deleted since shows up with what is known of it rather than failing the whole view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from registry.entities import Assessment, LineageKind, LoggedModel, PromptVersion, TraceRecord, TraceStatus
from registry.errors import InvalidArgument, NotFound
from registry.uris import is_model_uri

if TYPE_CHECKING:
    from registry.client import RegistryClient

__all__ = [
    "Lineage",
    "ModelRef",
    "PromptRef",
    "ScoreSummary",
    "TraceRef",
    "Traffic",
    "lineage_of",
]

_TRACE_PREFIX = "tr-"


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PromptRef(_View):
    uri: str
    name: str | None = None
    version: int | None = None
    aliases: list[str] = []
    commit_message: str | None = None
    missing: bool = False


class ModelRef(_View):
    model_id: str | None
    name: str | None
    status: str | None = None
    versions: list[str] = []  # registered as, e.g. "support-bot/2"
    missing: bool = False


class TraceRef(_View):
    trace_id: str
    start_time_ms: int
    status: TraceStatus
    latency_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    model_name: str | None
    model_version: int | None


class Traffic(_View):
    count: int
    errors: int
    mean_latency_ms: float | None
    max_latency_ms: float | None
    input_tokens: int
    output_tokens: int
    recent: list[TraceRef]


class ScoreSummary(_View):
    """Assessments of one name: numeric and boolean values average into ``mean``, text ones count by label."""

    name: str
    count: int
    errors: int
    mean: float | None
    labels: dict[str, int]


class Lineage(_View):
    kind: Literal["model", "prompt_version", "trace"]
    uri: str
    model: ModelRef | None = None
    prompts: list[PromptRef] = []
    models: list[ModelRef] = []
    traffic: Traffic | None = None
    scores: list[ScoreSummary] = []
    trace: TraceRef | None = None
    assessments: list[Assessment] = []


def lineage_of(client: RegistryClient, subject: str, *, recent: int = 10) -> Lineage:
    """The view of ``subject``: a ``models:/`` URI, a ``prompts:/`` URI or a trace id (``tr-...``)."""
    subject = subject.strip()
    if is_model_uri(subject) or subject.startswith("m-"):
        return _model_lineage(client, subject if is_model_uri(subject) else f"models:/{subject}", recent)
    if subject.startswith("prompts:/"):
        return _prompt_lineage(client, client.load_prompt(subject), recent)
    if subject.startswith(_TRACE_PREFIX):
        return _trace_lineage(client, subject)
    raise InvalidArgument(
        f"cannot show lineage of {subject!r}: give a models:/ or prompts:/ URI or a trace id"
    )


def _model_lineage(client: RegistryClient, uri: str, recent: int) -> Lineage:
    resolved = client.resolve(uri)
    model = resolved.model
    edges = client.get_lineage(LineageKind.MODEL, model.model_id, "upstream")
    uris = [e.src_id for e in edges if e.src_kind == LineageKind.PROMPT_VERSION]
    return Lineage(
        kind="model",
        uri=resolved.version.uri if resolved.version else model.uri,
        model=_model_ref(client, model.model_id, model),
        prompts=[_prompt_ref(client, u) for u in _unique([*model.prompts, *uris])],
        traffic=_traffic(client, recent, model_id=model.model_id),
        scores=_scores(client.search_assessments(model_id=model.model_id, limit=10_000)),
    )


def _prompt_lineage(client: RegistryClient, version: PromptVersion, recent: int) -> Lineage:
    edges = client.get_lineage(LineageKind.PROMPT_VERSION, version.uri, "downstream")
    model_ids = _unique([e.dst_id for e in edges if e.dst_kind == LineageKind.MODEL])
    return Lineage(
        kind="prompt_version",
        uri=version.uri,
        prompts=[_prompt_ref(client, version.uri, version)],
        models=[_model_ref(client, model_id) for model_id in model_ids],
        traffic=_traffic(client, recent, prompt=version.uri),
    )


def _trace_lineage(client: RegistryClient, trace_id: str) -> Lineage:
    trace, _ = client.get_trace(trace_id)
    edges = client.get_lineage(LineageKind.TRACE, trace_id, "upstream")
    uris = [e.src_id for e in edges if e.src_kind == LineageKind.PROMPT_VERSION]
    model = None
    if trace.model_id is not None:
        model = _model_ref(client, trace.model_id)
    elif trace.model_name is not None:
        model = ModelRef(model_id=None, name=trace.model_name)
    return Lineage(
        kind="trace",
        uri=trace_id,
        model=model,
        prompts=[_prompt_ref(client, u) for u in _unique([*trace.prompts, *uris])],
        trace=_trace_ref(trace),
        assessments=client.search_assessments(trace_id=trace_id),
    )


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _prompt_ref(client: RegistryClient, uri: str, version: PromptVersion | None = None) -> PromptRef:
    try:
        version = version or client.load_prompt(uri)
    except (NotFound, InvalidArgument):
        return PromptRef(uri=uri, missing=True)
    return PromptRef(
        uri=version.uri,
        name=version.name,
        version=version.version,
        aliases=version.aliases,
        commit_message=version.commit_message,
    )


def _model_ref(client: RegistryClient, model_id: str, model: LoggedModel | None = None) -> ModelRef:
    try:
        model = model or client.get_logged_model(model_id)
    except NotFound:
        return ModelRef(model_id=model_id, name=None, missing=True)
    versions = client.search_model_versions(model_id=model_id)
    return ModelRef(
        model_id=model.model_id,
        name=model.name,
        status=model.status.value,
        versions=[f"{v.name}/{v.version}" for v in versions],
    )


def _trace_ref(trace: TraceRecord) -> TraceRef:
    return TraceRef(
        trace_id=trace.trace_id,
        start_time_ms=trace.start_time_ms,
        status=trace.status,
        latency_ms=trace.latency_ms,
        input_tokens=trace.input_tokens,
        output_tokens=trace.output_tokens,
        model_name=trace.model_name,
        model_version=trace.model_version,
    )


def _traffic(
    client: RegistryClient, recent: int, model_id: str | None = None, prompt: str | None = None
) -> Traffic:
    stats = client.trace_stats(model_id=model_id, prompt=prompt)
    latest: list[TraceRecord] = []
    if recent > 0:
        latest, _ = client.search_traces(model_id=model_id, prompt=prompt, limit=min(recent, 1000))
    return Traffic(
        count=stats.count,
        errors=stats.errors,
        mean_latency_ms=stats.mean_latency_ms,
        max_latency_ms=stats.max_latency_ms,
        input_tokens=stats.input_tokens,
        output_tokens=stats.output_tokens,
        recent=[_trace_ref(t) for t in latest],
    )


def _scores(assessments: list[Assessment]) -> list[ScoreSummary]:
    grouped: dict[str, list[Assessment]] = {}
    for assessment in assessments:
        grouped.setdefault(assessment.name, []).append(assessment)
    return [_score(name, grouped[name]) for name in sorted(grouped)]


def _score(name: str, group: list[Assessment]) -> ScoreSummary:
    numbers = [float(a.value) for a in group if isinstance(a.value, bool | int | float)]
    labels: dict[str, int] = {}
    for a in group:
        if isinstance(a.value, str):
            labels[a.value] = labels.get(a.value, 0) + 1
    return ScoreSummary(
        name=name,
        count=len(group),
        errors=sum(1 for a in group if a.error is not None),
        mean=sum(numbers) / len(numbers) if numbers else None,
        labels=labels,
    )
