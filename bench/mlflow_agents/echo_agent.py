"""The bench echo agent written for MLflow 3 (models-from-code), run only by a python that has mlflow.

Same behaviour as ``bench/agents/echo_sync.py``: echo the last user message; stream 50 small deltas.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import mlflow
from mlflow.pyfunc import ResponsesAgent
from mlflow.types.responses import ResponsesAgentRequest, ResponsesAgentResponse, ResponsesAgentStreamEvent

DELTAS = 50
ITEM_ID = "msg_1"
USAGE = {
    "input_tokens": 1,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 1,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 2,
}


def last_user_text(request: ResponsesAgentRequest) -> str:
    for item in reversed(request.input):
        fields: Any = item if isinstance(item, dict) else item.model_dump()
        if fields.get("role") == "user" and isinstance(fields.get("content"), str):
            return str(fields["content"])
    return ""


class Echo(ResponsesAgent):
    def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        text = last_user_text(request)
        return ResponsesAgentResponse(output=[self.create_text_output_item(text, ITEM_ID)], usage=USAGE)

    def predict_stream(self, request: ResponsesAgentRequest) -> Iterator[ResponsesAgentStreamEvent]:
        for index in range(DELTAS):
            yield ResponsesAgentStreamEvent(**self.create_text_delta(f"w{index} ", ITEM_ID))
        full = "".join(f"w{index} " for index in range(DELTAS))
        yield ResponsesAgentStreamEvent(
            type="response.output_item.done", item=self.create_text_output_item(full, ITEM_ID)
        )


AGENT = Echo()
mlflow.models.set_model(AGENT)
