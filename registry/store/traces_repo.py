"""Traces and spans: bulk, idempotent writes from the span exporter, and keyset-paginated queries.

The exporter may retry a batch or send a trace's spans in several batches, so writes are idempotent: a trace
row is upserted (the latest write carries the most complete summary), a span is written once and duplicates
are ignored. Pagination is keyset on (start time, trace id), newest first, so pages stay stable while new
traces arrive; the page token is opaque to callers.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from registry.entities import LineageKind, SpanRecord, TraceRecord, TraceStatus, now_ms
from registry.errors import InvalidArgument, NotFound
from registry.store.engine import Database
from registry.store.tables import lineage_edges, spans, traces
from registry.uris import PromptVersionURI, parse_prompt_uri

__all__ = ["TraceStats", "TracesRepo"]

MAX_PAGE = 1000
_MS = 1_000_000


@dataclass(frozen=True)
class TraceStats:
    count: int
    errors: int
    mean_latency_ms: float | None
    max_latency_ms: float | None
    input_tokens: int
    output_tokens: int


def _trace_row(trace: TraceRecord) -> dict[str, Any]:
    return trace.model_dump(mode="json")


def _span_row(span: SpanRecord) -> dict[str, Any]:
    return span.model_dump(mode="json")


def _prompt_edges(traces_: Sequence[TraceRecord]) -> list[dict[str, Any]]:
    """prompt version -> trace edges for the versions a trace says it loaded (aliases are not versions)."""
    now = now_ms()
    edges: dict[tuple[str, str], dict[str, Any]] = {}
    for trace in traces_:
        for uri in trace.prompts:
            try:
                parsed = parse_prompt_uri(uri)
            except InvalidArgument:
                continue
            if isinstance(parsed, PromptVersionURI):
                edges[(str(parsed), trace.trace_id)] = {
                    "src_kind": LineageKind.PROMPT_VERSION.value,
                    "src_id": str(parsed),
                    "dst_kind": LineageKind.TRACE.value,
                    "dst_id": trace.trace_id,
                    "created_time": now,
                }
    return list(edges.values())


def _encode_token(row: TraceRecord) -> str:
    raw = json.dumps([row.start_time_ns, row.trace_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[int, str]:
    try:
        start, trace_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidArgument("invalid page_token") from exc
    if not isinstance(start, int) or not isinstance(trace_id, str):
        raise InvalidArgument("invalid page_token")
    return start, trace_id


class TracesRepo:
    _db: Database

    def log_traces(self, traces_: Sequence[TraceRecord], spans_: Sequence[SpanRecord] = ()) -> None:
        """Write a batch in one transaction; replaying the same batch changes nothing.

        The prompt versions a trace loaded become lineage edges in the same transaction, so "which traces
        used prompts:/support/3" is an indexed lookup rather than a scan of every trace's JSON.
        """
        # Deduplicate within the batch (last wins): PostgreSQL refuses to upsert one row twice per statement.
        trace_rows = list({t.trace_id: _trace_row(t) for t in traces_}.values())
        span_rows = list({(s.trace_id, s.span_id): _span_row(s) for s in spans_}.values())
        if not trace_rows and not span_rows:
            return
        edge_rows = _prompt_edges(traces_)
        columns = [c.name for c in traces.columns if c.name != "trace_id"]
        with self._db.write("log traces") as conn:
            if trace_rows:
                conn.execute(self._db.upsert(traces, ["trace_id"], columns), trace_rows)
            if span_rows:
                conn.execute(self._db.insert_ignore(spans, ["trace_id", "span_id"]), span_rows)
            if edge_rows:
                keys = ["src_kind", "src_id", "dst_kind", "dst_id"]
                conn.execute(self._db.insert_ignore(lineage_edges, keys), edge_rows)

    def get_trace(self, trace_id: str) -> tuple[TraceRecord, list[SpanRecord]]:
        with self._db.read("get trace") as conn:
            row = conn.execute(select(traces).where(traces.c.trace_id == trace_id)).mappings().first()
            if row is None:
                raise NotFound(f"trace {trace_id!r} not found")
            span_rows = conn.execute(
                select(spans).where(spans.c.trace_id == trace_id).order_by(spans.c.start_ns, spans.c.span_id)
            ).mappings()
            return TraceRecord.model_validate(dict(row)), [
                SpanRecord.model_validate(dict(s)) for s in span_rows
            ]

    def search_traces(
        self,
        *,
        model_id: str | None = None,
        name: str | None = None,
        status: TraceStatus | str | None = None,
        session: str | None = None,
        user: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        min_latency_ms: float | None = None,
        limit: int = 100,
        page_token: str | None = None,
        prompt: str | None = None,
    ) -> tuple[list[TraceRecord], str | None]:
        """Newest first; ``since_ms`` is inclusive and ``until_ms`` exclusive on the trace start time.

        ``prompt`` (``prompts:/name/3``) keeps the traces that loaded that prompt version.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE}")
        query = self._filtered(
            select(traces),
            model_id=model_id,
            name=name,
            status=status,
            session=session,
            user=user,
            since_ms=since_ms,
            until_ms=until_ms,
            min_latency_ms=min_latency_ms,
            prompt=prompt,
        )
        if page_token:
            start, trace_id = _decode_token(page_token)
            query = query.where(
                or_(
                    traces.c.start_time_ns < start,
                    and_(traces.c.start_time_ns == start, traces.c.trace_id < trace_id),
                )
            )
        query = query.order_by(traces.c.start_time_ns.desc(), traces.c.trace_id.desc()).limit(limit + 1)
        with self._db.read("search traces") as conn:
            found = [TraceRecord.model_validate(dict(r)) for r in conn.execute(query).mappings()]
        if len(found) > limit:
            return found[:limit], _encode_token(found[limit - 1])
        return found, None

    def trace_stats(
        self, model_id: str | None = None, name: str | None = None, prompt: str | None = None
    ) -> TraceStats:
        """Aggregates for lineage views and summaries, computed in SQL so they scale with the table."""
        columns = select(
            func.count(),
            func.count().filter(traces.c.status != TraceStatus.OK.value),
            func.avg(traces.c.latency_ms),
            func.max(traces.c.latency_ms),
            func.coalesce(func.sum(traces.c.input_tokens), 0),
            func.coalesce(func.sum(traces.c.output_tokens), 0),
        )
        query = self._filtered(
            columns,
            model_id=model_id,
            name=name,
            status=None,
            session=None,
            user=None,
            since_ms=None,
            until_ms=None,
            min_latency_ms=None,
            prompt=prompt,
        )
        with self._db.read("trace stats") as conn:
            count, errors, mean, top, tokens_in, tokens_out = conn.execute(query).one()
        return TraceStats(
            count=count,
            errors=errors,
            mean_latency_ms=float(mean) if mean is not None else None,
            max_latency_ms=float(top) if top is not None else None,
            input_tokens=int(tokens_in),
            output_tokens=int(tokens_out),
        )

    @staticmethod
    def _filtered(
        query: Select[Any],
        *,
        model_id: str | None,
        name: str | None,
        status: TraceStatus | str | None,
        session: str | None,
        user: str | None,
        since_ms: int | None,
        until_ms: int | None,
        min_latency_ms: float | None,
        prompt: str | None = None,
    ) -> Select[Any]:
        conditions: list[ColumnElement[bool]] = []
        if prompt is not None:
            conditions.append(
                traces.c.trace_id.in_(
                    select(lineage_edges.c.dst_id).where(
                        lineage_edges.c.src_kind == LineageKind.PROMPT_VERSION.value,
                        lineage_edges.c.src_id == prompt,
                        lineage_edges.c.dst_kind == LineageKind.TRACE.value,
                    )
                )
            )
        if model_id is not None:
            conditions.append(traces.c.model_id == model_id)
        if name is not None:
            conditions.append(traces.c.model_name == name)
        if status is not None:
            try:
                conditions.append(traces.c.status == TraceStatus(status).value)
            except ValueError as exc:
                raise InvalidArgument(f"invalid trace status {status!r}") from exc
        if session is not None:
            conditions.append(traces.c.session_id == session)
        if user is not None:
            conditions.append(traces.c.user_id == user)
        if since_ms is not None:
            conditions.append(traces.c.start_time_ns >= since_ms * _MS)
        if until_ms is not None:
            conditions.append(traces.c.start_time_ns < until_ms * _MS)
        if min_latency_ms is not None:
            conditions.append(traces.c.latency_ms >= min_latency_ms)
        return query.where(*conditions) if conditions else query
