"""A TCP proxy in front of the real Redis that a test can make stop answering, then answer again.

"Stop answering" is the hard failure for a client: connections stay open (or are accepted) but no byte comes
back, so only the client's own timeouts save it. Paused connections are held, not broken: bytes wait in the
kernel buffers and flow again on resume, so a client that kept its connection sees a valid stream.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Iterator

from tests.servers import free_port


class BlackholeProxy:
    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 6379)) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.answering = threading.Event()
        self.answering.set()
        self._stop = threading.Event()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    def pause(self) -> None:
        self.answering.clear()

    def resume(self) -> None:
        self.answering.set()

    def __enter__(self) -> BlackholeProxy:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.answering.set()
        self._server.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
        for thread in self._threads:
            thread.join(5)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self._sockets.append(client)
            self._spawn(self._connect, client)

    def _connect(self, client: socket.socket) -> None:
        while not self.answering.wait(0.05):
            if self._stop.is_set():
                return
        try:
            upstream = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        self._sockets.append(upstream)
        self._pump(client, upstream)

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        while not self._stop.is_set():
            if not self.answering.is_set():
                self.answering.wait(0.05)
                continue
            try:
                ready, _, _ = select.select(list(peers), [], [], 0.05)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return self._close(a, b)
                    peers[sock].sendall(data)
            except OSError:
                return self._close(a, b)
        self._close(a, b)

    @staticmethod
    def _close(*socks: socket.socket) -> None:
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.close()


@contextlib.contextmanager
def redis_proxy() -> Iterator[BlackholeProxy]:
    with BlackholeProxy() as proxy:
        yield proxy
