"""``POST /v1/responses`` (and ``/responses``): the OpenAI Responses API over our agents.

An ASGI handler called by :class:`runtime.front.Front` (see :mod:`runtime.routes.exchange` for why it
skips Starlette's request and response objects); errors are raised and rendered by the front.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from runtime.errors import RuntimeErrorBase
from runtime.protocol.agent import ResponsesAgentResponse, StreamEvent
from runtime.protocol.call import Call
from runtime.protocol.openai import agent_request_of, new_response_id, response_object
from runtime.routes.body import parse_with
from runtime.routes.disconnect import until_disconnect
from runtime.routes.errors import error_body
from runtime.routes.exchange import read_json_asgi, send_json_bytes
from runtime.routes.sse import model_headers, send_sse
from runtime.serving import AgentService
from runtime.state import RuntimeState
from runtime.streaming.responses import ResponsesStream, finished_item
from runtime.streaming.sse import event_frame, json_bytes

__all__ = ["create_response"]


def _usage(call: Call, reported: Any) -> dict[str, Any]:
    """OpenAI's usage object: the agent's own token details (a Usage model or dict) when it reported any."""
    inp, out = call.input_tokens or 0, call.output_tokens or 0
    usage: dict[str, Any] = {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": inp + out,
    }
    if reported is not None:
        for key in ("input_tokens_details", "output_tokens_details"):
            details = reported.get(key) if isinstance(reported, dict) else getattr(reported, key, None)
            if isinstance(details, BaseModel):  # one the agent set, or the shared all-zero default
                details = details.model_dump() if details.model_fields_set or details.model_extra else None
            if isinstance(details, dict):
                usage[key] = {**usage[key], **details}
    return usage


async def create_response(state: RuntimeState, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
    body = await read_json_asgi(scope, receive, state.settings.max_body_bytes)
    agent_request, instructions = parse_with(agent_request_of, body)
    stream = bool(agent_request.stream)
    service = state.service
    parent = scope["state"].get("traceparent")  # the front put it there, and tracestate with it
    vendors = scope["state"].get("tracestate") if parent else None
    call = service.new_call(
        rid, "/v1/responses", stream, agent_request, Headers(scope=scope), parent, vendors
    )
    metadata = {**(agent_request.metadata or {}), "trace_id": f"tr-{call.trace_id}"}
    shell = response_object(
        response_id=new_response_id(),
        created_at=int(time.time()),
        model=agent_request.model or call.model.name,
        status="in_progress",
        output=[],
        usage=None,
        request=agent_request,
        instructions=instructions,
        metadata=metadata,
    )
    headers = model_headers(call)
    if stream:
        await send_sse(
            _stream(service, agent_request, call, shell), state.settings, headers, (scope, receive, send)
        )
        return

    def encode(result: ResponsesAgentResponse) -> bytes:
        shell["status"] = "completed"
        shell["output"] = [finished_item(item) for item in result.output]
        shell["usage"] = _usage(call, result.usage)
        if result.custom_outputs is not None:  # MLflow's agent server sends them too
            shell["custom_outputs"] = result.custom_outputs
        return orjson.dumps(shell)

    await send_json_bytes(
        send, await until_disconnect(receive, service.invoke(agent_request, call, encode), headers), headers
    )


async def _stream(
    service: AgentService, agent_request: Any, call: Call, shell: dict[str, Any]
) -> AsyncIterator[bytes]:
    """One chunk per agent event: the events it expands to (item added, part added, delta) go out in one
    write instead of one write each."""
    builder = ResponsesStream(shell)
    yield _frames(builder.start())

    def frames(agent_event: StreamEvent) -> bytes:
        done = len(builder.output)
        events = builder.feed(agent_event)
        try:
            return _frames(events) if events else b""
        except Exception:
            builder.forget_since(
                done
            )  # an item that cannot be sent is not part of what response.failed shows
            raise

    try:
        async for chunk in service.stream(agent_request, call, frames):
            if chunk:
                yield chunk
    except RuntimeErrorBase as exc:
        error = error_body(exc, call.request_id)["error"]
        yield _frames(builder.fail({"code": error["code"], "message": error["message"]}))
        return
    yield _frames(builder.finish(_usage(call, builder.usage)))


def _frames(events: list[dict[str, Any]]) -> bytes:
    if len(events) == 1:
        event = events[0]
        return event_frame(event["type"], json_bytes(event))
    return b"".join([event_frame(event["type"], json_bytes(event)) for event in events])
