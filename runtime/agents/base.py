"""The agent contract: MLflow 3's ``ResponsesAgent`` shape, so porting an MLflow agent is an import change.

``predict`` and ``predict_stream`` may each be sync or async (``async def`` / async generator). The runtime
runs sync code in a thread pool, never on the event loop. Helpers return plain dicts, as MLflow's do, so
``ResponsesAgentStreamEvent(**self.create_text_delta(...))`` and yielding the dict itself both work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any

from runtime.protocol.agent import ResponsesAgentRequest, ResponsesAgentResponse, ResponsesAgentStreamEvent

__all__ = ["ResponsesAgent"]

EventLike = ResponsesAgentStreamEvent | dict[str, Any]


class ResponsesAgent:
    """Subclass and implement ``predict`` (required) and optionally ``predict_stream``.

    Without ``predict_stream`` the runtime streams ``predict``'s result as one item per output; without
    ``predict`` overridden the runtime collects ``predict_stream``'s items into a response.
    """

    name: str | None = None

    def predict(
        self, request: ResponsesAgentRequest
    ) -> ResponsesAgentResponse | Awaitable[ResponsesAgentResponse]:
        raise NotImplementedError

    def predict_stream(
        self, request: ResponsesAgentRequest
    ) -> Iterator[EventLike] | AsyncIterator[EventLike]:
        raise NotImplementedError

    # MLflow's helper names, same arguments, same dict shapes.
    @staticmethod
    def create_text_delta(delta: str, item_id: str) -> dict[str, Any]:
        return {"type": "response.output_text.delta", "item_id": item_id, "delta": delta}

    @staticmethod
    def create_text_output_item(
        text: str, id: str, annotations: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        return {
            "id": id,
            "content": [{"text": text, "type": "output_text", "annotations": annotations or []}],
            "role": "assistant",
            "type": "message",
        }

    @staticmethod
    def create_function_call_item(id: str, call_id: str, name: str, arguments: str) -> dict[str, Any]:
        return {"type": "function_call", "id": id, "call_id": call_id, "name": name, "arguments": arguments}

    @staticmethod
    def create_function_call_output_item(call_id: str, output: str) -> dict[str, Any]:
        return {"type": "function_call_output", "call_id": call_id, "output": output}

    @staticmethod
    def create_reasoning_item(id: str, reasoning_text: str) -> dict[str, Any]:
        return {"type": "reasoning", "id": id, "summary": [{"type": "summary_text", "text": reasoning_text}]}

    @staticmethod
    def create_annotation_added(
        item_id: str, annotation: dict[str, Any], annotation_index: int | None = 0
    ) -> dict[str, Any]:
        return {
            "type": "response.output_text.annotation.added",
            "item_id": item_id,
            "annotation_index": annotation_index,
            "annotation": annotation,
        }

    @staticmethod
    def prep_msgs_for_cc_llm(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Turn Responses input items into Chat Completions messages (text messages and tool calls)."""
        from runtime.agents.chat import responses_to_chat_messages

        return responses_to_chat_messages(items)
