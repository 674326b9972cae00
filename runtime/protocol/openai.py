"""OpenAI Responses API: the create request we accept and the Response object we answer with.

Only the fields a client of ``POST /v1/responses`` may send are modelled on the request; anything else the
SDK sends (``include``, ``store``, ``reasoning``, ...) is kept and handed to the agent unchanged.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from runtime.ids import hex_id
from runtime.protocol.agent import ResponsesAgentRequest

__all__ = ["ResponsesCreateRequest", "new_item_id", "new_response_id", "response_object"]


class ResponsesCreateRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    input: str | list[dict[str, Any]]
    model: str | None = None
    instructions: str | None = None
    stream: bool = False
    metadata: dict[str, str] | None = None
    user: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    previous_response_id: str | None = None
    custom_inputs: dict[str, Any] | None = None
    context: dict[str, Any] | None = None

    @field_validator("input")
    @classmethod
    def _not_empty(cls, value: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
        if not value:
            raise ValueError("input must not be empty")
        return value

    def to_agent_request(self) -> ResponsesAgentRequest:
        items: list[dict[str, Any]] = (
            [{"role": "user", "content": self.input}] if isinstance(self.input, str) else list(self.input)
        )
        if self.instructions:
            items.insert(0, {"role": "system", "content": self.instructions})
        fields = self.model_dump(exclude_none=True, exclude={"input", "instructions", "stream", "context"})
        context = dict(self.context or {})
        if self.user and "user_id" not in context:
            context["user_id"] = self.user
        return ResponsesAgentRequest.model_validate(
            {"input": items, "stream": self.stream, "context": context or None, **fields}
        )


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
    request: ResponsesCreateRequest | None = None,
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
        "instructions": req.instructions if req else None,
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
