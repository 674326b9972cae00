"""``ProcessWriter``: the server's side of its trace writer process (:mod:`~.writer_process`).

Every method runs in the store exporter's worker thread, which owns the socket, so nothing here is locked;
``pending`` is also read at scrape time (one int read). The writer is spawned with ``subprocess`` rather
than ``multiprocessing``: a spawned ``multiprocessing`` child re-imports the server's ``__main__`` (the
whole CLI and app), where ``python -m runtime.observability.writer_process`` imports the store and nothing
else. The child gets the server's ``sys.path`` and its end of a socket pair; the store URL (which may hold
a password) travels over the socket, not on the command line.

Start-up: the writer takes most of a second to import the store. Until it says it is ready, batches (already
compacted, so holding them costs memory, not GIL time) wait for it, up to ``startup_buffer`` spans; past
that, or when a flush or shutdown comes first, ``fallback`` writes them in the exporter thread. So the start
neither blocks the exporter nor makes it drop spans under load, and a server that stops before its writer
is ready does not wait for it (nothing was sent to it).

Flow control: at most ``window`` spans are sent and not yet acknowledged (at least one batch). Past that,
``write`` waits for an acknowledgement, the exporter's queue fills, and spans are dropped and counted as
``queue_full`` there, exactly as when an in-thread write is slow. The spans sent and not acknowledged count
in the exporter's queue depth. The window is as large as the start-up buffer, so what was held while the
writer started is handed over at once, and a writer that briefly lags (a WAL checkpoint) does not make
the exporter wait, which under a busy event loop costs it a GIL switch interval each time.

Request metrics (``on_metrics`` set): the writer counts the request metrics of each batch's root records
and sends them back before writing it (see :mod:`~runtime.observability.root_metrics`); a batch is kept
here until they arrive (``wait_folded`` waits for that, not for the write), so if the writer dies first,
its requests are counted here instead: exactly once either way.

Degrading, never breaking: if the writer cannot start, or dies, the spans it had not acknowledged are
counted as ``writer_lost``, a warning is logged, and every later batch goes to ``fallback`` (the exporter
thread writes it), for the rest of the server's life.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from runtime.observability.root_metrics import fold_into
from runtime.observability.writer_sink import Outcome
from runtime.observability.writer_wire import (
    ACK,
    BATCH,
    BYE,
    CLOSE,
    HELLO,
    METRICS,
    READY,
    frame,
    next_frame,
    send,
)

if TYPE_CHECKING:
    from runtime.observability.prometheus import Snapshot
    from runtime.observability.records import SpanBatch
    from runtime.observability.store_export import BatchWriter

__all__ = ["ProcessWriter"]

log = logging.getLogger("runtime.observability.export")

_MODULE = "runtime.observability.writer_process"
# The writer ignores SIGINT and SIGTERM from its first moment: a Ctrl-C or a process-group SIGTERM just
# after it started (it takes a second to import) must not kill it while its server still hands it the last
# batches (it ends when the server is done with it, see writer_process). It is started with both blocked
# (a signal mask survives exec), and its first line ignores them, then unblocks them (a pending one is
# dropped).
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_LAUNCH = (
    "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM}); "
    f"import sys; from {_MODULE} import main; sys.exit(main())"
)
_POLL = 1.0  # seconds between liveness checks of the writer while waiting for it
# Room for the batches in flight, so handing one over is one write: each time the exporter thread blocks, it
# waits for the GIL again to go on, up to a switch interval (5 ms) while the event loop is busy.
_SEND_BUFFER = 4 << 20
_READ = 1 << 16
# Send and receive without blocking, for one call, on a socket the exporter thread uses blocking: where the
# platform has no such flag, batches are handed over by the exporter thread only.
_DONTWAIT: int | None = getattr(socket, "MSG_DONTWAIT", None)


class WriterLost(Exception):
    """The writer process is gone, or answered something unexpected."""


class ProcessWriter:
    def __init__(
        self,
        store_url: str,
        report: Callable[[Outcome], None],
        fallback: BatchWriter,
        *,
        retry_after: float = 1.0,
        window: int = 8192,
        startup_buffer: int = 8192,
        on_metrics: Callable[[Snapshot], None] | None = None,
        orphan_grace: float = 30.0,
    ) -> None:
        self._url = store_url
        self._orphan_grace = orphan_grace
        self._report = report
        self._on_metrics = on_metrics
        self._unfolded: dict[int, SpanBatch] = {}  # batch seq -> batch sent, its metrics not yet received
        self._fallback = fallback
        self._retry_after = retry_after
        self._window = window
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._in_flight: dict[int, int] = {}  # batch seq -> spans, in sending order
        self._inbox = bytearray()  # what the writer said, read and not yet handled (part of a message)
        self._outbox: memoryview | None = None  # the part of a batch the socket did not take at once
        self._failure: BaseException | None = None  # what went wrong where it could not be handled
        self._waiting: collections.deque[tuple[SpanBatch, int]] = collections.deque()
        self._waiting_spans = 0
        self._startup_buffer = startup_buffer
        self._pending = 0
        self._seq = 0
        self._ready = False
        self._degraded = False

    @property
    def degraded(self) -> bool:
        """True once batches go to the fallback (the writer could not start, or died)."""
        return self._degraded

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Spawn the writer if it is not running; returns without waiting for it to be ready."""
        if self._proc is not None or self._degraded:
            return
        try:
            ours, theirs = socket.socketpair()
        except OSError as exc:
            self._degrade("could not start the trace writer process (%s)", exc)
            return
        with contextlib.suppress(OSError):  # capped by net.core.wmem_max; smaller only costs time
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
        try:
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)  # this thread's, for the child
            try:
                self._proc = subprocess.Popen(
                    [sys.executable, "-P", "-c", _LAUNCH, str(theirs.fileno())],
                    pass_fds=(theirs.fileno(),),
                    env=_child_environ(),
                    stdin=subprocess.DEVNULL,
                )
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            self._sock = ours
            hello = (HELLO, self._url, self._retry_after, self._on_metrics is not None, self._orphan_grace)
            send(ours, hello)
        except Exception as exc:  # no executable, no fds, no memory: trace in-thread rather than not at all
            ours.close()
            self._degrade("could not start the trace writer process (%s)", exc)
        finally:
            theirs.close()

    def poll(self) -> None:
        """Between batches: read what the writer said, and hand it the batches held while it started."""
        if self._sock is None:
            return
        try:
            self._flush_outbox()
            while self._receive(0.0):
                pass
            if self._ready:
                while self._waiting:
                    self._send(*self._waiting[0])
                    self._pop_waiting()
        except (OSError, WriterLost, ValueError) as exc:
            self._degrade("the trace writer process failed (%s)", exc)

    def write(self, batch: SpanBatch, count: int) -> None:
        handed = False  # once sent, a batch is the writer's: written, or counted lost if the writer dies
        try:
            if self._sock is not None and not self._ready:
                while not self._ready and self._receive(0.0):
                    pass
            if self._sock is not None and self._ready:
                while self._waiting:
                    self._send(*self._waiting[0])
                    self._pop_waiting()
                self._send(batch, count)
                handed = True
                while self._in_flight and self._receive(0.0):
                    pass
            elif self._sock is not None and self._waiting_spans + count <= self._startup_buffer:
                self._waiting.append((batch, count))  # the writer is starting: hold the batch for it
                self._waiting_spans += count
                return
        except (OSError, WriterLost, ValueError) as exc:
            self._degrade("the trace writer process failed (%s)", exc)
        if not handed:
            self._fallback.write(batch, count)

    def can_take(self, count: int) -> bool:
        """True if a batch of ``count`` spans can be handed over now by :meth:`send_now`, from any thread,
        without waiting: the writer is ready, nothing is held for it or left to send, and (after reading
        its acknowledgements so far) the batch fits in the window. Never raises: a failure is kept for the
        exporter thread, which degrades on its next call."""
        if _DONTWAIT is None or self._sock is None or not self._ready:
            return False
        if self._waiting or self._outbox is not None or self._failure is not None:
            return False
        try:
            while True:
                try:
                    data = self._sock.recv(_READ, _DONTWAIT)
                except BlockingIOError:
                    break
                self._read(data)
                if len(data) < _READ:
                    break
            while (message := next_frame(self._inbox)) is not None:
                self._handle(message, until_bye=False)
        except (OSError, WriterLost, ValueError) as exc:
            self._failure = exc
            return False
        return self._pending + count <= self._window

    def send_now(self, batch: SpanBatch, count: int) -> bool:
        """Hand over a batch :meth:`can_take` allowed, without blocking. False if the socket did not take
        all of it: the rest is sent by the exporter thread's next call (any call sends it first)."""
        assert self._sock is not None and _DONTWAIT is not None
        data = self._next_batch(batch, count)
        self._sent(batch, count)  # from here, a batch the socket refuses is counted lost with the writer
        try:
            sent = self._sock.send(data, _DONTWAIT)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._failure = exc
            return False
        if sent < len(data):
            self._outbox = memoryview(data)[sent:]
            return False
        return True

    def wait(self, timeout: float) -> bool:
        """Block until every batch sent is acknowledged; False after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        if not self._wait_for(self._in_flight, deadline):
            return False
        return self._fallback.wait(max(0.0, deadline - time.monotonic()))

    def wait_folded(self, timeout: float) -> bool:
        """Block until the metrics of every batch sent are counted (not written); False after ``timeout``."""
        return self._wait_for(self._unfolded, time.monotonic() + timeout)

    def _wait_for(self, batches: Mapping[int, object], deadline: float) -> bool:
        """Read the writer's answers until ``batches`` (in flight, or unfolded) is empty or ``deadline``."""
        self._release_waiting()  # a flush does not wait for the writer to start
        try:
            self._flush_outbox()
            while batches:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._receive(min(left, _POLL))
        except (OSError, WriterLost, ValueError) as exc:
            self._degrade("the trace writer process failed (%s)", exc)
        return True

    def pending(self) -> int:
        return self._pending + self._waiting_spans + self._fallback.pending()

    def close(self, timeout: float) -> None:
        """Let the writer finish everything sent, then exit; kill it if it takes longer than ``timeout``."""
        deadline = time.monotonic() + timeout
        sock, proc = self._sock, self._proc
        self._release_waiting()
        if sock is not None and proc is not None and not self._ready:
            sock.close()  # it has nothing of ours: it exits at end of file, once it has started
            threading.Thread(target=proc.wait, name="runtime-trace-writer-reaper", daemon=True).start()
            self._sock = self._proc = None
        elif sock is not None and proc is not None:
            try:
                self._flush_outbox()
                send(sock, (CLOSE,))
                while not self._receive(max(0.0, deadline - time.monotonic()), until_bye=True):
                    if time.monotonic() >= deadline:
                        raise WriterLost(f"no answer within {timeout:.0f} s")
            except (OSError, WriterLost, ValueError) as exc:
                self._degrade("the trace writer process did not finish (%s)", exc, closing=True)
            else:
                self._stop_process(max(0.1, deadline - time.monotonic()))
                sock.close()
                self._sock = self._proc = None
        self._fallback.close(max(0.0, deadline - time.monotonic()))

    # -- internals -----------------------------------------------------------------------------------------

    def _send(self, batch: SpanBatch, count: int) -> None:
        """Hand one batch to the ready writer, first waiting for room among the batches in flight."""
        assert self._sock is not None
        self._flush_outbox()
        while self._in_flight and self._pending + count > self._window:
            self._receive(_POLL)
        self._sock.sendall(self._next_batch(batch, count))
        self._sent(batch, count)

    def _next_batch(self, batch: SpanBatch, count: int) -> bytes:
        """The message of the next batch, numbered."""
        self._seq += 1
        return frame((BATCH, self._seq, batch, count))

    def _sent(self, batch: SpanBatch, count: int) -> None:
        """The batch numbered ``self._seq`` is the writer's from now on."""
        self._in_flight[self._seq] = count
        if self._on_metrics is not None:
            self._unfolded[self._seq] = batch
        self._pending += count

    def _flush_outbox(self) -> None:
        """Send (blocking) what the socket did not take of a batch handed over by :meth:`send_now`."""
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise WriterLost(str(failure) or type(failure).__name__)
        outbox = self._outbox
        if outbox is not None and self._sock is not None:
            self._sock.sendall(outbox)
            self._outbox = None

    def _release_waiting(self) -> None:
        """Write in this thread what was held for a writer that is not ready (or no longer running)."""
        if self._ready:
            return
        while self._waiting:
            self._fallback.write(*self._pop_waiting())

    def _pop_waiting(self) -> tuple[SpanBatch, int]:
        batch, count = self._waiting.popleft()
        self._waiting_spans -= count
        return batch, count

    def _receive(self, timeout: float, *, until_bye: bool = False) -> bool:
        """Handle one message if one arrives within ``timeout``; True if one did (or, ``until_bye``, BYE)."""
        sock, proc = self._sock, self._proc
        assert sock is not None and proc is not None
        message = next_frame(self._inbox)
        if message is None:
            ready, _, _ = select.select([sock], [], [], timeout)
            if not ready:
                if proc.poll() is not None:
                    raise WriterLost(f"it exited with status {proc.returncode}")
                return False
            self._read(sock.recv(_READ))
            message = next_frame(self._inbox)
            if message is None:
                return False  # part of a message: the rest is on its way
        return self._handle(message, until_bye)

    def _read(self, data: bytes) -> None:
        if not data:
            raise WriterLost("it closed its socket")
        self._inbox += data

    def _handle(self, message: tuple[object, ...], until_bye: bool) -> bool:
        if message[0] == METRICS:
            _, seq, increments = message
            self._folded(seq, increments)  # type: ignore[arg-type] # the writer's own snapshot
            return not until_bye
        if message[0] == ACK:
            self._acknowledged(message)
            return not until_bye
        if message[0] == READY:
            self._ready = True
            return not until_bye
        if message[0] == BYE:
            return True
        raise WriterLost(f"unexpected message {message[0]!r}")

    def _acknowledged(self, message: tuple[object, ...]) -> None:
        _, seq, exported, store_errors, invalid, seconds = message
        count = self._in_flight.pop(seq, 0)  # type: ignore[call-overload] # our own seq back
        self._pending -= count
        if seq in self._unfolded:  # written, its metrics not sent: count them here
            self._fold_here(self._unfolded.pop(seq))
        self._report(
            Outcome(
                int(exported),  # type: ignore[call-overload] # the writer sends ints
                int(store_errors),  # type: ignore[call-overload]
                int(invalid),  # type: ignore[call-overload]
                float(seconds) if seconds is not None else None,  # type: ignore[arg-type]
            )
        )

    def _folded(self, seq: int, increments: Snapshot) -> None:
        """The writer counted the metrics of batch ``seq``: add them (once; any thread may read them)."""
        if self._unfolded.pop(seq, None) is not None and increments and self._on_metrics is not None:
            self._on_metrics(increments)

    def _fold_here(self, batch: SpanBatch) -> None:
        if self._on_metrics is not None:
            fold_into(self._on_metrics, batch)

    def _degrade(self, message: str, exc: BaseException, *, closing: bool = False) -> None:
        """Count what the writer had not acknowledged as lost, stop it, and write in-thread from now on
        (``closing``: the server is stopping, and there is no "from now on")."""
        lost = sum(self._in_flight.values())
        self._in_flight.clear()
        for batch in self._unfolded.values():  # their requests were served: their metrics count
            self._fold_here(batch)
        self._unfolded.clear()
        self._pending = 0
        self._inbox.clear()
        self._outbox = self._failure = None
        if lost:
            self._report(Outcome(0, 0, 0, None, writer_lost=lost))
        if closing:
            log.warning(message + ": %d spans it had not written are lost (counted as dropped)", exc, lost)
        else:
            log.warning(message + "; writing traces in the server process from now on", exc)
        self._degraded = True
        if self._proc is not None:
            self._stop_process(0.0)
        if self._sock is not None:
            self._sock.close()
        self._sock = self._proc = None
        self._ready = False
        self._release_waiting()

    def _stop_process(self, timeout: float) -> None:
        proc = self._proc
        assert proc is not None
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# The server's ``sys.path`` before any agent was loaded: agent folders stay on it for the process's life
# (as in MLflow), first, and a helper module of an agent named like a standard one (``json.py``) must not
# replace that module in the writer, which imports only the store.
_SERVER_PATH = tuple(p for p in sys.path if p)


def _child_environ() -> dict[str, str]:
    """The server's environment, with its ``sys.path`` (without agents' folders) as ``PYTHONPATH``."""
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join(_SERVER_PATH)
    return environ
