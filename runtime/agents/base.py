"""The agent contract: MLflow 3's ``ResponsesAgent`` shape, so porting an MLflow agent is an import change.

``predict`` and ``predict_stream`` may each be sync or async (``async def`` / async generator). The runtime
runs sync code in a thread pool, never on the event loop. Helpers return plain dicts, as MLflow's do, so
``ResponsesAgentStreamEvent(**self.create_text_delta(...))`` and yielding the dict itself both work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any

from runtime.agents import items
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

    # MLflow's helpers, same names, arguments and dict shapes (see runtime.agents.items).
    create_text_delta = staticmethod(items.create_text_delta)
    create_text_output_item = staticmethod(items.create_text_output_item)
    create_function_call_item = staticmethod(items.create_function_call_item)
    create_function_call_output_item = staticmethod(items.create_function_call_output_item)
    create_reasoning_item = staticmethod(items.create_reasoning_item)
    create_annotation_added = staticmethod(items.create_annotation_added)
    prep_msgs_for_cc_llm = staticmethod(items.to_chat_completions_input)
    _responses_to_cc = staticmethod(items.responses_to_cc)
    output_to_responses_items_stream = staticmethod(items.output_to_responses_items_stream)
    responses_agent_output_reducer = staticmethod(items.responses_agent_output_reducer)
