"""What agent authors import: the ResponsesAgent contract, its wire types and ``set_agent``."""

from runtime.agents.base import ResponsesAgent
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
    "set_agent",
]
