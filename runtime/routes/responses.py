"""``POST /v1/responses`` (and ``/responses``): the OpenAI Responses API over our agents."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from runtime.errors import RuntimeErrorBase
from runtime.protocol.call import Call
from runtime.protocol.openai import ResponsesCreateRequest, new_response_id, response_object
from runtime.routes.body import parse_model, read_json
from runtime.routes.disconnect import until_disconnect
from runtime.routes.errors import error_body
from runtime.routes.sse import json_response, model_headers, request_id_of, sse_response
from runtime.serving import AgentService
from runtime.state import runtime_state
from runtime.streaming.responses import ResponsesStream, finished_item
from runtime.streaming.sse import event_frame, json_bytes

__all__ = ["create_response"]


def _usage(call: Call, reported: dict[str, Any] | None) -> dict[str, Any]:
    """OpenAI's usage object: the agent's own (with its token details) when it reported one."""
    inp, out = call.input_tokens or 0, call.output_tokens or 0
    usage: dict[str, Any] = {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": inp + out,
    }
    if reported:
        for key in ("input_tokens_details", "output_tokens_details"):
            if isinstance(reported.get(key), dict):
                usage[key] = {**usage[key], **reported[key]}
    return usage


async def create_response(request: Request) -> Response:
    state = runtime_state(request)
    body = await read_json(request, state.settings.max_body_bytes)
    req = parse_model(ResponsesCreateRequest, body)
    agent_request = req.to_agent_request()
    service = state.service
    call = service.new_call(
        request_id_of(request), "/v1/responses", req.stream, agent_request, request.headers
    )
    metadata = {**(req.metadata or {}), "trace_id": f"tr-{call.trace_id}"}
    shell = response_object(
        response_id=new_response_id(),
        created_at=int(time.time()),
        model=req.model or call.model.name,
        status="in_progress",
        output=[],
        usage=None,
        request=req,
        metadata=metadata,
    )
    headers = model_headers(call)
    if req.stream:
        return sse_response(_stream(service, agent_request, call, shell), state.settings, headers)
    result = await until_disconnect(request.receive, service.invoke(agent_request, call), headers)
    output = [finished_item(item) for item in result.output]
    usage = _usage(call, result.usage.model_dump() if result.usage else None)
    return json_response({**shell, "status": "completed", "output": output, "usage": usage}, headers)


async def _stream(
    service: AgentService, agent_request: Any, call: Call, shell: dict[str, Any]
) -> AsyncIterator[bytes]:
    """One chunk per agent event: the events it expands to (item added, part added, delta) go out in one
    write instead of one write each."""
    builder = ResponsesStream(shell)
    yield _frames(builder.start())
    try:
        async for agent_event in service.stream(agent_request, call):
            events = builder.feed(agent_event)
            if events:
                yield _frames(events)
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
