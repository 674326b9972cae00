"""``POST /invocations``: MLflow's scoring-server contract for a ResponsesAgent, plus streaming.

An ASGI handler called by :class:`runtime.front.Front`, like :mod:`runtime.routes.responses`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from runtime.errors import RuntimeErrorBase
from runtime.protocol.agent import ResponsesAgentRequest, ResponsesAgentResponse, StreamEvent
from runtime.protocol.call import Call
from runtime.routes.body import parse_model
from runtime.routes.disconnect import until_disconnect
from runtime.routes.errors import error_body
from runtime.routes.exchange import read_json_asgi, send_json_bytes
from runtime.routes.sse import model_headers, send_sse
from runtime.serving import AgentService
from runtime.state import RuntimeState
from runtime.streaming.sse import DONE_FRAME, data_frame, json_bytes

__all__ = ["invocations"]


async def invocations(state: RuntimeState, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
    body = await read_json_asgi(scope, receive, state.settings.max_body_bytes)
    if isinstance(body, dict) and isinstance(body.get("input"), str) and body["input"]:
        body = {**body, "input": [{"role": "user", "content": body["input"]}]}
    agent_request = parse_model(ResponsesAgentRequest, body)
    stream = bool(agent_request.stream)
    service = state.service
    parent = scope["state"].get("traceparent")  # the front put it there, and tracestate with it
    vendors = scope["state"].get("tracestate") if parent else None
    call = service.new_call(rid, "/invocations", stream, agent_request, Headers(scope=scope), parent, vendors)
    headers = model_headers(call)
    if stream:
        await send_sse(_stream(service, agent_request, call), state.settings, headers, (scope, receive, send))
        return
    answer = await until_disconnect(receive, service.invoke(agent_request, call, _body), headers)
    await send_json_bytes(send, answer, headers)


def _body(response: ResponsesAgentResponse) -> bytes:
    return orjson.dumps(response.model_dump(exclude_none=True))


def _frame(event: StreamEvent) -> bytes:
    return data_frame(json_bytes(event.model_dump(exclude_none=True)))


async def _stream(
    service: AgentService, agent_request: ResponsesAgentRequest, call: Call
) -> AsyncIterator[bytes]:
    try:
        async for frame in service.stream(agent_request, call, _frame):
            yield frame
    except RuntimeErrorBase as exc:
        error = error_body(exc, call.request_id)["error"]
        failed = {
            "type": "error",
            "code": error["code"],
            "message": error["message"],
            "request_id": call.request_id,
        }
        yield data_frame(json_bytes(failed))
    yield DONE_FRAME
