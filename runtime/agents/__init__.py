"""What agent authors import: the ResponsesAgent contract, its wire types, MLflow's item helpers and
``set_agent``. Porting an MLflow agent: ``mlflow.pyfunc.ResponsesAgent`` and ``mlflow.types.responses``
-> ``runtime.agents``, ``mlflow.models.set_model`` -> ``set_agent``."""

from runtime.agents.base import ResponsesAgent
from runtime.agents.items import (
    create_annotation_added,
    create_function_call_item,
    create_function_call_output_item,
    create_reasoning_item,
    create_text_delta,
    create_text_output_item,
    output_to_responses_items_stream,
    responses_agent_output_reducer,
    responses_to_cc,
    to_chat_completions_input,
)
from runtime.agents.registration import set_agent
from runtime.protocol.agent import (
    ResponsesAgentRequest,
    ResponsesAgentResponse,
    ResponsesAgentStreamEvent,
)

__all__ = [
    "ResponsesAgent",
    "ResponsesAgentRequest",
    "ResponsesAgentResponse",
    "ResponsesAgentStreamEvent",
    "create_annotation_added",
    "create_function_call_item",
    "create_function_call_output_item",
    "create_reasoning_item",
    "create_text_delta",
    "create_text_output_item",
    "output_to_responses_items_stream",
    "responses_agent_output_reducer",
    "responses_to_cc",
    "set_agent",
    "to_chat_completions_input",
]
