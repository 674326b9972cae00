"""HTTP/1.1 load generator, closed or open loop: one keep-alive connection per concurrent worker.

Closed loop (the default): each worker sends a request, reads the whole response (parsing SSE frames as they
arrive), records it and sends the next, from the start of the warm-up until the end of the measured window.
Only requests that finish inside the window are measured. At saturation a closed loop's latency is its
concurrency over the server's throughput: it says how fast the server is, not how long a request waits at
a given load.

Open loop (``rate`` set): requests arrive at ``rate`` per second, at Poisson-distributed times (a fixed
``seed``, so every server gets the same schedule), whether or not the server keeps up, as vLLM's
``--request-rate`` and wrk2 load a server; ``concurrency`` is then the pool of connections, and a request
that finds them all busy waits for one, and that wait is part of its latency. A request's latency is
timed from the moment the generator dispatched it, and how late the generator's timer dispatched it
against its schedule is reported apart (``dispatch_late_ms``: the event loop's timers fire on a
millisecond tick). Requests dispatched inside the window are measured, whenever they finish: no survivor
bias towards short requests at the window's end.

Either way the run is bounded twice: by ``max_requests`` and by a hard deadline (warm-up + duration + grace)
after which the requests still in flight are cancelled and counted as unfinished.

Run it in its own process (``python -m bench.loadgen SPEC_JSON``) so it does not share an event loop with
the server it measures; it prints one JSON result.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.http1 import HttpError, ResponseHead, build_request, read_body, read_head
from bench.sse import SseEvent, SseParser
from bench.stats import summarize_ms

__all__ = ["LoadSpec", "main", "run_load"]

_CONNECT_RETRY_S = 0.05
_EXCHANGE_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, HttpError, ValueError)
_TERMINAL_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete"})


@dataclass(frozen=True)
class LoadSpec:
    host: str
    port: int
    path: str
    body: str
    concurrency: int
    duration: float
    warmup: float = 1.0
    max_requests: int | None = None
    stream: bool = False
    delta_interval: float | None = None  # set: record how late each delta came after the previous one
    grace: float = 10.0
    connect_timeout: float = 5.0
    rate: float | None = None  # set: open loop, requests/s offered (see the module's doc)
    seed: int = 1

    @classmethod
    def from_json(cls, text: str) -> LoadSpec:
        return cls(**json.loads(text))

    def to_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass
class _Recorder:
    window_start: float
    window_end: float
    by_dispatch: bool = False  # open loop: a request is in the window by when it was dispatched
    issued: int = 0
    answered: int = 0  # requests that ended, in or out of the window, with an answer or an error
    ended_in_window: int = 0  # answered with a 200 inside the window, whenever sent: the rate served
    latencies: list[float] = field(default_factory=list)
    ttfe: list[float] = field(default_factory=list)
    gap_extra: list[float] = field(default_factory=list)
    events: int = 0
    deltas: int = 0
    body_bytes: int = 0
    last_end: float = 0.0
    dispatch_late: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def covers(self, moment: float) -> bool:
        return self.window_start <= moment <= self.window_end


def _is_delta(event: SseEvent) -> bool:
    if event.event is not None:
        return event.event.endswith("output_text.delta")
    return b"output_text.delta" in event.data


def _is_terminal(event: SseEvent) -> bool:
    if event.event is not None and event.event in _TERMINAL_EVENTS:
        return True
    return event.data == b"[DONE]"


class _StreamTally:
    """What one streamed response looked like: first-event time, counts, gaps between deltas."""

    __slots__ = ("deltas", "events", "first", "gaps", "interval", "last", "last_delta", "parser", "size")

    def __init__(self, interval: float | None) -> None:
        self.parser = SseParser()
        self.interval = interval
        self.first: float | None = None
        self.last: SseEvent | None = None
        self.last_delta: float | None = None
        self.gaps: list[float] = []
        self.events = 0
        self.deltas = 0
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        events = self.parser.feed(chunk)
        if not events:
            return
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.events += len(events)
        self.last = events[-1]
        for event in events:
            if _is_delta(event):
                self.deltas += 1
                if self.interval is not None:
                    if self.last_delta is not None:
                        self.gaps.append(max(0.0, now - self.last_delta - self.interval))
                    self.last_delta = now


class _BodyTally:
    __slots__ = ("size",)

    def __init__(self) -> None:
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)


async def _exchange(
    spec: LoadSpec,
    request: bytes,
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    rec: _Recorder,
    origin: float | None = None,
) -> bool:
    """One request/response on an open connection, timed from ``origin`` (default: now); returns whether
    the connection can be reused."""
    reader, writer = conn
    started = time.perf_counter() if origin is None else origin
    writer.write(request)
    head: ResponseHead = await read_head(reader)
    tally = _StreamTally(spec.delta_interval) if spec.stream and head.status == 200 else _BodyTally()
    sink: Callable[[bytes], None] = tally.feed
    await read_body(reader, head, sink)
    ended = time.perf_counter()
    rec.last_end = max(rec.last_end, ended)
    reusable = head.keep_alive and (head.chunked or head.content_length is not None)
    if head.status != 200:
        rec.errors[f"status_{head.status}"] += 1
        return reusable
    if isinstance(tally, _StreamTally):
        if tally.last is None or not _is_terminal(tally.last):
            rec.errors["stream_incomplete"] += 1
            return reusable
        rec.gap_extra.extend(tally.gaps)
    ended_inside = rec.covers(ended)
    rec.ended_in_window += ended_inside
    if not (rec.covers(started) if rec.by_dispatch else ended_inside):
        return reusable
    rec.latencies.append(ended - started)
    rec.body_bytes += tally.size
    if isinstance(tally, _StreamTally):
        rec.events += tally.events
        rec.deltas += tally.deltas
        if tally.first is not None:
            rec.ttfe.append(tally.first - started)
    return reusable


def _may_issue(spec: LoadSpec, rec: _Recorder) -> bool:
    if spec.max_requests is not None and rec.issued >= spec.max_requests:
        return False
    return time.perf_counter() < rec.window_end


class _Connection:
    """One worker's keep-alive connection: opened when needed, dropped when the server or an error ends it."""

    __slots__ = ("conn", "rec", "request", "spec")

    def __init__(self, spec: LoadSpec, request: bytes, rec: _Recorder) -> None:
        self.spec, self.request, self.rec = spec, request, rec
        self.conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def open(self) -> bool:
        """Whether the connection is open (an attempt that failed is counted as a ``connect`` error)."""
        if self.conn is None:
            try:
                self.conn = await asyncio.wait_for(
                    asyncio.open_connection(self.spec.host, self.spec.port), self.spec.connect_timeout
                )
            except (OSError, TimeoutError):
                self.rec.errors["connect"] += 1
                return False
        return True

    async def exchange(self, origin: float | None = None) -> None:
        assert self.conn is not None
        try:
            reusable = await _exchange(self.spec, self.request, self.conn, self.rec, origin)
        except _EXCHANGE_ERRORS as exc:
            self.rec.errors[type(exc).__name__] += 1
            reusable = False
        self.rec.answered += 1
        if not reusable:
            self.close()

    def close(self) -> None:
        if self.conn is not None:
            self.conn[1].close()
            self.conn = None


async def _worker(spec: LoadSpec, request: bytes, rec: _Recorder) -> None:
    """Closed loop: the next request as soon as the last one is answered."""
    conn = _Connection(spec, request, rec)
    try:
        while _may_issue(spec, rec):
            if not await conn.open():
                await asyncio.sleep(_CONNECT_RETRY_S)
                continue
            rec.issued += 1
            await conn.exchange()
    finally:
        conn.close()


async def _rate_worker(
    spec: LoadSpec, request: bytes, rec: _Recorder, arrivals: asyncio.Queue[float | None]
) -> None:
    """Open loop: send each dispatched request (its dispatch time) until told to stop (None)."""
    conn = _Connection(spec, request, rec)
    try:
        while (origin := await arrivals.get()) is not None:
            if await conn.open():
                await conn.exchange(origin)
            else:
                rec.answered += 1
    finally:
        conn.close()


async def _dispatch(spec: LoadSpec, rec: _Recorder, arrivals: asyncio.Queue[float | None]) -> None:
    """Put requests on ``arrivals`` at Poisson-distributed times, ``spec.rate`` per second on average, from
    the start of the warm-up to the end of the window; then one stop (None) per worker."""
    assert spec.rate is not None
    schedule = random.Random(spec.seed)
    due = time.perf_counter()
    while True:
        due += schedule.expovariate(spec.rate)
        if due >= rec.window_end or (spec.max_requests is not None and rec.issued >= spec.max_requests):
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        now = time.perf_counter()
        if now >= rec.window_start:
            rec.dispatch_late.append(now - due)
        rec.issued += 1
        arrivals.put_nowait(now)
    for _ in range(spec.concurrency):
        arrivals.put_nowait(None)


def _summary(spec: LoadSpec, rec: _Recorder, unfinished: int, crashed: int) -> dict[str, Any]:
    end = rec.window_end if rec.last_end == 0.0 else min(rec.window_end, rec.last_end)
    if spec.max_requests is None or rec.issued < spec.max_requests:
        end = rec.window_end
    elapsed = max(end - rec.window_start, 1e-9)
    errors = dict(rec.errors)
    if unfinished:
        errors["unfinished"] = unfinished
    if crashed:
        errors["worker_crashed"] = crashed
    return {
        "requests": len(rec.latencies),
        "issued": rec.issued,
        "elapsed_s": round(elapsed, 3),
        "rps": round(len(rec.latencies) / elapsed, 1),
        "latency_ms": summarize_ms(rec.latencies),
        "events": rec.events,
        "events_per_s": round(rec.events / elapsed, 1),
        "deltas": rec.deltas,
        "deltas_per_s": round(rec.deltas / elapsed, 1),
        "ttfe_ms": summarize_ms(rec.ttfe),
        "gap_extra_ms": summarize_ms(rec.gap_extra),
        "offered_rps": spec.rate,
        "served_rps": round(rec.ended_in_window / elapsed, 1),
        "dispatch_late_ms": summarize_ms(rec.dispatch_late),
        "body_bytes": rec.body_bytes,
        "errors": sum(errors.values()),
        "error_kinds": errors,
    }


async def run_load(spec: LoadSpec) -> dict[str, Any]:
    """Drive the server described by ``spec`` and summarise what was measured."""
    request = build_request("POST", spec.path, f"{spec.host}:{spec.port}", spec.body.encode())
    cpu_start = time.process_time()
    start = time.perf_counter()
    rec = _Recorder(
        window_start=start + spec.warmup,
        window_end=start + spec.warmup + spec.duration,
        by_dispatch=spec.rate is not None,
    )
    if spec.rate is None:
        tasks = [asyncio.create_task(_worker(spec, request, rec)) for _ in range(spec.concurrency)]
    else:
        arrivals: asyncio.Queue[float | None] = asyncio.Queue()
        tasks = [
            asyncio.create_task(_rate_worker(spec, request, rec, arrivals)) for _ in range(spec.concurrency)
        ]
        tasks.append(asyncio.create_task(_dispatch(spec, rec, arrivals)))
    done, pending = await asyncio.wait(tasks, timeout=spec.warmup + spec.duration + spec.grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    crashed = sum(1 for task in done if task.exception() is not None)
    # In flight at the deadline: one per closed-loop worker still busy; in an open loop, also those queued.
    unfinished = len(pending) if spec.rate is None else rec.issued - rec.answered
    summary = _summary(spec, rec, unfinished, crashed)
    summary["wall_s"] = round(time.perf_counter() - start, 3)
    summary["cpu_s"] = round(time.process_time() - cpu_start, 3)
    return summary


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main() -> int:
    spec = LoadSpec.from_json(sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read())
    with asyncio.Runner(loop_factory=_new_loop) as runner:
        result = runner.run(run_load(spec))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
