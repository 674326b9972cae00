"""Canary state in Redis, shared by every replica and every operator; all multi-key changes are Lua scripts.

Keys, all under one prefix (``RUNTIME_CANARY_PREFIX``, so several deployments or tests share a Redis)::

    {p}:active:{model}          id of the canary routing this model now (at most one)
    {p}:canary:{id}             hash: definition (JSON), status, updated_ms, decided_by, reason
    {p}:audit:{id}              list of audit entries (JSON), oldest first
    {p}:stats:{id}:{variant}    hash of counters (see runtime.canary.counters)
    {p}:history                 sorted set of canary ids by start time
    {p}:batch:{batch id}        marks a counter batch as applied, for a day
    {p}:expected:{id}           set of the scores the replicas' scorers report (each replica adds its own
                                when it routes the canary): a promotion waits for them (see report.py)
    {p}:forced:{id}             set of the trace ids (``tr-<32 hex>``) of requests forced to a variant with
                                the debug header, whose scores are not counted (for a day after the last)

Why scripts: starting must check "no canary running for this model" and write four keys as one step; a
decision must change the status only if it is still the one the caller saw (compare-and-set), so that two
operators promoting and rolling back at once get exactly one winner; a counter batch must apply whole and
at most once, even when a replica retries a flush whose reply was lost. Every call is bounded by a timeout
and turns any Redis failure into :class:`~runtime.errors.Unavailable`.

redis-py is imported when a store is made, not with this module: every server imports the canary wiring,
most run without Redis, and the import takes a tenth of a cold start.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from runtime.canary.model import AuditEntry, CanaryDefinition, CanaryState, Status, now_ms
from runtime.errors import Conflict, NotFound, Unavailable

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["CanaryStore", "CounterDelta"]

T = TypeVar("T")

# (int fields, float fields) to add to one variant's counters.
CounterDelta = tuple[Mapping[str, int], Mapping[str, float]]

BATCH_TTL_S = 86_400

_CREATE = """
local current = redis.call('GET', KEYS[1])
if current then
  local status = redis.call('HGET', ARGV[5] .. current, 'status')
  if status == 'running' or status == 'promoting' then return current end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'definition', ARGV[2], 'status', 'running', 'updated_ms', ARGV[3],
           'decided_by', '', 'reason', '')
redis.call('RPUSH', KEYS[3], ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
return false
"""

_TRANSITION = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing'} end
local allowed = false
for s in string.gmatch(ARGV[1], '[^,]+') do
  if s == status then allowed = true end
end
if ARGV[8] ~= '' and redis.call('HGET', KEYS[1], 'updated_ms') ~= ARGV[8] then allowed = false end
if not allowed then
  return {'conflict', status, redis.call('HGET', KEYS[1], 'decided_by') or '',
          redis.call('HGET', KEYS[1], 'reason') or ''}
end
local now = redis.call('TIME')
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'decided_by', ARGV[3], 'reason', ARGV[4],
           'updated_ms', now[1] .. string.format('%03d', math.floor(tonumber(now[2]) / 1000)))
redis.call('RPUSH', KEYS[2], ARGV[5])
if ARGV[6] == '1' and redis.call('GET', KEYS[3]) == ARGV[7] then redis.call('DEL', KEYS[3]) end
return {'ok'}
"""

_ADD_COUNTERS = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
for i = 2, #KEYS do
  local delta = cjson.decode(ARGV[i])
  for field, amount in pairs(delta['i']) do redis.call('HINCRBY', KEYS[i], field, amount) end
  for field, amount in pairs(delta['f']) do redis.call('HINCRBYFLOAT', KEYS[i], field, amount) end
end
return 1
"""


class CanaryStore:
    def __init__(self, client: aioredis.Redis, prefix: str, timeout: float) -> None:
        from redis.exceptions import AuthenticationError, RedisError

        self._failures = (RedisError, OSError, TimeoutError)
        self._refused = AuthenticationError
        self.redis = client
        self.prefix = prefix.rstrip(":")
        self.timeout = timeout
        self._create = client.register_script(_CREATE)
        self._transition = client.register_script(_TRANSITION)
        self._add = client.register_script(_ADD_COUNTERS)

    @classmethod
    def from_url(cls, url: str, prefix: str, timeout: float) -> CanaryStore:
        """No retries inside the client: a caller's bound must hold even when Redis stops answering."""
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        client = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(client, prefix, timeout)

    async def close(self) -> None:
        await self.redis.aclose()

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def _run(self, what: str, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.timeout):
                return await call
        except self._failures as exc:
            if isinstance(exc, self._refused):
                raise Unavailable(f"Redis refused the credentials ({what})", retry_after=1) from exc
            raise Unavailable(f"Redis did not answer ({what}: {type(exc).__name__})", retry_after=1) from exc

    async def ping(self) -> None:
        await self._run("ping", self.redis.ping())

    # -- lifecycle -------------------------------------------------------------------------------------

    async def create(self, definition: CanaryDefinition, entry: AuditEntry) -> CanaryState:
        cid, model = definition.canary_id, definition.model
        running = await self._run(
            "start canary",
            self._create(
                keys=[
                    self.key("active", model),
                    self.key("canary", cid),
                    self.key("audit", cid),
                    self.key("history"),
                ],
                args=[
                    cid,
                    definition.model_dump_json(),
                    entry.at_ms,
                    entry.model_dump_json(),
                    self.key("canary", ""),
                ],
            ),
        )
        if running:
            raise Conflict(f"canary {running} is already running for {model}; promote or roll it back first")
        return CanaryState(definition=definition, status=Status.RUNNING, updated_ms=entry.at_ms)

    async def transition(
        self,
        canary_id: str,
        allowed: tuple[Status, ...],
        to: Status,
        entry: AuditEntry,
        *,
        end: bool,
        since_ms: int | None = None,
    ) -> None:
        """Move the status from one of ``allowed`` to ``to`` and append ``entry``, or raise Conflict; with
        ``since_ms``, only if the status has not changed since then (its ``updated_ms``): the very claim the
        caller saw, not a later one with the same status. ``updated_ms`` is Redis's clock, not the caller's:
        how old a claim is must not depend on whose clock reads it (see :meth:`server_ms`)."""
        state = await self.get(canary_id)
        if state is None:
            raise NotFound(f"canary {canary_id!r} not found")
        # A claim given back (promoting -> running) is no decision: the canary shows none.
        decided_by, decided_reason = ("", "") if to is Status.RUNNING else (entry.actor, entry.reason or "")
        reply = await self._run(
            "change canary status",
            self._transition(
                keys=[
                    self.key("canary", canary_id),
                    self.key("audit", canary_id),
                    self.key("active", state.definition.model),
                ],
                args=[
                    ",".join(s.value for s in allowed),
                    to.value,
                    decided_by,
                    decided_reason,
                    entry.model_dump_json(),
                    "1" if end else "0",
                    canary_id,
                    "" if since_ms is None else str(since_ms),
                ],
            ),
        )
        if reply[0] == "missing":
            raise NotFound(f"canary {canary_id!r} not found")
        if reply[0] == "conflict":
            _, status, by, reason = reply
            detail = f" by {by}" if by else ""
            detail += f" ({reason})" if reason else ""
            raise Conflict(f"canary {canary_id} is already {status}{detail}; nothing was changed")

    async def server_ms(self) -> int:
        """Redis's clock, in milliseconds: what ``updated_ms`` of a status change is written in."""
        seconds, micros = await self._run("read Redis time", self.redis.time())
        return int(seconds) * 1000 + int(micros) // 1000

    async def note(self, canary_id: str, entry: AuditEntry) -> None:
        """Append an audit entry that changes nothing (a refused promotion)."""
        await self._run(
            "add canary audit", self.redis.rpush(self.key("audit", canary_id), entry.model_dump_json())
        )

    # -- reads -----------------------------------------------------------------------------------------

    async def get(self, canary_id: str) -> CanaryState | None:
        raw = await self._run("read canary", self.redis.hgetall(self.key("canary", canary_id)))
        return _state({str(k): str(v) for k, v in raw.items()}) if raw else None

    async def active_id(self, model: str) -> str | None:
        value = await self._run("read active canary", self.redis.get(self.key("active", model)))
        return str(value) if value else None

    async def current(self, model: str) -> CanaryState | None:
        canary_id = await self.active_id(model)
        return await self.get(canary_id) if canary_id else None

    async def find(self, model_or_id: str) -> CanaryState:
        """A canary by id; else the running (or latest) canary of a model."""
        state = await self.get(model_or_id) or await self.current(model_or_id)
        if state is None:
            latest = await self.history(model=model_or_id, limit=1)
            state = latest[0] if latest else None
        if state is None:
            raise NotFound(f"no canary {model_or_id!r} (neither an id nor a model with canaries)")
        return state

    async def history(self, *, model: str | None = None, limit: int = 50) -> list[CanaryState]:
        """Newest first, from Redis (the store keeps the durable copy)."""
        raw = await self._run("read canary history", self.redis.zrevrange(self.key("history"), 0, -1))
        ids = [str(item) for item in raw]
        found: list[CanaryState] = []
        for canary_id in ids:
            state = await self.get(canary_id)
            if state is not None and (model is None or state.definition.model == model):
                found.append(state)
                if len(found) >= limit:
                    break
        return found

    async def audit(self, canary_id: str) -> list[AuditEntry]:
        raw = await self._run("read canary audit", self.redis.lrange(self.key("audit", canary_id), 0, -1))
        return [AuditEntry.model_validate_json(item) for item in raw]

    async def counters(self, canary_id: str, variants: tuple[str, ...]) -> dict[str, dict[str, float]]:
        async with self.redis.pipeline(transaction=True) as pipe:
            for variant in variants:
                pipe.hgetall(self.key("stats", canary_id, variant))
            replies = await self._run("read canary counters", pipe.execute())
        return {v: {k: float(x) for k, x in r.items()} for v, r in zip(variants, replies, strict=True)}

    # -- counters --------------------------------------------------------------------------------------

    async def add_counters(self, batch_id: str, deltas: Mapping[tuple[str, str], CounterDelta]) -> bool:
        """Apply one batch of increments atomically, once; False when this batch was already applied."""
        if not deltas:
            return True
        keys = [self.key("batch", batch_id)]
        args: list[Any] = [BATCH_TTL_S]
        for (canary_id, variant), (ints, floats) in deltas.items():
            keys.append(self.key("stats", canary_id, variant))
            args.append(
                json.dumps(
                    {"i": {k: str(v) for k, v in ints.items()}, "f": {k: repr(v) for k, v in floats.items()}}
                )
            )
        return bool(await self._run("add canary counters", self._add(keys=keys, args=args)))

    async def add_expected(self, canary_id: str, names: Collection[str]) -> None:
        if names:
            await self._run("add expected scores", self.redis.sadd(self.key("expected", canary_id), *names))

    async def expected(self, canary_id: str) -> set[str]:
        raw = await self._run("read expected scores", self.redis.smembers(self.key("expected", canary_id)))
        return {str(name) for name in raw}

    async def mark_forced(self, traces: Mapping[str, Collection[str]]) -> None:
        """Remember the trace ids of forced requests, by canary, so their scores are left out wherever
        they are scored (this server or a ``runtime worker``)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for canary_id, trace_ids in traces.items():
                key = self.key("forced", canary_id)
                pipe.sadd(key, *trace_ids)
                pipe.expire(key, BATCH_TTL_S)
            await self._run("mark forced requests", pipe.execute())

    async def forced(self, canary_id: str, trace_ids: Sequence[str]) -> set[str]:
        """Which of ``trace_ids`` were forced to their variant in this canary."""
        if not trace_ids:
            return set()
        key = self.key("forced", canary_id)
        found = await self._run("read forced requests", self.redis.smismember(key, list(trace_ids)))
        return {trace_id for trace_id, member in zip(trace_ids, found, strict=True) if member}

    async def first_scores(self, canary_id: str, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` (a trace id and a score name) this canary has not counted yet, now marked
        counted: a request's score counts once, however many times it is sent (feedback posted again and
        again on one trace must not outvote the other requests)."""
        if not keys:
            return set()
        key = self.key("scored", canary_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            for member in keys:
                pipe.sadd(key, member)
            pipe.expire(key, BATCH_TTL_S)
            added = await self._run("mark counted scores", pipe.execute())
        return {member for member, new in zip(keys, added, strict=False) if new}


def _state(fields: Mapping[str, str]) -> CanaryState:
    return CanaryState(
        definition=CanaryDefinition.model_validate_json(fields["definition"]),
        status=Status(fields["status"]),
        updated_ms=int(fields.get("updated_ms") or now_ms()),
        decided_by=fields.get("decided_by") or None,
        reason=fields.get("reason") or None,
    )
