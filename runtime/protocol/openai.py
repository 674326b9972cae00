"""OpenAI Responses API: the create request we accept and the Response object we answer with.

A create request is validated once, as the agent's request (:func:`agent_request_of`): the fields a client of
``POST /v1/responses`` may send are those :class:`ResponsesAgentRequest` models, and anything else the SDK
sends (``include``, ``store``, ``reasoning``, ...) is kept and handed to the agent unchanged.
"""

from __future__ import annotations

import time
from typing import Any

from runtime.ids import hex_id
from runtime.protocol.agent import ResponsesAgentRequest

__all__ = ["OUTPUT_EVENTS", "agent_request_of", "new_item_id", "new_response_id", "response_object"]

# The stream events of the Responses API that carry output: the first of them is an upstream's first token
# (its lifecycle events, ``response.created`` and ``in_progress``, come before any).
OUTPUT_EVENTS = frozenset(
    {
        "response.output_text.delta",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_text.delta",
    }
)


def agent_request_of(body: dict[str, Any]) -> tuple[ResponsesAgentRequest, str | None]:
    """The agent's request for a create-response body, validated once, and the request's ``instructions``.

    A string ``input`` becomes one user message, ``instructions`` a system message before the input (and
    leave the request: the agent sees them once), ``user`` the context's ``user_id`` unless the context
    names one; ``stream`` defaults to false. Every other field the client sent (``include``, ``store``,
    ``reasoning``, ...) is handed to the agent as is. Raises pydantic's ``ValidationError``.
    """
    fields = dict(body)
    given = fields.get("input")
    items: Any = [{"role": "user", "content": given}] if isinstance(given, str) else given
    instructions = fields.get("instructions")
    if instructions and isinstance(items, list):
        items = [{"role": "system", "content": instructions}, *items]
    fields["input"] = items
    if fields.get("stream") is None:
        fields["stream"] = False
    user, context = fields.get("user"), fields.get("context")
    if user and (context is None or isinstance(context, dict)) and "user_id" not in (context or {}):
        fields["context"] = {**(context or {}), "user_id": user}
    elif context == {}:
        fields["context"] = None
    request = ResponsesAgentRequest.model_validate(fields)  # validates instructions too
    instructions, request.instructions = request.instructions, None
    return request, instructions


def new_response_id() -> str:
    return "resp_" + hex_id(16)


def new_item_id(prefix: str = "msg") -> str:
    return f"{prefix}_{hex_id(12)}"


def response_object(
    *,
    response_id: str,
    created_at: int | None,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    request: ResponsesAgentRequest | None = None,
    instructions: str | None = None,
    metadata: dict[str, str] | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Response object exactly as OpenAI shapes it (every field the SDK's model declares)."""
    req = request
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at if created_at is not None else int(time.time()),
        "status": status,
        "error": error,
        "incomplete_details": None,
        "instructions": instructions,
        "max_output_tokens": req.max_output_tokens if req else None,
        "model": model,
        "output": output,
        "parallel_tool_calls": req.parallel_tool_calls
        if req and req.parallel_tool_calls is not None
        else True,
        "previous_response_id": req.previous_response_id if req else None,
        "temperature": req.temperature if req else None,
        "tool_choice": req.tool_choice if req and req.tool_choice is not None else "auto",
        "tools": req.tools if req and req.tools is not None else [],
        "top_p": req.top_p if req else None,
        "truncation": "disabled",
        "usage": usage,
        "user": req.user if req else None,
        "metadata": metadata or {},
    }
