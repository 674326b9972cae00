"""The practical ceiling: a bare Starlette + sse-starlette app on uvicorn serving the runtime's payloads.

Same paths, same JSON, same SSE sequences, no validation models, tracing or metrics. ``--delta-interval``
sleeps between deltas for the slow-streams scenario.

    python -m bench.bare_app --port 8001 [--deltas 50] [--delta-interval 0]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import uvicorn
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.payloads import (
    DEFAULT_DELTAS,
    agent_response,
    invocation_stream,
    last_user_text,
    openai_response,
    responses_stream,
)

__all__ = ["create_app", "main"]


def _json(payload: dict[str, Any]) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json")


async def _paced(
    events: Iterator[dict[str, Any]], interval: float, named: bool
) -> AsyncIterator[dict[str, str]]:
    for event in events:
        kind = event["type"]
        frame = {"data": orjson.dumps(event).decode()}
        if named:
            frame["event"] = kind
        yield frame
        if interval and kind.endswith("output_text.delta"):
            await asyncio.sleep(interval)


def create_app(deltas: int = DEFAULT_DELTAS, interval: float = 0.0) -> Starlette:
    async def invocations(request: Request) -> Response:
        body = orjson.loads(await request.body())
        if body.get("stream"):
            return EventSourceResponse(_with_done(_paced(invocation_stream(deltas), interval, named=False)))
        return _json(agent_response(last_user_text(body.get("input"))))

    async def responses(request: Request) -> Response:
        body = orjson.loads(await request.body())
        model = str(body.get("model", "echo"))
        if body.get("stream"):
            return EventSourceResponse(_paced(responses_stream(model, deltas), interval, named=True))
        return _json(openai_response(model, last_user_text(body.get("input"))))

    async def ready(request: Request) -> Response:
        return _json({"status": "ready"})

    return Starlette(
        routes=[
            Route("/invocations", invocations, methods=["POST"]),
            Route("/v1/responses", responses, methods=["POST"]),
            Route("/ready", ready),
            Route("/health", ready),
        ]
    )


async def _with_done(frames: AsyncIterator[dict[str, str]]) -> AsyncIterator[dict[str, str]]:
    async for frame in frames:
        yield frame
    yield {"data": "[DONE]"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--deltas", type=int, default=DEFAULT_DELTAS)
    parser.add_argument("--delta-interval", type=float, default=0.0)
    args = parser.parse_args(argv)
    app = create_app(args.deltas, args.delta_interval)
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
