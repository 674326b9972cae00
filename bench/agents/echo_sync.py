"""Bench agent: echoes the last user message; streams 50 small deltas. Plain ``def`` variants, as MLflow
users write them: the runtime must run them off the event loop."""

from __future__ import annotations

from collections.abc import Iterator
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


class EchoSync(ResponsesAgent):
    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        text = last_user_text(request)
        return ResponsesAgentResponse(output=[self.create_text_output_item(text, ITEM_ID)], usage=USAGE)

    def predict_stream(self, request: ResponsesAgentRequest) -> Iterator[dict[str, Any]]:
        for index in range(DELTAS):
            yield self.create_text_delta(f"w{index} ", ITEM_ID)
        full = "".join(f"w{index} " for index in range(DELTAS))
        yield {"type": "response.output_item.done", "item": self.create_text_output_item(full, ITEM_ID)}


set_agent(EchoSync())
