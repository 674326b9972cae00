"""Bench agent: echoes the last user message; streams 50 small deltas. ``async`` variants."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from runtime.agents import ResponsesAgent, ResponsesAgentRequest, ResponsesAgentResponse, set_agent

DELTAS = 50
ITEM_ID = "msg_1"
USAGE = {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}


def last_user_text(request: ResponsesAgentRequest) -> str:
    for item in reversed(request.input):
        fields: Any = item if isinstance(item, dict) else vars(item)
        if fields.get("role") == "user" and isinstance(fields.get("content"), str):
            return str(fields["content"])
    return ""


class EchoAsync(ResponsesAgent):
    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        text = last_user_text(request)
        return ResponsesAgentResponse(output=[self.create_text_output_item(text, ITEM_ID)], usage=USAGE)

    async def predict_stream(self, request: ResponsesAgentRequest) -> AsyncIterator[dict[str, Any]]:
        for index in range(DELTAS):
            yield self.create_text_delta(f"w{index} ", ITEM_ID)
        full = "".join(f"w{index} " for index in range(DELTAS))
        yield {"type": "response.output_item.done", "item": self.create_text_output_item(full, ITEM_ID)}


set_agent(EchoAsync())
