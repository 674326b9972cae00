"""HTTP to an OpenAI-compatible upstream: pooled clients, SSE payloads, and errors that are safe to show.

Three rules hold here so the agents above need not think about them:

- One ``httpx.AsyncClient`` per event loop, made on first use: a pool cannot cross loops (its sockets belong
  to one), and uvicorn workers, tests and ``asyncio.run`` scripts each bring their own loop.
- Leaving :meth:`UpstreamClient.stream` closes the response, whatever ended it: a consumer that stops
  iterating (a client disconnect closes the agent's generator), a cancellation, an error. An unfinished
  body cannot go back to the pool, so closing it closes the connection and the upstream sees the abort.
- The API key travels only in the ``Authorization`` header. Every message an :class:`UpstreamError`
  carries is scrubbed of it, and 401/403 answers are not quoted at all (OpenAI echoes part of the key).
"""

from __future__ import annotations

import asyncio
import json
import threading
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

from runtime.errors import AgentError

if TYPE_CHECKING:  # httpx is imported where it is used: it is a tenth of the server's cold start
    import httpx

__all__ = [
    "SSEPayloads",
    "UpstreamBusy",
    "UpstreamClient",
    "UpstreamError",
]

_MAX_ERROR_BODY = 64 * 1024  # bytes of an error answer we read to find its message
_MAX_QUOTE = 300  # characters of upstream text an error message quotes
_CLOSE_WITHIN = 2.0  # seconds closing an aborted response may take, even when cancelled


class UpstreamError(AgentError):
    """The upstream LLM failed: an error status, a malformed answer, a timeout or no connection.

    It is an :class:`~runtime.errors.AgentError` (500 before streaming, an error event after), whose
    message, unlike a foreign exception's, is ours and safe to show: status code and upstream message.
    """

    code = "upstream_error"

    def __init__(self, message: str, *, upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status


class UpstreamBusy(UpstreamError):
    """The upstream LLM is overloaded (429/503): ours becomes a 503 with ``Retry-After``, which the ``openai``
    SDK and load balancers retry by themselves, instead of a 500 that reads as a bug."""

    code = "upstream_busy"
    status = 503


def _retry_after(response: httpx.Response) -> float:
    raw = response.headers.get("retry-after", "")
    try:
        return min(max(float(raw), 0.0), 60.0)
    except ValueError:
        return 1.0


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_QUOTE else text[:_MAX_QUOTE] + "..."


def _error_text(body: bytes) -> str:
    """The message of an error body, in any of the shapes OpenAI, vLLM and Ollama use."""
    try:
        data = json.loads(body)
    except ValueError:
        return _quote(body.decode("utf-8", "replace")) or "(empty body)"
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, str):
            return _quote(error)
        if isinstance(error, dict):
            for key in ("message", "detail", "msg"):
                if isinstance(error.get(key), str):
                    return _quote(error[key])
    return _quote(json.dumps(data))


class SSEPayloads:
    """The JSON payloads of one SSE response, in order; iteration ends at ``data: [DONE]`` or end of body.

    ``done`` tells the two apart: a Chat Completions stream that ends without ``[DONE]`` (or a finish
    reason) was cut short upstream.
    """

    def __init__(self, response: httpx.Response, upstream: UpstreamClient) -> None:
        self._lines = response.aiter_lines()
        self._upstream = upstream
        self.done = False

    def __aiter__(self) -> SSEPayloads:
        return self

    async def __anext__(self) -> dict[str, Any]:
        data: list[str] = []
        if not self.done:
            async for line in self._lines:
                if line:
                    field, _, value = line.partition(":")
                    if field == "data":
                        data.append(value[1:] if value.startswith(" ") else value)
                elif data:
                    return self._decode("\n".join(data))
        if data and not self.done:
            return self._decode("\n".join(data))
        raise StopAsyncIteration

    def _decode(self, text: str) -> dict[str, Any]:
        if text.strip() == "[DONE]":
            self.done = True
            raise StopAsyncIteration
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise self._upstream.error(f"sent a stream event that is not a JSON object: {_quote(text)!r}")
        return payload

    async def aclose(self) -> None:
        await self._lines.aclose()  # type: ignore[attr-defined]  # httpx returns an async generator


class UpstreamClient:
    """Calls one OpenAI-compatible base URL; shared by every request an agent serves."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float) -> None:
        import httpx  # here, not at the top: a server that builds no LLM agent does not import it

        self.base_url = base_url.rstrip("/")
        url = httpx.URL(self.base_url)
        self.where = f"{url.host}:{url.port}" if url.port else url.host  # never the userinfo
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._secret = api_key or None
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"UpstreamClient({self.base_url!r})"

    def client(self) -> httpx.AsyncClient:
        """This loop's pooled client. Limits match the runtime's default concurrency (512 requests)."""
        import httpx

        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.get(loop)
            if client is None or client.is_closed:
                client = httpx.AsyncClient(
                    headers=self._headers,
                    timeout=httpx.Timeout(self.timeout),
                    limits=httpx.Limits(max_connections=512, max_keepalive_connections=64),
                )
                self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Close this loop's client (clients of other loops can only be closed from their loop)."""
        with self._lock:
            client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def error(self, what: str, status: int | None = None, retry_after: float | None = None) -> UpstreamError:
        message = f"upstream LLM ({self.where}) {what}"
        if self._secret:
            message = message.replace(self._secret, "[redacted]")
        if status in (429, 503):
            busy = UpstreamBusy(message, upstream_status=status)
            busy.retry_after = retry_after if retry_after is not None else 1.0
            return busy
        return UpstreamError(message, upstream_status=status)

    def _translate(self, exc: httpx.HTTPError) -> UpstreamError:
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            return self.error(f"did not answer within {self.timeout:g} s ({type(exc).__name__})")
        return self.error(f"could not be reached: {type(exc).__name__}: {_quote(str(exc))}")

    async def _check(self, response: httpx.Response) -> None:
        if response.is_success:
            return
        status = response.status_code
        if status in (401, 403):
            raise self.error(f"refused the API key (HTTP {status})", status)
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= _MAX_ERROR_BODY:
                break
        raise self.error(
            f"answered HTTP {status}: {_error_text(bytes(body))}", status, _retry_after(response)
        )

    async def post_json(
        self, path: str, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """POST and return the JSON object answered; any failure is an :class:`UpstreamError`. ``headers``
        go with this request only (the client's own, the API key's, stay)."""
        import httpx

        url = self.base_url + path
        try:
            async with self.client().stream("POST", url, json=payload, headers=headers) as response:
                await self._check(response)
                body = await response.aread()
        except httpx.HTTPError as exc:
            raise self._translate(exc) from exc
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise self.error(
                f"answered with a body that is not a JSON object: {_quote(body.decode('utf-8', 'replace'))!r}"
            )
        return data

    @asynccontextmanager
    async def stream(
        self, path: str, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> AsyncIterator[SSEPayloads]:
        """POST a streaming request; the block iterates its payloads, leaving it aborts what is unread."""
        import httpx

        client = self.client()
        try:
            request = client.build_request("POST", self.base_url + path, json=payload, headers=headers)
            response = await client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._translate(exc) from exc
        payloads = SSEPayloads(response, self)
        try:
            await self._check(response)
            yield payloads
        except httpx.HTTPError as exc:
            raise self._translate(exc) from exc
        finally:
            # Shielded: a cancelled request must still close its connection, or the upstream keeps
            # generating for nobody. Bounded: a stuck close never holds the request.
            with anyio.move_on_after(_CLOSE_WITHIN, shield=True):
                await payloads.aclose()
                await response.aclose()
