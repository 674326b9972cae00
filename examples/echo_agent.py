"""The bundled example: echoes the last user message, streaming it word by word, and reports usage."""

from collections.abc import AsyncIterator
from typing import Any

from runtime.agents import (
    ResponsesAgent,
    ResponsesAgentRequest,
    ResponsesAgentResponse,
    ResponsesAgentStreamEvent,
    set_agent,
)
from runtime.agents.chat import last_user_text


class Echo(ResponsesAgent):
    name = "echo"

    def _usage(self, request: ResponsesAgentRequest, text: str) -> dict[str, int]:
        words_in = sum(len(str(item.get("content", "")).split()) for item in request.input)
        words_out = len(text.split())
        return {"input_tokens": words_in, "output_tokens": words_out, "total_tokens": words_in + words_out}

    async def predict(self, request: ResponsesAgentRequest) -> ResponsesAgentResponse:
        text = last_user_text(request.input)
        return ResponsesAgentResponse(
            output=[self.create_text_output_item(text, "msg_echo")],
            usage=self._usage(request, text),
            custom_outputs={"echo": True},
        )

    async def predict_stream(self, request: ResponsesAgentRequest) -> AsyncIterator[Any]:
        text = last_user_text(request.input)
        words = text.split(" ")
        for i, word in enumerate(words):
            yield self.create_text_delta(word if i == 0 else " " + word, "msg_echo")
        yield ResponsesAgentStreamEvent(
            type="response.output_item.done", item=self.create_text_output_item(text, "msg_echo")
        )
        yield ResponsesAgentStreamEvent(
            type="response.completed", response={"usage": self._usage(request, text)}
        )


set_agent(Echo())
