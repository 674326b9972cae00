"""The trace writer process: batches written off the server's GIL, with every guarantee of the thread's."""

from __future__ import annotations

import enum
import marshal
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from registry.store import SqlStore
from runtime.observability.lazy_store import LazyStore
from runtime.observability.records import SpanBatch, compact
from runtime.observability.store_export import StoreSpanProcessor, ThreadWriter
from runtime.observability.writer_client import ProcessWriter
from runtime.observability.writer_sink import Outcome
from runtime.observability.writer_wire import ACK, BATCH, decode, encode, frame, next_frame
from tests.observability.test_store_export import emit_request
from tests.servers import ServeProcess, wait_until


class CountingStore(LazyStore):
    """The fallback's store, counting the batches written in this process."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.batches = 0

    def log_trace_rows(self, trace_rows: Sequence[Mapping[str, Any]], span_rows: Sequence[Any]) -> None:
        self.batches += 1
        super().log_trace_rows(trace_rows, span_rows)


def request_batch(children: int = 0) -> tuple[SpanBatch, int]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    emit_request(provider, children=children)
    provider.shutdown()
    spans = exporter.get_finished_spans()
    return compact(spans), len(spans)


def stored_traces(url: str) -> int:
    with SqlStore(url) as store:
        return len(store.search_traces(limit=1000)[0])


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie waiting for a parent that does not reap, all its threads gone
    (the main thread of a killed process is a zombie before its other threads have exited and closed its
    files: the writer has a watch thread)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            zombie = stat.read().rsplit(")", 1)[1].split()[0] == "Z"
        return zombie and os.listdir(f"/proc/{pid}/task") == [str(pid)]
    except FileNotFoundError:
        return True


@pytest.fixture
def url(tmp_path: Path) -> str:
    store_url = f"sqlite:///{tmp_path / 'traces.db'}"
    SqlStore(store_url).close()  # migrated, as the server does before its writer starts
    return store_url


@pytest.fixture
def writer(url: str) -> Iterator[tuple[ProcessWriter, list[Outcome]]]:
    outcomes: list[Outcome] = []
    fallback = ThreadWriter(CountingStore(url), outcomes.append)
    process = ProcessWriter(url, outcomes.append, fallback)
    process.start()
    assert wait_until(lambda: process._receive(0.05) or process._ready, timeout=30)
    yield process, outcomes
    process.close(10)


def test_a_served_exporter_writes_through_its_process_once_it_is_ready(url: str) -> None:
    fallback = CountingStore(url)
    writes: list[float] = []
    processor = StoreSpanProcessor(fallback, schedule_delay=0.02, store_url=url, on_write=writes.append)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    process = processor._writer
    assert isinstance(process, ProcessWriter)
    emitted = 0

    def serve_until_ready() -> bool:
        nonlocal emitted
        emit_request(provider)  # scheduled exports: the first starts the writer; batches wait for it
        emitted += 1
        return process._ready and not process._waiting

    assert wait_until(serve_until_ready, timeout=30, interval=0.05)
    for _ in range(5):
        emit_request(provider, children=1)
    assert processor.force_flush(10_000)
    assert fallback.batches == 0  # everything went through the process, what came before it was ready too
    assert processor.stats() == (
        2 * emitted + 10,
        {"queue_full": 0, "store_error": 0, "invalid": 0, "writer_lost": 0},
        0,
    )
    assert len(writes) >= 2 and all(w > 0 for w in writes)
    pid = process.pid
    assert pid is not None
    emit_request(provider)
    provider.shutdown()  # drains to the writer, which finishes and exits
    assert stored_traces(url) == emitted + 6
    assert gone(pid)


def test_a_flush_or_shutdown_alone_does_not_start_a_process(url: str) -> None:
    processor = StoreSpanProcessor(CountingStore(url), schedule_delay=60, store_url=url)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    emit_request(provider)
    assert processor.force_flush(10_000)
    emit_request(provider)
    provider.shutdown()
    assert isinstance(processor._writer, ProcessWriter) and processor._writer.pid is None
    assert stored_traces(url) == 2


def test_batches_wait_for_a_starting_writer_up_to_its_buffer(url: str) -> None:
    """While the writer imports, batches are held (up to the buffer); a flush does not wait for it."""
    outcomes: list[Outcome] = []
    store = CountingStore(url)
    process = ProcessWriter(url, outcomes.append, ThreadWriter(store, outcomes.append), startup_buffer=2)
    process.start()
    batch, count = request_batch(children=1)
    process.write(batch, count)  # held: the writer is still importing
    assert (store.batches, process.pending()) == (0, 2)
    process.write(*request_batch(children=1))  # past the buffer: written here
    assert (store.batches, process.pending()) == (1, 2)
    assert process.wait(10)  # the flush writes the held batch here too
    assert (store.batches, process.pending()) == (2, 0)
    process.close(10)
    assert [o.exported for o in outcomes] == [2, 2] and stored_traces(url) == 2


def test_store_errors_and_invalid_batches_are_counted_by_the_writer(
    tmp_path: Path, writer: tuple[ProcessWriter, list[Outcome]]
) -> None:
    process, outcomes = writer
    batch, count = request_batch(children=1)
    process.write(([], [("not", "a", "span")]), 1)  # type: ignore[list-item] # what a bug would send
    process.write(batch, count)
    assert process.wait(10)
    assert outcomes[0] == Outcome(0, 0, 1, None)
    assert outcomes[1].exported == 2 and outcomes[1].seconds is not None

    (tmp_path / "file").write_text("")  # a store under a file cannot be opened
    down = ProcessWriter(f"sqlite:///{tmp_path / 'file' / 'x.db'}", outcomes.append, process._fallback)
    down.start()
    assert wait_until(lambda: down._receive(0.05) or down._ready, timeout=30)
    down.write(batch, count)
    assert down.wait(10)
    down.close(10)
    assert outcomes[-1] == Outcome(0, 2, 0, None)


def test_the_writer_yields_the_cpu_to_its_server(writer: tuple[ProcessWriter, list[Outcome]]) -> None:
    process, _ = writer
    assert process.pid is not None
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, process.pid) == min(19, ours + 10)


def test_the_writer_ignores_sigterm_and_finishes_what_it_was_sent(
    url: str, writer: tuple[ProcessWriter, list[Outcome]]
) -> None:
    """A process-group SIGTERM reaches the writer too; the server still has batches to hand over."""
    process, outcomes = writer
    assert process.pid is not None
    os.kill(process.pid, signal.SIGTERM)
    batch, count = request_batch()
    process.write(batch, count)
    assert process.wait(10)
    assert outcomes == [Outcome(1, 0, 0, outcomes[0].seconds)]
    assert not process.degraded
    assert stored_traces(url) == 1


def test_the_writer_ignores_sigterm_from_its_first_moment(url: str) -> None:
    """Ctrl-C or a process-group SIGTERM just after the first request started the writer (while it still
    imports) used to kill it, and the server reported a failed writer."""
    outcomes: list[Outcome] = []
    process = ProcessWriter(url, outcomes.append, ThreadWriter(CountingStore(url), outcomes.append))
    process.start()
    assert process.pid is not None
    os.kill(process.pid, signal.SIGTERM)  # at once: long before its imports are done
    os.kill(process.pid, signal.SIGINT)
    try:
        assert wait_until(lambda: process._receive(0.05) or process._ready, timeout=30)
        batch, count = request_batch()
        process.write(batch, count)
        assert process.wait(10)
        assert not process.degraded
        assert stored_traces(url) == 1
    finally:
        process.close(10)


def test_a_writer_that_dies_is_replaced_by_the_thread(
    url: str, writer: tuple[ProcessWriter, list[Outcome]]
) -> None:
    process, outcomes = writer
    pid = process.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: gone(pid), timeout=10)
    batch, count = request_batch()
    process.write(batch, count)  # the socket is dead: this batch is written in-thread
    assert process.degraded
    assert process.wait(1)
    assert outcomes == [Outcome(1, 0, 0, outcomes[0].seconds)]
    assert stored_traces(url) == 1


def test_a_writer_that_cannot_start_degrades_to_the_thread(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_processes(*args: Any, **kwargs: Any) -> None:
        raise OSError("fork: resource temporarily unavailable")

    monkeypatch.setattr(subprocess, "Popen", no_processes)
    processor = StoreSpanProcessor(CountingStore(url), schedule_delay=0.02, store_url=url)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    emit_request(provider)
    assert wait_until(lambda: processor._writer.pending() == 0 and stored_traces(url) == 1)
    assert isinstance(processor._writer, ProcessWriter) and processor._writer.degraded
    provider.shutdown()


PARENT = """
import os, signal, sys
from runtime.observability.store_export import ThreadWriter
from runtime.observability.writer_client import ProcessWriter
from tests.observability.test_writer_process import request_batch

writer = ProcessWriter(sys.argv[1], lambda outcome: None, ThreadWriter(None, lambda outcome: None))
writer.start()
while not writer._ready:
    writer._receive(1.0)
print(writer.pid, flush=True)
batch, count = request_batch()
writer.write(batch, count)
os.kill(os.getpid(), signal.SIGKILL)  # gone without a word: no CLOSE, no waiting for the ACK
"""


def test_the_writer_writes_what_it_got_and_exits_when_its_server_dies(url: str) -> None:
    parent = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PARENT), url],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert parent.returncode == -signal.SIGKILL, parent.stderr
    pid = int(parent.stdout.split()[0])
    assert wait_until(lambda: gone(pid), timeout=10)
    assert stored_traces(url) == 1


def opened(pid: str, path: Path) -> bool:
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(fd) == str(path):
                return True
        except OSError:  # closed since it was listed
            continue
    return False


def writer_of(server: ServeProcess, db: Path) -> int | None:
    """The server's writer process, once it has the store open (it says ready right after)."""
    for task in Path(f"/proc/{server.proc.pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if opened(child, db):
                return int(child)
    return None


def test_sigterm_flushes_through_the_writer_process_and_the_writer_exits_too(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    env = {
        "RUNTIME_STORE_URL": f"sqlite:///{db}",
        "RUNTIME_HOME": str(tmp_path / "home"),
        "OTEL_BSP_SCHEDULE_DELAY": "20",
    }
    echo = Path(__file__).resolve().parents[2] / "examples" / "echo_agent.py"
    sent: list[str] = []
    with ServeProcess([str(echo)], env=env, cwd=tmp_path) as server:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=10) as client:

            def post(i: int) -> None:
                body = {"input": [{"role": "user", "content": f"message {i}"}], "stream": i % 3 == 0}
                r = client.post("/invocations" if i % 2 else "/v1/responses", json=body)
                assert r.status_code == 200
                sent.append(r.headers["x-runtime-trace-id"])

            post(0)  # a scheduled export: the writer starts
            assert wait_until(lambda: writer_of(server, db) is not None, timeout=30)
            pid = writer_of(server, db)
            assert pid is not None
            for i in range(1, 40):
                post(i)
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0
    assert wait_until(lambda: gone(pid), timeout=10)
    with SqlStore(f"sqlite:///{db}") as store:
        found, _ = store.search_traces(limit=100)
        assert sorted(t.trace_id for t in found) == sorted(sent)


class Tier(enum.StrEnum):  # an attribute value OpenTelemetry accepts and marshal refuses
    GOLD = "gold"


class Count(int):
    pass


def test_frames_carry_plain_values_only() -> None:
    batch = (
        [{"service.name": "svc"}],
        [(2**127 + 5, 7, None, "s", 1, 2, "OK", None, {"n": 1.5}, (), 0, False)],
    )
    plain = (BATCH, 1, batch, 1)
    assert decode(encode(plain)) == plain
    odd = (
        BATCH,
        2,
        ([{}], [(1, 2, 2**64 - 1, "s", 1, 2, "OK", None, {"tier": Tier.GOLD, "n": Count(3)}, (), 0, True)]),
        1,
    )
    received = decode(encode(odd))
    assert received == odd
    attrs = received[2][1][0][8]  # type: ignore[index]
    assert type(attrs["tier"]) is str and attrs["tier"] == "gold"  # the plain value: no class to import
    assert type(attrs["n"]) is int and attrs["n"] == 3


def test_a_full_batch_is_handed_over_by_the_thread_that_filled_it(url: str) -> None:
    """No wake-up of the worker thread: the batch goes to the ready writer from the request's thread."""
    processor = StoreSpanProcessor(CountingStore(url), schedule_delay=60, max_batch_size=4, store_url=url)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    process = processor._writer
    assert isinstance(process, ProcessWriter)
    process.start()
    assert wait_until(lambda: process._receive(0.05) or process._ready, timeout=30)
    processor._wake.clear()
    emit_request(provider, children=3)  # four spans: one full batch
    assert not processor._wake.is_set() and not processor._queue
    assert process.pending() == 4 or processor.stats()[0] == 4  # in flight, or written already
    assert wait_until(lambda: stored_traces(url) == 1, timeout=10)
    emit_request(provider, children=1)  # half a batch: left for the worker's schedule (or a flush)
    assert len(processor._queue) == 2 and not processor._wake.is_set()
    provider.shutdown()
    assert stored_traces(url) == 2
    assert processor.stats() == (6, {"queue_full": 0, "store_error": 0, "invalid": 0, "writer_lost": 0}, 0)


def test_a_hand_off_waits_for_nothing(url: str, writer: tuple[ProcessWriter, list[Outcome]]) -> None:
    """``can_take`` says no whenever handing over could wait; the worker thread does it then."""
    process, outcomes = writer
    assert process.can_take(10)
    assert not process.can_take(process._window + 1)  # past the window: only the worker may wait for room
    process._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # type: ignore[union-attr]
    batch, count = request_batch(children=2000)  # far more than the socket buffer holds
    assert not process.send_now(batch, count)  # the socket took what it could, the rest waits
    assert process._outbox is not None and not process.can_take(1)
    assert process.wait(30)  # the worker's next call sends the rest first
    assert process._outbox is None and outcomes[-1].exported == count
    assert stored_traces(url) == 1


def test_a_writer_lost_during_a_hand_off_is_found_by_the_worker(
    url: str, writer: tuple[ProcessWriter, list[Outcome]]
) -> None:
    process, outcomes = writer
    batch, count = request_batch()
    assert process.can_take(count) and process.send_now(batch, count)
    assert process.wait(10)
    pid = process.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: gone(pid), timeout=10)
    assert not process.can_take(count)  # it read the end of the socket: never raises, keeps it for later
    assert not process.degraded
    process.poll()  # the worker's next call
    assert process.degraded
    process.write(*request_batch())  # in-thread from now on
    assert [o.exported for o in outcomes] == [count, count] and stored_traces(url) == 2


def test_messages_are_read_whole_from_bytes_read_so_far() -> None:
    data = bytearray(frame((ACK, 1, 2, 0, 0, None)) + frame((ACK, 2, 3, 0, 0, 0.5)))
    first, rest = data[:7], data[7:]
    assert next_frame(first) is None and len(first) == 7  # part of a message: nothing taken
    first += rest
    assert next_frame(first) == (ACK, 1, 2, 0, 0, None)
    assert next_frame(first) == (ACK, 2, 3, 0, 0, 0.5)
    assert next_frame(first) is None and not first
    not_a_tuple = marshal.dumps("x")
    with pytest.raises(ValueError, match="unexpected trace writer message str"):
        next_frame(bytearray(len(not_a_tuple).to_bytes(4, "big") + not_a_tuple))
