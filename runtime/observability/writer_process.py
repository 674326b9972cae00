"""The trace writer process: span batches of one server process -> the store, off that server's GIL.

Why a process: converting a request's spans to rows and writing them cost the server 60-85 µs of CPU per
request in its exporter thread, under the GIL the event loop needs. Here that work runs on another core;
the server only compacts and encodes its batches (see :mod:`runtime.observability.writer_client`).

The contract with its server:

- batches are written in the order received, one transaction each, and each is acknowledged with what
  became of it (:class:`~runtime.observability.writer_sink.Outcome`), so the server's ``/metrics`` counts
  exports, drops by reason and store write latency as if it had written them itself;
- when asked to (the server has metrics on), it folds the request metrics of each batch's root records
  (:mod:`~runtime.observability.root_metrics`) and sends them back as soon as the batch is read, before
  writing it: the serving process then records only the in-flight gauge of a traced request;
- it never outlives its server: it exits after ``CLOSE`` (everything before it is written by then), at end
  of file on its socket (the server exited or crashed: what was received is written, then it exits), or
  when its parent changed (someone else, say a forked grandchild, holds the socket open); and once its
  server is gone, it gives the store ``orphan_grace`` seconds (the server's own flush timeout) to take what
  was received, then exits without the rest, logged: a store that hangs (a PostgreSQL lock, a frozen
  network) must not keep a writer per crashed server alive for good;
- it ignores SIGINT and SIGTERM: a terminal's Ctrl-C or a process-group SIGTERM reaches it together with its
  server, which still has to hand over its last batches; it ends when the server is done with it;
- it runs at a lower CPU priority (nice +10): when the cores are all busy, requests go first (DESIGN:
  observability never slows a request) and the writer takes what they leave; if that is too little, the
  server's bounded queue fills and drops are counted there, as with a slow store.

Only this module's :func:`main` runs in the writer; it imports the store, not the server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence

from runtime.errors import Unavailable
from runtime.observability.lazy_store import LazyStore
from runtime.observability.prometheus import Snapshot
from runtime.observability.root_metrics import fold_into
from runtime.observability.writer_sink import write_batch
from runtime.observability.writer_wire import ACK, BATCH, BYE, CLOSE, HELLO, METRICS, READY, receive, send

__all__ = ["main"]

log = logging.getLogger("runtime.observability.writer")

_PARENT_CHECK = 1.0  # seconds between checks that the server is still our parent, while idle
_NICE = 10


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m runtime.observability.writer_process FD``: serve the server on socket ``FD``."""
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(OSError):  # not allowed (some sandboxes): run at the server's priority
        os.nice(_NICE)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s [trace writer] %(name)s: %(message)s"
    )
    sock = socket.socket(fileno=int(args[0]))
    try:
        return _serve(sock, os.getppid())
    except OSError as exc:  # the server went away mid-message: nothing left to answer
        log.debug("trace writer stopping: %s", exc)
        return 0
    finally:
        sock.close()


def _serve(sock: socket.socket, parent: int) -> int:
    hello = receive(sock)
    if hello is None or hello[0] != HELLO:
        return 0
    _, url, retry_after, fold, grace = hello
    threading.Thread(
        target=_outlive_no_longer, args=(parent, float(str(grace))), name="orphan-watch", daemon=True
    ).start()
    store = LazyStore(str(url), retry_after=float(str(retry_after)))
    try:
        try:
            store.get()  # connect before saying ready; a store that is down is retried at each batch
        except Unavailable as exc:
            log.warning("%s; retrying with the next batch", exc.message)
        send(sock, (READY,))
        while _readable(sock, parent):
            message = receive(sock)
            if message is None:
                return 0
            if message[0] == BATCH:
                _, seq, batch, count = message
                if fold:  # the batch's request metrics first: a slow store must not hold them back
                    increments: list[Snapshot] = []
                    fold_into(increments.append, batch)  # type: ignore[arg-type] # the server's own batch
                    send(sock, (METRICS, seq, increments[0] if increments else {}))
                outcome = write_batch(store, batch, count)  # type: ignore[arg-type] # the server's own batch
                send(sock, (ACK, seq, *outcome[:4]))  # the wire's four counts (see writer_wire)
            elif message[0] == CLOSE:
                send(sock, (BYE,))
                return 0
        return 0
    finally:
        store.close()


def _readable(sock: socket.socket, parent: int) -> bool:
    """Wait for the next message; False once the server is no longer our parent."""
    while True:
        ready, _, _ = select.select([sock], [], [], _PARENT_CHECK)
        if ready:
            return True
        if os.getppid() != parent:
            return False


def _outlive_no_longer(parent: int, grace: float) -> None:
    """Once the server is no longer our parent, give the work in hand ``grace`` seconds, then exit without
    it: the main thread may be waiting on a store that never answers."""
    while os.getppid() == parent:
        time.sleep(_PARENT_CHECK)
    time.sleep(grace)
    log.warning(
        "the server is gone and the store did not take the last spans within %.0f s: exiting without them",
        grace,
    )
    logging.shutdown()
    os._exit(1)


if __name__ == "__main__":
    sys.exit(main())
