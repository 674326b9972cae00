"""Chat Completions upstream: the request we send and how its answer becomes Responses items and events.

The agent speaks Responses (MLflow's items and events); OpenAI, vLLM and Ollama all speak Chat Completions.
Text deltas pass straight through under one message id. Tool calls arrive as fragments keyed by ``index``
(id and name first, then pieces of the arguments), so they are assembled and sent as whole
``function_call`` items when the stream ends. Reasoning text (``reasoning_content`` from vLLM and DeepSeek,
``reasoning`` from Ollama) becomes a reasoning item placed before the message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from runtime.agents.base import ResponsesAgent
from runtime.agents.chat import responses_to_chat_messages
from runtime.agents.upstream_http import UpstreamClient
from runtime.errors import BadRequest
from runtime.protocol.agent import ResponsesAgentRequest
from runtime.protocol.openai import new_item_id

__all__ = ["ChatStream", "chat_output", "chat_payload", "chat_usage"]

# OpenAI's current name; servers that only know ``max_tokens`` can be given it through ``extra_body``.
MAX_TOKENS_FIELD = "max_completion_tokens"


def _chat_tool(tool: dict[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        raise BadRequest(f"a Chat Completions upstream cannot run {tool.get('type')!r} tools", param="tools")
    if "function" in tool:  # already in Chat Completions shape
        return tool
    keys = ("name", "description", "parameters", "strict")
    return {"type": "function", "function": {k: tool[k] for k in keys if tool.get(k) is not None}}


def _chat_tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict) and choice.get("type") == "function" and "name" in choice:
        return {"type": "function", "function": {"name": choice["name"]}}
    return choice


def chat_payload(
    request: ResponsesAgentRequest, *, model: str, system_prompt: str | None, stream: bool
) -> dict[str, Any]:
    messages = responses_to_chat_messages(request.input)
    if system_prompt:
        messages.insert(0, {"role": "system", "content": system_prompt})
    payload: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
    if stream:
        payload["stream_options"] = {"include_usage": True}
    if request.temperature is not None:
        payload["temperature"] = request.temperature
    if request.top_p is not None:
        payload["top_p"] = request.top_p
    if request.max_output_tokens is not None:
        payload[MAX_TOKENS_FIELD] = request.max_output_tokens
    if request.tools:
        payload["tools"] = [_chat_tool(tool) for tool in request.tools]
        if request.tool_choice is not None:
            payload["tool_choice"] = _chat_tool_choice(request.tool_choice)
        if request.parallel_tool_calls is not None:
            payload["parallel_tool_calls"] = request.parallel_tool_calls
    return payload


def chat_usage(usage: Any) -> dict[str, Any] | None:
    """Chat usage (``prompt_tokens`` ...) in the Responses shape (``input_tokens`` ...)."""
    if not isinstance(usage, dict):
        return None
    inp = int(usage.get("prompt_tokens") or 0)
    out = int(usage.get("completion_tokens") or 0)
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": int(prompt_details.get("cached_tokens") or 0)},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": int(completion_details.get("reasoning_tokens") or 0)},
        "total_tokens": int(usage.get("total_tokens") or inp + out),
    }


def _call_item(call_id: str | None, name: str, arguments: str) -> dict[str, Any]:
    return ResponsesAgent.create_function_call_item(
        new_item_id("fc"), call_id or new_item_id("call"), name, arguments
    )


def chat_output(body: dict[str, Any], upstream: UpstreamClient) -> list[dict[str, Any]]:
    """The output items of a non-streaming ``chat.completion``."""
    choices = body.get("choices")
    message = choices[0].get("message") if isinstance(choices, list) and choices else None
    if not isinstance(message, dict):
        raise upstream.error("answered a chat completion without choices[0].message")
    items: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning:
        items.append(ResponsesAgent.create_reasoning_item(new_item_id("rs"), reasoning))
    calls = message.get("tool_calls") or []
    if message.get("content") or not calls:
        items.append(ResponsesAgent.create_text_output_item(message.get("content") or "", new_item_id("msg")))
    for call in calls:
        fn = call.get("function") or {}
        items.append(_call_item(call.get("id"), fn.get("name", ""), fn.get("arguments") or ""))
    return items


@dataclass
class _PartialCall:
    call_id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ChatStream:
    """Folds ``chat.completion.chunk`` payloads into agent events; one instance per upstream stream."""

    def __init__(self, upstream: UpstreamClient) -> None:
        self.upstream = upstream
        self.message_id = new_item_id("msg")
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, _PartialCall] = {}
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None
        self.response_id: str | None = None
        self.finish_reasons: list[str] = []
        self.first_output: float | None = None

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        if "error" in chunk:  # vLLM and others report failures inside the stream
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise self.upstream.error(f"failed while streaming: {message}")
        self.model = chunk.get("model") or self.model
        self.response_id = chunk.get("id") or self.response_id
        self.usage = chat_usage(chunk.get("usage")) or self.usage
        events: list[dict[str, Any]] = []
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) == 0:
                events += self._choice(choice)
        return events

    def _choice(self, choice: dict[str, Any]) -> list[dict[str, Any]]:
        delta = choice.get("delta") or {}
        if choice.get("finish_reason"):
            self.finish_reasons.append(choice["finish_reason"])
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning:
            self._started()
            self.reasoning.append(reasoning)
        for position, fragment in enumerate(delta.get("tool_calls") or []):
            self._started()
            partial = self.calls.setdefault(fragment.get("index", position), _PartialCall())
            partial.call_id = partial.call_id or fragment.get("id")
            fn = fragment.get("function") or {}
            partial.name = partial.name or fn.get("name") or ""
            partial.arguments.append(fn.get("arguments") or "")
        text = delta.get("content")
        if not text:
            return []
        self._started()
        self.text.append(text)
        return [*self._reasoning_item(), ResponsesAgent.create_text_delta(text, self.message_id)]

    def _started(self) -> None:
        if self.first_output is None:
            self.first_output = time.perf_counter()

    def _reasoning_item(self) -> list[dict[str, Any]]:
        if not self.reasoning:
            return []
        item = ResponsesAgent.create_reasoning_item(new_item_id("rs"), "".join(self.reasoning))
        self.reasoning.clear()
        return [{"type": "response.output_item.done", "item": item}]

    @property
    def complete(self) -> bool:
        return bool(self.finish_reasons)

    def finish(self) -> list[dict[str, Any]]:
        """The finished items, once the upstream stream has ended."""
        events = self._reasoning_item()
        text = "".join(self.text)
        if text or not self.calls:
            item = ResponsesAgent.create_text_output_item(text, self.message_id)
            events.append({"type": "response.output_item.done", "item": item})
        for index in sorted(self.calls):
            call = self.calls[index]
            item = _call_item(call.call_id, call.name, "".join(call.arguments))
            events.append({"type": "response.output_item.done", "item": item})
        return events
