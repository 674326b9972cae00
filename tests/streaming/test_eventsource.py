"""EventStream driven as an ASGI app with our own receive / send: pings, disconnects, stuck writes, drain."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import pytest
from sse_starlette.sse import AppStatus, SendTimeoutError
from starlette.types import Message

from runtime.streaming.drain import Drain
from runtime.streaming.eventsource import EventStream

SCOPE = {"type": "http", "method": "POST", "path": "/v1/responses", "headers": []}


class Client:
    """An ASGI peer: records what is sent; ``leave()`` makes ``receive`` answer ``http.disconnect``."""

    def __init__(self, on_body: Callable[[bytes], None] = lambda body: None) -> None:
        self.messages: list[Message] = []
        self.gone = asyncio.Event()
        self.on_body = on_body

    async def receive(self) -> Message:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.messages.append(message)
        if message["type"] == "http.response.body":
            self.on_body(message["body"])

    @property
    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.messages if m["type"] == "http.response.body"]

    def leave(self) -> None:
        self.gone.set()


class Frames:
    """A frame generator that yields ``first`` then waits for ``release``; records how it ended."""

    def __init__(self, first: bytes = b"data: 1\n\n") -> None:
        self.first = first
        self.release = asyncio.Event()
        self.waiting = asyncio.Event()
        self.closed = asyncio.Event()
        self.cancelled = False

    async def __call__(self) -> AsyncIterator[bytes]:
        try:
            yield self.first
            self.waiting.set()
            await self.release.wait()
            yield b"data: 2\n\n"
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        finally:
            self.closed.set()


def stream(
    frames: AsyncIterator[bytes], *, ping: float = 0, send_timeout: float = 0, grace: float = 0
) -> EventStream:
    return EventStream(
        frames, headers={"x-test": "1"}, ping=ping, send_timeout=send_timeout, shutdown_grace_period=grace
    )


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(main())


def test_frames_go_out_in_order_with_the_sse_headers_and_a_final_empty_body() -> None:
    async def main() -> None:
        frames, client = Frames(), Client()
        frames.release.set()
        await stream(frames())(SCOPE, client.receive, client.send)
        start = client.messages[0]
        assert start["type"] == "http.response.start"
        headers = dict(start["headers"])
        assert headers[b"content-type"].startswith(b"text/event-stream")
        assert headers[b"x-test"] == b"1"
        assert client.bodies == [b"data: 1\n\n", b"data: 2\n\n", b""]
        assert client.messages[-1]["more_body"] is False
        assert frames.closed.is_set()

    run(main)


def test_pings_are_comments_sent_while_the_generator_waits() -> None:
    async def main() -> None:
        frames = Frames()
        client = Client(on_body=lambda body: frames.release.set() if body.startswith(b": ping") else None)
        await stream(frames(), ping=0.01)(SCOPE, client.receive, client.send)
        bodies = client.bodies
        assert bodies[0] == b"data: 1\n\n"
        assert bodies[1].startswith(b": ping - ") and bodies[1].endswith(b"\r\n\r\n")
        assert bodies[-2:] == [b"data: 2\n\n", b""]

    run(main)


def test_a_client_disconnect_cancels_the_generator_where_it_waits_and_ends_quietly() -> None:
    async def main() -> None:
        frames, client = Frames(), Client()
        response = asyncio.ensure_future(stream(frames())(SCOPE, client.receive, client.send))
        await frames.waiting.wait()
        client.leave()
        await response  # no exception: the client is gone, there is nobody to tell
        assert frames.cancelled and frames.closed.is_set()
        assert client.bodies == [b"data: 1\n\n"]

    run(main)


def test_a_generator_that_swallows_the_cancellation_is_stopped_at_its_next_frame() -> None:
    closed = []

    async def stubborn() -> AsyncIterator[bytes]:
        try:
            yield b"data: 1\n\n"
            with contextlib.suppress(asyncio.CancelledError):  # the agent misbehaves, on purpose
                await asyncio.Event().wait()
            yield b"data: 2\n\n"
            yield b"data: 3\n\n"
        finally:
            closed.append(True)

    async def main() -> None:
        client = Client(on_body=lambda body: client.leave())
        await stream(stubborn())(SCOPE, client.receive, client.send)
        assert client.bodies == [b"data: 1\n\n"]
        assert closed == [True]
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0

    run(main)


def test_a_write_stuck_past_the_send_timeout_raises_and_closes_the_generator() -> None:
    async def main() -> None:
        frames, client = Frames(), Client()
        frames.release.set()
        stuck = asyncio.Event()

        async def send(message: Message) -> None:
            await client.send(message)
            if message.get("body") == b"data: 1\n\n":
                await stuck.wait()  # a client that stopped reading

        with pytest.raises(SendTimeoutError):
            await stream(frames(), send_timeout=0.02)(SCOPE, client.receive, send)
        assert frames.closed.is_set()
        assert b"data: 2\n\n" not in client.bodies

    run(main)


def test_somebody_elses_cancellation_propagates() -> None:
    async def main() -> None:
        frames, client = Frames(), Client()
        response = asyncio.ensure_future(stream(frames())(SCOPE, client.receive, client.send))
        await frames.waiting.wait()
        response.cancel()
        with pytest.raises(asyncio.CancelledError):
            await response
        assert frames.closed.is_set()

    run(main)


def test_head_is_answered_with_headers_and_no_stream() -> None:
    async def main() -> None:
        frames, client = Frames(), Client()
        await stream(frames())({**SCOPE, "method": "HEAD"}, client.receive, client.send)
        assert client.bodies == [b""]
        assert not frames.waiting.is_set()

    run(main)


@pytest.fixture
def server_stopping() -> Iterator[None]:
    """The signal sse-starlette's patch of uvicorn raises on SIGTERM, put back afterwards."""
    AppStatus.should_exit = True
    try:
        yield
    finally:
        AppStatus.should_exit = False


@pytest.mark.usefixtures("server_stopping")
def test_on_shutdown_a_stream_gets_the_grace_period_to_finish() -> None:
    async def main() -> None:
        frames, client = Frames(), Client()
        response = asyncio.ensure_future(stream(frames(), grace=60)(SCOPE, client.receive, client.send))
        await frames.waiting.wait()
        frames.release.set()
        await response
        assert client.bodies == [b"data: 1\n\n", b"data: 2\n\n", b""]

    run(main)


@pytest.mark.usefixtures("server_stopping")
def test_on_shutdown_a_stream_still_open_after_the_grace_period_is_stopped() -> None:
    async def main() -> None:
        frames, client = Frames(), Client()
        await stream(frames(), grace=0.01)(SCOPE, client.receive, client.send)
        assert frames.cancelled and frames.closed.is_set()
        assert client.bodies == [b"data: 1\n\n"]

    run(main)


def test_a_drain_tells_every_open_stream_once_and_later_streams_at_once() -> None:
    class Stream:
        def __init__(self) -> None:
            self.told = 0
            self.event = asyncio.Event()

        def shutdown(self) -> None:
            self.told += 1
            self.event.set()

    async def main() -> None:
        exit_signal = asyncio.Event()
        drain = Drain(exit_signal.wait)
        first, second, gone, late = Stream(), Stream(), Stream(), Stream()
        for s in (first, second, gone):
            drain.join(s)
        drain.leave(gone)
        exit_signal.set()
        await second.event.wait()
        drain.join(late)
        assert (first.told, second.told, gone.told, late.told) == (1, 1, 0, 1)

    run(main)
