"""A small OpenAI-compatible LLM server, run under a real uvicorn on loopback, for tests that call an LLM.

Why a real server: the things worth testing (SSE framing as a client parses it, a client hanging up in the
middle of a stream, connection reuse) only happen over a socket. ``httpx.MockTransport`` cannot show them.

Use it as a context manager or from a pytest fixture::

    from tests.fakes.openai_server import FakeLLM, Reply, ToolCall, Usage

    @pytest.fixture
    def llm() -> Iterator[FakeLLM]:
        with FakeLLM.running() as server:       # uvicorn on 127.0.0.1:<free port>, in a thread
            yield server                        # (or: yield from serve())

    def test_something(llm: FakeLLM) -> None:
        llm.reply = Reply(text="Hi there", usage=Usage(input_tokens=12, output_tokens=2))
        client = OpenAI(base_url=llm.base_url, api_key="k")       # llm.base_url ends in /v1
        ...
        assert llm.requests[-1].body["stream_options"] == {"include_usage": True}
        assert llm.wait_for_disconnect(timeout=1.0)               # a stream was cut by its client

Endpoints: ``POST /v1/chat/completions`` (JSON, or SSE ``data: {chat.completion.chunk}`` ... ``data: [DONE]``
with ``"stream": true``, plus a usage chunk when ``stream_options.include_usage``), ``POST /v1/responses``
(a Response object, or the full ``event:``/``data:`` event sequence), ``GET /v1/models``.

Scripting, all on :class:`Reply`:

- ``text`` (streamed as ``chunks``, by default one word per chunk) and ``tool_calls`` (sent only when the
  request has ``tools``; arguments stream in fragments of ``arg_fragment`` characters);
- ``usage`` reported by the endpoint; ``delay`` seconds before each streamed chunk (before the whole answer
  when not streaming);
- ``fail``: an HTTP status (``500``, ``429``, ...) answered with an OpenAI error body before any byte;
  ``"malformed"``: a body that is not JSON (streams send one good chunk, then a frame that is not JSON);
  ``"truncated"``: a stream that sends one chunk and ends without its terminator.

``llm.reply`` is the default answer; ``llm.script(r1, r2)`` queues answers used one per request first;
``llm.reset()`` forgets everything (for a module-scoped server shared by many tests).
Recorded for the test: ``requests`` (path, parsed body, headers), ``disconnects`` (streams whose client went
away before the end, with :meth:`FakeLLM.wait_for_disconnect` / :meth:`FakeLLM.await_disconnect`),
``streams_started`` / ``streams_finished`` with :meth:`FakeLLM.wait_for_stream_start`.

:class:`ServerThread` runs any ASGI app the same way (the runtime under test, for instance).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["FakeLLM", "Recorded", "Reply", "ServerThread", "ToolCall", "Usage", "serve"]

Failure = int | Literal["malformed", "truncated"]


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 11
    output_tokens: int = 7
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def chat(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }

    def responses(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.input_tokens + self.output_tokens,
        }


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str = "{}"
    call_id: str = "call_1"


@dataclass(frozen=True)
class Reply:
    text: str = "Hello from the fake LLM."
    chunks: tuple[str, ...] | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    delay: float = 0.0
    fail: Failure | None = None
    error_message: str = "the fake LLM failed on purpose"
    arg_fragment: int = 5

    def text_chunks(self) -> list[str]:
        if self.chunks is not None:
            return list(self.chunks)
        words = self.text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)] if self.text else []


@dataclass(frozen=True)
class Recorded:
    path: str
    body: Any
    headers: dict[str, str]


_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error"}


def _fragments(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _error_response(reply: Reply, status: int) -> Response:
    body = {
        "error": {
            "message": reply.error_message,
            "type": _ERROR_TYPES.get(status, "server_error"),
            "param": None,
            "code": None,
        }
    }
    headers = {"retry-after": "1"} if status == 429 else {}
    return JSONResponse(body, status_code=status, headers=headers)


class _EventStream(Response):
    """SSE body that watches for the client hanging up, whatever ASGI spec version the server declares.

    The frames stop as soon as ``http.disconnect`` arrives, and the cut is recorded on the server: that is
    how a test proves its client really aborted the upstream request.
    """

    def __init__(self, frames: AsyncGenerator[bytes, None], owner: FakeLLM) -> None:
        super().__init__()
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
        ]
        self.frames = frames
        self.owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        self.owner._count("streams_started")
        finished = False
        cut = False

        async def watch(scope_to_cancel: anyio.CancelScope) -> None:
            nonlocal cut
            while (await receive())["type"] != "http.disconnect":
                pass
            cut = not finished
            scope_to_cancel.cancel()

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(watch, group.cancel_scope)
                async for frame in self.frames:
                    await send({"type": "http.response.body", "body": frame, "more_body": True})
                finished = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self.frames.aclose()
        self.owner._count("disconnects" if cut else "streams_finished")


def _data(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _event(payload: dict[str, Any]) -> bytes:
    return b"event: " + str(payload["type"]).encode() + b"\n" + _data(payload)


class FakeLLM:
    """The scripted upstream. Build it, then :meth:`running` serves it; see the module docstring."""

    def __init__(self, reply: Reply | None = None) -> None:
        self.reply = reply or Reply()
        self.requests: list[Recorded] = []
        self.streams_started = 0
        self.streams_finished = 0
        self.disconnects = 0
        self._queue: deque[Reply] = deque()
        self._changed = threading.Condition()
        self._ids = itertools.count(1)
        self.base_url = ""
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/responses", self._responses, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    @classmethod
    def running(cls, reply: Reply | None = None) -> _RunningFake:
        return _RunningFake(cls(reply))

    def reset(self, reply: Reply | None = None) -> None:
        """Back to a fresh server (default reply, nothing queued or recorded), for a module-scoped fixture."""
        with self._changed:
            self.reply = reply or Reply()
            self._queue.clear()
            self.requests.clear()
            self.streams_started = self.streams_finished = self.disconnects = 0

    def script(self, *replies: Reply) -> None:
        """Queue replies, used one per request before falling back to :attr:`reply`."""
        self._queue.extend(replies)

    # --- waiting on what happened, from the test's thread or from any event loop -------------------

    def _count(self, name: str) -> None:
        with self._changed:
            setattr(self, name, getattr(self, name) + 1)
            self._changed.notify_all()

    def _wait(self, name: str, count: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: bool(getattr(self, name) >= count), timeout=timeout)

    def wait_for_disconnect(self, count: int = 1, timeout: float = 1.0) -> bool:
        """True once ``count`` streams were cut by their client; False after ``timeout`` seconds."""
        return self._wait("disconnects", count, timeout)

    async def await_disconnect(self, count: int = 1, timeout: float = 1.0) -> bool:
        return await asyncio.to_thread(self.wait_for_disconnect, count, timeout)

    def wait_for_stream_start(self, count: int = 1, timeout: float = 5.0) -> bool:
        return self._wait("streams_started", count, timeout)

    # --- endpoints ----------------------------------------------------------------------------------

    async def _take(self, request: Request) -> tuple[Reply, dict[str, Any]]:
        body = await request.json()
        self.requests.append(Recorded(request.url.path, body, dict(request.headers)))
        reply = self._queue.popleft() if self._queue else self.reply
        return reply, body if isinstance(body, dict) else {}

    async def _models(self, request: Request) -> Response:
        model = {"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}
        return JSONResponse({"object": "list", "data": [model]})

    async def _chat(self, request: Request) -> Response:
        reply, body = await self._take(request)
        if isinstance(reply.fail, int):
            return _error_response(reply, reply.fail)
        calls = reply.tool_calls if body.get("tools") else ()
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return _EventStream(self._chat_frames(reply, body, calls, usage), self)
        await anyio.sleep(reply.delay)
        if reply.fail == "malformed":
            return Response(b"<html>not json", media_type="application/json")
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if calls:
            message["tool_calls"] = [
                {"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in calls
            ]
        choice = {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
        return JSONResponse(
            {
                "id": f"chatcmpl-{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake-model"),
                "choices": [choice],
                "usage": reply.usage.chat(),
            }
        )

    async def _chat_frames(
        self, reply: Reply, body: dict[str, Any], calls: tuple[ToolCall, ...], usage: bool
    ) -> AsyncGenerator[bytes, None]:
        base = {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", "fake-model"),
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return _data({**base, "choices": [choice], **({"usage": None} if usage else {})})

        yield chunk({"role": "assistant", "content": ""})
        for i, text in enumerate(reply.text_chunks()):
            await anyio.sleep(reply.delay)
            yield chunk({"content": text})
            if i == 0 and reply.fail == "malformed":
                yield b'data: {"choices": [oops\n\n'
                return
            if i == 0 and reply.fail == "truncated":
                return
        for index, call in enumerate(calls):
            head = {"index": index, "id": call.call_id, "type": "function"}
            yield chunk({"tool_calls": [{**head, "function": {"name": call.name, "arguments": ""}}]})
            for part in _fragments(call.arguments, reply.arg_fragment):
                await anyio.sleep(reply.delay)
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
        yield chunk({}, "tool_calls" if calls else "stop")
        if usage:
            yield _data({**base, "choices": [], "usage": reply.usage.chat()})
        yield b"data: [DONE]\n\n"

    async def _responses(self, request: Request) -> Response:
        reply, body = await self._take(request)
        if isinstance(reply.fail, int):
            return _error_response(reply, reply.fail)
        calls = reply.tool_calls if body.get("tools") else ()
        if body.get("stream"):
            return _EventStream(self._response_frames(reply, body, calls), self)
        await anyio.sleep(reply.delay)
        if reply.fail == "malformed":
            return Response(b"<html>not json", media_type="application/json")
        output = [self._message(reply.text, "completed")] if reply.text else []
        output += [self._function_call(c, c.arguments, "completed") for c in calls]
        return JSONResponse(self._response(body, "completed", output, reply.usage))

    def _response(
        self, body: dict[str, Any], status: str, output: list[dict[str, Any]], usage: Usage | None
    ) -> dict[str, Any]:
        return {
            "id": f"resp_{next(self._ids)}",
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "model": body.get("model", "fake-model"),
            "output": output,
            "usage": usage.responses() if usage else None,
            "error": None,
            "incomplete_details": None,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": body.get("tools") or [],
        }

    def _message(self, text: str, status: str) -> dict[str, Any]:
        part = {"type": "output_text", "text": text, "annotations": []}
        return {
            "type": "message",
            "id": f"msg_{next(self._ids)}",
            "status": status,
            "role": "assistant",
            "content": [part] if status == "completed" else [],
        }

    def _function_call(self, call: ToolCall, arguments: str, status: str) -> dict[str, Any]:
        return {
            "type": "function_call",
            "id": f"fc_{next(self._ids)}",
            "call_id": call.call_id,
            "name": call.name,
            "arguments": arguments,
            "status": status,
        }

    async def _response_frames(
        self, reply: Reply, body: dict[str, Any], calls: tuple[ToolCall, ...]
    ) -> AsyncGenerator[bytes, None]:
        seq = itertools.count()

        def event(kind: str, **fields: Any) -> bytes:
            return _event({"type": kind, "sequence_number": next(seq), **fields})

        shell = self._response(body, "in_progress", [], None)
        yield event("response.created", response=shell)
        yield event("response.in_progress", response=shell)
        output: list[dict[str, Any]] = []
        if reply.text:
            item = self._message("", "in_progress")
            at = {"item_id": item["id"], "output_index": 0, "content_index": 0}
            yield event("response.output_item.added", output_index=0, item=item)
            part = {"type": "output_text", "text": "", "annotations": []}
            yield event("response.content_part.added", **at, part=part)
            for i, text in enumerate(reply.text_chunks()):
                await anyio.sleep(reply.delay)
                yield event("response.output_text.delta", **at, delta=text, logprobs=[])
                if i == 0 and reply.fail == "malformed":
                    yield b"event: response.output_text.delta\ndata: {oops\n\n"
                    return
                if i == 0 and reply.fail == "truncated":
                    return
            done = {**item, "status": "completed", "content": [{**part, "text": reply.text}]}
            yield event("response.output_text.done", **at, text=reply.text, logprobs=[])
            yield event("response.content_part.done", **at, part=done["content"][0])
            yield event("response.output_item.done", output_index=0, item=done)
            output.append(done)
        for call in calls:
            index = len(output)
            item = self._function_call(call, "", "in_progress")
            yield event("response.output_item.added", output_index=index, item=item)
            for part_args in _fragments(call.arguments, reply.arg_fragment):
                await anyio.sleep(reply.delay)
                yield event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=index,
                    delta=part_args,
                )
            yield event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                arguments=call.arguments,
            )
            done = {**item, "arguments": call.arguments, "status": "completed"}
            yield event("response.output_item.done", output_index=index, item=done)
            output.append(done)
        final = {**shell, "status": "completed", "output": output, "usage": reply.usage.responses()}
        yield event("response.completed", response=final)


class _Uvicorn(uvicorn.Server):
    """uvicorn that tells another thread when it is accepting (or has given up)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()


class ServerThread:
    """Runs an ASGI app under a real uvicorn on ``127.0.0.1:<free port>`` in a thread; a context manager.

    Startup and shutdown are bounded: entering fails after ``startup_timeout`` seconds, and leaving gives
    in-flight streams ``grace`` seconds before uvicorn cancels them.
    """

    def __init__(
        self, app: ASGIApp, *, grace: int = 1, startup_timeout: float = 10.0, loop: str = "asyncio"
    ) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, log_config=None, log_level="warning", timeout_graceful_shutdown=grace, loop=loop
        )
        self._server = _Uvicorn(config)
        self._startup_timeout = startup_timeout
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"uvicorn-{self.port}", daemon=True)

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # reported to the test thread, which owns the failure
            self._failure = exc
        finally:
            self._server.ready.set()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        if not self._server.ready.wait(self._startup_timeout) or not self._server.started:
            self.__exit__(None, None, None)
            raise RuntimeError(f"uvicorn did not start on port {self.port}") from self._failure
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10.0)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=5.0)
        self._sock.close()
        if self._thread.is_alive():
            raise RuntimeError(f"uvicorn on port {self.port} did not stop")


class _RunningFake:
    def __init__(self, fake: FakeLLM) -> None:
        self.fake = fake
        self.thread = ServerThread(fake.app)

    def __enter__(self) -> FakeLLM:
        self.thread.__enter__()
        self.fake.base_url = f"{self.thread.url}/v1"
        return self.fake

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.thread.__exit__(kind, exc, tb)


def serve(fake: FakeLLM | None = None) -> Iterator[FakeLLM]:
    """Generator form for ``yield from`` in a pytest fixture: ``yield from serve()``."""
    with _RunningFake(fake or FakeLLM()) as running:
        yield running
