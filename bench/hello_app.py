"""The load generator's ceiling: a raw ASGI app on uvicorn that answers every request with canned bytes.

No framework and no JSON work, so what it reaches is bounded by uvicorn and the load generator, not by an app.
A body containing ``"stream": true`` gets 50 canned SSE frames (one chunk each) and ``data: [DONE]``.

    python -m bench.hello_app --port 8002
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn

__all__ = ["app", "main"]

_JSON_HEADERS = [(b"content-type", b"application/json")]
_SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
_HELLO = b'{"hello":"world"}'
_FRAME = b'data: {"type":"response.output_text.delta","item_id":"msg_1","delta":"w "}\n\n'
_FRAMES = 50
_MAX_BODY_MESSAGES = 10_000


async def _read_body(receive: Any) -> bytes:
    chunks: list[bytes] = []
    for _ in range(_MAX_BODY_MESSAGES):
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = await _read_body(receive)
    if b'"stream": true' in body or b'"stream":true' in body:
        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        for _ in range(_FRAMES):
            await send({"type": "http.response.body", "body": _FRAME, "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
        return
    headers = [*_JSON_HEADERS, (b"content-length", str(len(_HELLO)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": _HELLO})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
