"""Responses API upstream: the request we send and which of its stream events the agent passes on.

The upstream already speaks our item shapes, so items go through unchanged. Of its many events the agent
keeps what MLflow's convention carries (text deltas and one ``output_item.done`` per item); the runtime
rebuilds the rest (``output_item.added``, ``content_part.*``, argument deltas) for its own clients, with
its own sequence numbers.
"""

from __future__ import annotations

import time
from typing import Any

from runtime.agents.base import ResponsesAgent
from runtime.agents.upstream_http import UpstreamClient
from runtime.protocol.agent import ResponsesAgentRequest
from runtime.protocol.openai import OUTPUT_EVENTS

__all__ = ["ResponsesEvents", "responses_output", "responses_payload"]

_PASSED = ("temperature", "top_p", "max_output_tokens", "tool_choice", "parallel_tool_calls")


def responses_payload(
    request: ResponsesAgentRequest, *, model: str, system_prompt: str | None, stream: bool
) -> dict[str, Any]:
    payload: dict[str, Any] = {"model": model, "input": request.input, "stream": stream}
    if system_prompt:
        payload["instructions"] = system_prompt
    if request.tools:
        payload["tools"] = request.tools
    for name in _PASSED:
        value = getattr(request, name)
        if value is not None and (request.tools or name not in ("tool_choice", "parallel_tool_calls")):
            payload[name] = value
    return payload


def _failure(response: Any) -> str:
    error = response.get("error") if isinstance(response, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return "no error message"


def responses_output(body: dict[str, Any], upstream: UpstreamClient) -> list[dict[str, Any]]:
    """The output items of a non-streaming Response object."""
    if body.get("status") == "failed":
        raise upstream.error(f"failed the response: {_failure(body)}")
    output = body.get("output")
    if not isinstance(output, list):
        raise upstream.error("answered a response without an output list")
    return [item for item in output if isinstance(item, dict)]


class ResponsesEvents:
    """Reads one upstream Responses stream; :meth:`feed` returns the agent events to yield."""

    def __init__(self, upstream: UpstreamClient) -> None:
        self.upstream = upstream
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None
        self.response_id: str | None = None
        self.finish_reasons: list[str] = []
        self.first_output: float | None = None
        self.complete = False

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind in OUTPUT_EVENTS and self.first_output is None:
            self.first_output = time.perf_counter()
        if kind == "response.output_text.delta":
            return [ResponsesAgent.create_text_delta(str(event.get("delta", "")), str(event.get("item_id")))]
        if kind == "response.output_item.done" and isinstance(event.get("item"), dict):
            return [{"type": "response.output_item.done", "item": event["item"]}]
        if kind == "error":
            raise self.upstream.error(f"failed while streaming: {event.get('message') or 'no error message'}")
        response = event.get("response")
        if isinstance(response, dict):
            self._note(kind, response)
        return []

    def _note(self, kind: Any, response: dict[str, Any]) -> None:
        self.model = response.get("model") or self.model
        self.response_id = response.get("id") or self.response_id
        if kind == "response.failed":
            raise self.upstream.error(f"failed the response: {_failure(response)}")
        if kind in ("response.completed", "response.incomplete"):
            self.complete = True
            self.usage = response.get("usage") or self.usage
            self.finish_reasons.append(str(response.get("status") or "completed"))

    def finish(self) -> list[dict[str, Any]]:
        return []
