"""MLflow 3's item helpers under their names (``mlflow.types.responses``), with MLflow's shapes.

The ``create_*`` functions build output items and stream events as plain dicts; the conversions turn
Responses items into Chat Completions messages (:func:`to_chat_completions_input`, which MLflow's
``prep_msgs_for_cc_llm`` is) and a Chat Completions stream (or LangChain messages) into stream events
(:func:`output_to_responses_items_stream`). They keep MLflow's conventions where those are odd (a tool call's
message says ``"tool call"``, a multi-part message becomes one message per part), so an agent ported from
MLflow sends its LLM what it sent before. The runtime's own OpenAI-compatible agent converts with
:func:`runtime.agents.chat.responses_to_chat_messages` instead, which merges parallel tool calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any
from uuid import uuid4

from runtime.protocol.agent import ResponsesAgentResponse, ResponsesAgentStreamEvent

__all__ = [
    "create_annotation_added",
    "create_function_call_item",
    "create_function_call_output_item",
    "create_reasoning_item",
    "create_text_delta",
    "create_text_output_item",
    "output_to_responses_items_stream",
    "responses_agent_output_reducer",
    "responses_to_cc",
    "to_chat_completions_input",
]

_CHAT_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id")


def create_text_delta(delta: str, item_id: str) -> dict[str, Any]:
    return {"type": "response.output_text.delta", "item_id": item_id, "delta": delta}


def create_text_output_item(
    text: str, id: str, annotations: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "id": id,
        "content": [{"text": text, "type": "output_text", "annotations": annotations or []}],
        "role": "assistant",
        "type": "message",
    }


def create_function_call_item(id: str, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"type": "function_call", "id": id, "call_id": call_id, "name": name, "arguments": arguments}


def create_function_call_output_item(call_id: str, output: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def create_reasoning_item(id: str, reasoning_text: str) -> dict[str, Any]:
    return {"type": "reasoning", "id": id, "summary": [{"type": "summary_text", "text": reasoning_text}]}


def create_annotation_added(
    item_id: str, annotation: dict[str, Any], annotation_index: int | None = 0
) -> dict[str, Any]:
    return {
        "type": "response.output_text.annotation.added",
        "item_id": item_id,
        "annotation_index": annotation_index,
        "annotation": annotation,
    }


def _tool_call(call_id: str, name: str, arguments: Any) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"arguments": arguments or "{}", "name": name}}


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)


def responses_to_cc(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The Chat Completions messages one Responses item stands for (none for an item they cannot hold)."""
    kind = item.get("type")
    if kind == "function_call":
        # Some chat models refuse an assistant message without content: MLflow says "tool call".
        call = _tool_call(item["call_id"], item["name"], item.get("arguments"))
        return [{"role": "assistant", "content": "tool call", "tool_calls": [call]}]
    if kind == "message" and isinstance(item.get("content"), list):
        role = item.get("role", "assistant")
        return [
            {"role": role, "content": part["text"]} if "text" in part else {"role": role, "content": [part]}
            for part in item["content"]
        ]
    if kind == "reasoning":
        return [{"role": "assistant", "content": json.dumps(item.get("summary"))}]
    if kind == "function_call_output":
        return [{"role": "tool", "content": _as_text(item.get("output")), "tool_call_id": item["call_id"]}]
    if kind == "mcp_approval_request":
        call = _tool_call(item["id"], item["name"], item.get("arguments"))
        return [{"role": "assistant", "content": "mcp approval request", "tool_calls": [call]}]
    if kind == "mcp_approval_response":
        return [
            {"role": "tool", "content": str(item.get("approve")), "tool_call_id": item["approval_request_id"]}
        ]
    kept = {key: item[key] for key in _CHAT_KEYS if key in item}
    return [kept] if kept else []


def to_chat_completions_input(items: Iterable[Any]) -> list[dict[str, Any]]:
    """Responses input items (dicts, the request's items or pydantic models) -> Chat Completions messages."""
    messages: list[dict[str, Any]] = []
    for item in items:
        dump = getattr(item, "model_dump", None)
        messages.extend(responses_to_cc(dump() if callable(dump) else item))
    return messages


def responses_agent_output_reducer(chunks: Iterable[Any]) -> dict[str, Any]:
    """The response a stream of events adds up to, as MLflow reduces it: its ``output_item.done`` items."""
    output = []
    for chunk in chunks:
        if isinstance(chunk, dict):
            if chunk.get("type") == "response.output_item.done":
                output.append(chunk.get("item"))
        elif getattr(chunk, "type", None) == "response.output_item.done":
            output.append(chunk.item)
    return ResponsesAgentResponse(output=output).model_dump(exclude_none=True)


def _plain(chunk: Any) -> dict[str, Any]:
    """A chunk as a dict: the openai SDK's and LangChain's objects are pydantic models."""
    if isinstance(chunk, dict):
        return chunk
    dump = getattr(chunk, "model_dump", None)
    if callable(dump):
        result = dump()
        if isinstance(result, dict):
            return result
    raise TypeError(f"cannot read a stream chunk of type {type(chunk).__name__}")


def _done(item: dict[str, Any], aggregator: list[dict[str, Any]] | None) -> ResponsesAgentStreamEvent:
    if aggregator is not None:
        aggregator.append(item)
    return ResponsesAgentStreamEvent(type="response.output_item.done", item=item)


def output_to_responses_items_stream(
    chunks: Iterable[Any], aggregator: list[dict[str, Any]] | None = None
) -> Iterator[ResponsesAgentStreamEvent]:
    """Stream events from Chat Completions chunks (dicts or the openai SDK's objects) or LangChain messages:
    text deltas as they come, then an ``output_item.done`` per finished item (the text, each tool call).
    ``aggregator``, when given, is extended with every finished item."""
    iterator = iter(chunks)
    first = next(iterator, None)
    if first is None:
        return
    plain = _plain(first)
    rest = (_plain(chunk) for chunk in iterator)
    if "choices" in plain or "type" not in plain:
        yield from _from_chat_chunks(plain, rest, aggregator)
    else:
        yield from _from_messages(plain, rest, aggregator)


def _from_chat_chunks(
    first: dict[str, Any], rest: Iterator[dict[str, Any]], aggregator: list[dict[str, Any]] | None
) -> Iterator[ResponsesAgentStreamEvent]:
    text: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, dict[str, Any]] = {}  # tool calls by their index in the stream
    msg_id = ""
    for chunk in _chain(first, rest):
        choices = chunk.get("choices")
        if not choices:
            continue
        delta = choices[0].get("delta") or {}
        msg_id = chunk.get("id") or msg_id
        content = delta.get("content")
        if delta.get("tool_calls"):
            for part in delta["tool_calls"]:
                function = part.get("function") or {}
                call = calls.setdefault(
                    part.get("index", 0),
                    {"id": part.get("id"), "name": function.get("name") or "", "args": []},
                )
                call["args"].append(function.get("arguments") or "")
            continue
        if isinstance(content, list):  # content items (Databricks' format): text and reasoning parts
            for part_text in _content_items(content, reasoning):
                text.append(part_text)
                yield ResponsesAgentStreamEvent(**create_text_delta(part_text, msg_id))
            continue
        if reasoning:  # the reasoning has ended
            yield _done(create_reasoning_item(msg_id, "".join(reasoning)), aggregator)
            reasoning = []
        if isinstance(content, str):
            text.append(content)
            yield ResponsesAgentStreamEvent(**create_text_delta(content, msg_id))
    if text:
        yield _done(create_text_output_item("".join(text), msg_id), aggregator)
    for index in sorted(calls):
        call = calls[index]
        yield _done(
            create_function_call_item(msg_id, call["id"], call["name"], "".join(call["args"])), aggregator
        )


def _content_items(content: list[Any], reasoning: list[str]) -> Iterator[str]:
    """The texts of a chunk's content items; their reasoning summaries go to ``reasoning``."""
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "reasoning":
            reasoning.extend(s.get("text", "") for s in part.get("summary", [])[:1])
        elif part.get("type") == "text" and part.get("text"):
            yield part["text"]


def _from_messages(
    first: dict[str, Any], rest: Iterator[dict[str, Any]], aggregator: list[dict[str, Any]] | None
) -> Iterator[ResponsesAgentStreamEvent]:
    """LangChain messages (dumped): an AI message's text and tool calls, a tool message's output."""
    for message in _chain(first, rest):
        kind = message.get("type")
        if kind in ("ai", "AIMessageChunk"):
            if message.get("content"):
                item_id = message.get("id") or str(uuid4())
                yield _done(create_text_output_item(_as_text(message["content"]), item_id), aggregator)
            for call in message.get("tool_calls") or []:
                item_id = call.get("id") or message.get("id") or str(uuid4())
                arguments = json.dumps(call.get("args", {}))
                yield _done(
                    create_function_call_item(item_id, call["id"], call["name"], arguments), aggregator
                )
        elif kind in ("tool", "ToolMessageChunk"):
            item = create_function_call_output_item(message["tool_call_id"], _as_text(message.get("content")))
            yield _done(item, aggregator)


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest
