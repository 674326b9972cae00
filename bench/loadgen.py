"""Closed-loop HTTP/1.1 load generator: one keep-alive connection per concurrent worker.

Each worker sends a request, reads the whole response (parsing SSE frames as they arrive), records it
and sends the next, from the start of the warm-up until the end of the measured window. Only requests that
finish inside the window are measured. The run is bounded twice: by ``max_requests`` and by a hard deadline
(warm-up + duration + grace) after which the requests still in flight are cancelled and counted as unfinished.

Run it in its own process (``python -m bench.loadgen SPEC_JSON``) so it does not share an event loop with
the server it measures; it prints one JSON result.
"""

from __future__ import annotations

import asyncio
import json
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

    @classmethod
    def from_json(cls, text: str) -> LoadSpec:
        return cls(**json.loads(text))

    def to_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass
class _Recorder:
    window_start: float
    window_end: float
    issued: int = 0
    latencies: list[float] = field(default_factory=list)
    ttfe: list[float] = field(default_factory=list)
    gap_extra: list[float] = field(default_factory=list)
    events: int = 0
    deltas: int = 0
    body_bytes: int = 0
    last_end: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)

    def in_window(self, ended: float) -> bool:
        return self.window_start <= ended <= self.window_end


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
    spec: LoadSpec, request: bytes, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], rec: _Recorder
) -> bool:
    """One request/response on an open connection; returns whether the connection can be reused."""
    reader, writer = conn
    started = time.perf_counter()
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
    if not rec.in_window(ended):
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


async def _worker(spec: LoadSpec, request: bytes, rec: _Recorder) -> None:
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    try:
        while _may_issue(spec, rec):
            if conn is None:
                try:
                    conn = await asyncio.wait_for(
                        asyncio.open_connection(spec.host, spec.port), spec.connect_timeout
                    )
                except (OSError, TimeoutError):
                    rec.errors["connect"] += 1
                    await asyncio.sleep(_CONNECT_RETRY_S)
                    continue
            rec.issued += 1
            try:
                reusable = await _exchange(spec, request, conn, rec)
            except (
                OSError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                HttpError,
                ValueError,
            ) as exc:
                rec.errors[type(exc).__name__] += 1
                reusable = False
            if not reusable:
                conn[1].close()
                conn = None
    finally:
        if conn is not None:
            conn[1].close()


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
        "body_bytes": rec.body_bytes,
        "errors": sum(errors.values()),
        "error_kinds": errors,
    }


async def run_load(spec: LoadSpec) -> dict[str, Any]:
    """Drive the server described by ``spec`` and summarise what was measured."""
    request = build_request("POST", spec.path, f"{spec.host}:{spec.port}", spec.body.encode())
    cpu_start = time.process_time()
    start = time.perf_counter()
    rec = _Recorder(window_start=start + spec.warmup, window_end=start + spec.warmup + spec.duration)
    tasks = [asyncio.create_task(_worker(spec, request, rec)) for _ in range(spec.concurrency)]
    done, pending = await asyncio.wait(tasks, timeout=spec.warmup + spec.duration + spec.grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    crashed = sum(1 for task in done if task.exception() is not None)
    summary = _summary(spec, rec, len(pending), crashed)
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
