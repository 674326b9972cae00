"""Traces and spans: bulk, idempotent writes from the span exporter, and keyset-paginated queries.

The exporter may retry a batch or send a trace's spans in several batches, so writes are idempotent: a trace
row is upserted (the latest write carries the most complete summary), a span is written once and duplicates
are ignored. Pagination is keyset on (start time, trace id), newest first, so pages stay stable while new
traces arrive; the page token is opaque to callers.

Writes are on the serving path's budget (the span exporter runs beside every request), so they skip what
costs most per row: pydantic's JSON-mode dump and SQLAlchemy's per-value ``json.dumps`` of the JSON columns.
:meth:`TracesRepo.log_trace_rows` takes rows whose JSON columns are already JSON text (the exporter builds
them with orjson straight from span attributes); :meth:`TracesRepo.log_traces` turns records into such rows
by reading their fields directly. Both bind that text as it is (cast to JSONB on PostgreSQL), so what is
stored reads back exactly as before.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy import Connection, Select, Table, Text, and_, bindparam, cast, func, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement

from registry.entities import LineageKind, SpanRecord, TraceRecord, TraceStatus, now_ms
from registry.errors import InvalidArgument, NotFound
from registry.store.engine import Database
from registry.store.paging import decode_token, encode_token
from registry.store.prompts_repo import alias_version
from registry.store.tables import lineage_edges, spans, traces
from registry.uris import PromptAliasURI, PromptVersionURI, parse_prompt_uri

__all__ = [
    "ROOT_COLUMN_ATTRIBUTES",
    "SPAN_JSON_COLUMNS",
    "TRACE_JSON_COLUMNS",
    "TraceStats",
    "TracesRepo",
    "json_text",
    "root_span_record",
]

MAX_PAGE = 1000
_TOKEN_KIND = "traces"
_MS = 1_000_000
TRACE_JSON_COLUMNS = ("attributes", "prompts", "root_span")
SPAN_JSON_COLUMNS = ("attributes", "events")
_ROOT_SPAN = "root_span"  # not a TraceRecord field: read back as the trace's root span (see get_trace)
# Attributes of a request's root span that are columns of its trace row (column -> attribute): a root span
# kept in the row that says ``column_attributes`` left them out, and they are read back from the row.
ROOT_COLUMN_ATTRIBUTES = {
    "request_preview": "runtime.request.preview",
    "response_preview": "runtime.response.preview",
}
_TRACE_COLUMNS = tuple(c.name for c in traces.columns)
_TRACE_UPDATES = [name for name in _TRACE_COLUMNS if name != "trace_id"]
_RECORD_COLUMNS = [c for c in traces.columns if c.name != _ROOT_SPAN]
_SPAN_COLUMNS = tuple(c.name for c in spans.columns)


@dataclass(frozen=True)
class TraceStats:
    count: int
    errors: int
    mean_latency_ms: float | None
    max_latency_ms: float | None
    input_tokens: int
    output_tokens: int


def _model_json(value: Any) -> Any:
    if isinstance(value, BaseModel):  # span events inside a SpanRecord
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_text(value: Any) -> str:
    """A JSON column's value as JSON text: orjson, or the stdlib for what orjson refuses (big ints)."""
    try:
        return orjson.dumps(value, default=_model_json).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value, default=_model_json)


def _trace_row(trace: TraceRecord) -> dict[str, Any]:
    """The row of a record, equal to ``model_dump(mode="json")`` but without pydantic's per-value walk."""
    row = {name: getattr(trace, name, None) for name in _TRACE_COLUMNS}
    row["status"] = TraceStatus(trace.status).value
    for name in TRACE_JSON_COLUMNS:
        if row[name] is not None:
            row[name] = json_text(row[name])
    return row


def _span_row(span: SpanRecord) -> dict[str, Any]:
    row = {name: getattr(span, name) for name in _SPAN_COLUMNS}
    for name in SPAN_JSON_COLUMNS:
        row[name] = json_text(row[name])
    return row


def _decoded(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str) else value  # drivers that hand JSON back as text


def root_span_record(root: dict[str, Any], trace: Mapping[str, Any]) -> SpanRecord:
    """The root span kept in a trace row. It may leave out what the row holds already: its start and end
    (the trace's), its parent (none, unless it names a caller's span) and, when it says
    ``inherit_attributes``, the attributes in the row's ``attributes`` column (its own win) and, when it
    says ``column_attributes``, those of :data:`ROOT_COLUMN_ATTRIBUTES` the row has: the span writer keeps
    each value once, as the row is most of what it writes per request."""
    values = {
        "parent_span_id": None,
        "start_ns": trace["start_time_ns"],
        "end_ns": trace["end_time_ns"],
        **root,
        "trace_id": trace["trace_id"],
    }
    if values.pop("inherit_attributes", False):
        inherited = _decoded(trace.get("attributes")) or {}
        values["attributes"] = {**inherited, **(root.get("attributes") or {})}
    if values.pop("column_attributes", False):
        attributes = values["attributes"] = dict(values.get("attributes") or {})
        for column, key in ROOT_COLUMN_ATTRIBUTES.items():
            if trace.get(column) is not None:
                attributes.setdefault(key, trace[column])
    return SpanRecord.model_validate(values)


def _prompts_of(rows: Iterable[Mapping[str, Any]]) -> Iterable[tuple[str, Iterable[str]]]:
    """(trace id, prompt URIs) of trace rows, decoding the JSON only where there is something in it."""
    for row in rows:
        prompts = row["prompts"]
        if prompts and prompts != "[]":
            yield row["trace_id"], orjson.loads(prompts)


def _prompt_edges(loaded: Iterable[tuple[str, Iterable[str]]]) -> list[dict[str, Any]]:
    """prompt version -> trace edges for the versions a trace says it loaded (aliases are not versions)."""
    now = now_ms()
    edges: dict[tuple[str, str], dict[str, Any]] = {}
    for trace_id, uris in loaded:
        for uri in uris:
            try:
                parsed = parse_prompt_uri(uri)
            except InvalidArgument:
                continue
            if isinstance(parsed, PromptVersionURI):
                edges[(str(parsed), trace_id)] = {
                    "src_kind": LineageKind.PROMPT_VERSION.value,
                    "src_id": str(parsed),
                    "dst_kind": LineageKind.TRACE.value,
                    "dst_id": trace_id,
                    "created_time": now,
                }
    return list(edges.values())


def _with_json_text(stmt: Insert, names: Sequence[str], postgres: bool) -> Insert:
    """``stmt`` binding the JSON columns ``names`` as the JSON text the rows carry, not re-encoding it."""
    values: dict[str, Any] = {}
    for name in names:
        param = bindparam(name, type_=Text())
        values[name] = cast(param, JSONB) if postgres else param
    return stmt.values(values)


@dataclass(frozen=True)
class _Prepared:
    """An insert compiled once per dialect; ``positions`` orders a row's values for positional drivers."""

    sql: str
    positions: tuple[str, ...] | None

    def execute(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """One ``executemany`` on the driver: no per-row bind processing (the rows hold driver values)."""
        order = self.positions
        if order is None:
            params: list[Any] = list(rows)
        else:
            values = operator.itemgetter(*order)  # a row's values in order, in one C call
            params = [values(row) for row in rows] if len(order) > 1 else [(row[order[0]],) for row in rows]
        conn.exec_driver_sql(self.sql, params)  # a list of rows: executemany


_PREPARED: dict[tuple[str, str, str, bool], _Prepared] = {}


def _prepared(db: Database, table: Table, replace: bool = False) -> _Prepared:
    """The bulk insert of ``table`` for ``db``'s dialect: insert-or-ignore (the first row of a key wins),
    or for trace rows with ``replace`` an upsert (see :meth:`TracesRepo.log_trace_rows`).

    Compiled with SQLAlchemy (so quoting, casts and ``ON CONFLICT`` stay its business) and executed as
    plain SQL: per row, SQLAlchemy's executemany spends more time building parameters than the driver
    spends inserting.
    """
    dialect = db.engine.dialect
    key = (dialect.name, str(dialect.driver), table.name, replace)
    found = _PREPARED.get(key)
    if found is None:
        if table is traces:
            write = (
                db.upsert(traces, ["trace_id"], _TRACE_UPDATES)
                if replace
                else db.insert_ignore(traces, ["trace_id"])
            )
            stmt = _with_json_text(write, TRACE_JSON_COLUMNS, db.is_postgres)
        else:
            stmt = _with_json_text(
                db.insert_ignore(spans, ["trace_id", "span_id"]), SPAN_JSON_COLUMNS, db.is_postgres
            )
        compiled = stmt.compile(dialect=dialect, column_keys=[c.name for c in table.columns])
        positions = tuple(compiled.positiontup or ()) if compiled.positional else None
        found = _PREPARED[key] = _Prepared(compiled.string, positions)
    return found


def _encode_token(row: TraceRecord) -> str:
    return encode_token(_TOKEN_KIND, (row.start_time_ns, row.trace_id))


class TracesRepo:
    _db: Database

    def log_traces(self, traces_: Sequence[TraceRecord], spans_: Sequence[SpanRecord] = ()) -> None:
        """Write a batch in one transaction; replaying the same batch changes nothing, and a trace written
        again with other values is updated (the exporter's path, :meth:`log_trace_rows`, never updates).

        The prompt versions a trace loaded become lineage edges in the same transaction, so "which traces
        used prompts:/support/3" is an indexed lookup rather than a scan of every trace's JSON.
        """
        self.log_trace_rows([_trace_row(t) for t in traces_], [_span_row(s) for s in spans_], replace=True)

    def log_trace_rows(
        self,
        trace_rows: Sequence[Mapping[str, Any]],
        span_rows: Sequence[Mapping[str, Any]] = (),
        *,
        replace: bool = False,
    ) -> None:
        """:meth:`log_traces` for rows built by the caller: the span exporter's fast path.

        A row maps every column of its table to a value of the column's type, except the JSON columns
        (:data:`TRACE_JSON_COLUMNS`, :data:`SPAN_JSON_COLUMNS`), which hold JSON text (:func:`json_text`).
        A trace row's ``root_span`` may hold its root span as a span row without ``trace_id`` (JSON text),
        in place of a spans row: :meth:`get_trace` returns it among the spans.
        Nothing is validated beyond what the database checks: the caller vouches for the values.

        A trace row, once written, is not replaced (unless ``replace``): a request that joined a caller's
        trace (``traceparent``) whose row exists already adds its spans to it, its root among them, without
        replacing the first request's record, whether the caller sent several requests in one trace or named
        another's trace id. Replaying a batch changes nothing either way.
        """
        # Deduplicate within the batch as the table does (PostgreSQL refuses one key twice per statement).
        if replace:
            trace_rows = list({t["trace_id"]: t for t in trace_rows}.values())
        else:
            first: dict[str, Mapping[str, Any]] = {}
            for row in trace_rows:
                first.setdefault(row["trace_id"], row)
            trace_rows = list(first.values())
        span_rows = list({(s["trace_id"], s["span_id"]): s for s in span_rows}.values())
        if not trace_rows and not span_rows:
            return
        edge_rows = _prompt_edges(_prompts_of(trace_rows))
        with self._db.write("log traces") as conn:
            if trace_rows:
                _prepared(self._db, traces, replace).execute(conn, trace_rows)
            if span_rows:
                _prepared(self._db, spans).execute(conn, span_rows)
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
            found = [SpanRecord.model_validate(dict(s)) for s in span_rows]
        fields = dict(row)
        root = _decoded(fields.pop(_ROOT_SPAN, None))
        if isinstance(root, dict) and all(s.span_id != root.get("span_id") for s in found):
            found.append(root_span_record(root, fields))
            found.sort(key=lambda s: (s.start_ns, s.span_id))
        return TraceRecord.model_validate(fields), found

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

        ``prompt`` keeps the traces that loaded a prompt version: ``prompts:/name/3``, or the version
        ``prompts:/name@alias`` / ``prompts:/name/latest`` points at now (see :meth:`_prompt_version_uri`).
        """
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidArgument(f"limit must be between 1 and {MAX_PAGE}")
        if prompt is not None:
            prompt = self._prompt_version_uri(prompt)
        query = self._filtered(
            select(*_RECORD_COLUMNS),
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
            start, trace_id = decode_token(_TOKEN_KIND, page_token)
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
        if prompt is not None:
            prompt = self._prompt_version_uri(prompt)
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

    def _prompt_version_uri(self, prompt: str) -> str:
        """The version URI a ``prompt`` filter means: traces record versions, never aliases.

        An alias (``@latest`` and ``/latest`` too) is resolved now, so it selects the traces of the version
        it points at, not those served while it pointed elsewhere. Anything but a prompt URI is an
        ``InvalidArgument`` naming the accepted forms, rather than a filter that silently matches nothing.
        """
        try:
            parsed = parse_prompt_uri(prompt)
        except InvalidArgument as exc:
            raise InvalidArgument(f"prompt filter: {exc.message}") from exc
        if isinstance(parsed, PromptAliasURI):
            with self._db.read("resolve prompt alias") as conn:
                parsed = PromptVersionURI(parsed.name, alias_version(conn, parsed.name, parsed.alias))
        return str(parsed)

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
