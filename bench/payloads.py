"""The response shapes every bench server produces, built from plain dicts.

The bare app serves these so that it does the same work on the wire as the runtime: the same JSON
objects for ``/invocations`` and ``/v1/responses``, the same SSE event sequences. Kept free of the
product's code on purpose.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

__all__ = [
    "DEFAULT_DELTAS",
    "agent_response",
    "delta_text",
    "invocation_stream",
    "last_user_text",
    "openai_response",
    "responses_stream",
]

DEFAULT_DELTAS = 50
_ITEM_ID = "msg_1"


def delta_text(index: int) -> str:
    return f"w{index} "


def last_user_text(items: Any) -> str:
    """The text of the last user message of a Responses ``input`` (a string or a list of items)."""
    if isinstance(items, str):
        return items
    for item in reversed(items if isinstance(items, list) else []):
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _usage(output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": 1,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 1 + output_tokens,
    }


def _message(text: str, status: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": "message",
        "id": _ITEM_ID,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    if status is not None:
        item["status"] = status
    return item


def agent_response(text: str) -> dict[str, Any]:
    """A ResponsesAgentResponse as MLflow serialises it."""
    return {"object": "response", "output": [_message(text)], "usage": _usage(1)}


def openai_response(model: str, text: str | None, output_tokens: int = 1) -> dict[str, Any]:
    """An OpenAI Response object; ``text=None`` gives the in-progress shell sent at the start of a stream."""
    return {
        "id": f"resp_{uuid.uuid4().hex}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress" if text is None else "completed",
        "model": model,
        "output": [] if text is None else [_message(text, "completed")],
        "usage": None if text is None else _usage(output_tokens),
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "error": None,
        "incomplete_details": None,
        "metadata": {},
    }


def invocation_stream(deltas: int) -> Iterator[dict[str, Any]]:
    """ResponsesAgentStreamEvents as MLflow's agent server sends them (the caller adds ``[DONE]``)."""
    for index in range(deltas):
        yield {"type": "response.output_text.delta", "item_id": _ITEM_ID, "delta": delta_text(index)}
    text = "".join(delta_text(i) for i in range(deltas))
    yield {"type": "response.output_item.done", "item": _message(text)}


def responses_stream(model: str, deltas: int) -> Iterator[dict[str, Any]]:
    """The OpenAI Responses event sequence, numbered from 0, for a message of ``deltas`` text deltas."""
    shell = openai_response(model, None)
    part = {"type": "output_text", "text": "", "annotations": []}
    where = {"item_id": _ITEM_ID, "output_index": 0, "content_index": 0}
    text = "".join(delta_text(i) for i in range(deltas))
    added = {**_message("", "in_progress"), "content": []}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": shell},
        {"type": "response.in_progress", "response": shell},
        {"type": "response.output_item.added", "output_index": 0, "item": added},
        {"type": "response.content_part.added", **where, "part": part},
    ]
    yield from _numbered(events, 0)
    for index in range(deltas):
        delta = {"type": "response.output_text.delta", **where, "delta": delta_text(index), "logprobs": []}
        yield {**delta, "sequence_number": len(events) + index}
    done_part = {**part, "text": text}
    final = {**shell, "status": "completed", "output": [_message(text, "completed")], "usage": _usage(deltas)}
    tail: list[dict[str, Any]] = [
        {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": done_part},
        {"type": "response.output_item.done", "output_index": 0, "item": _message(text, "completed")},
        {"type": "response.completed", "response": final},
    ]
    yield from _numbered(tail, len(events) + deltas)


def _numbered(events: list[dict[str, Any]], first: int) -> Iterator[dict[str, Any]]:
    for offset, event in enumerate(events):
        yield {**event, "sequence_number": first + offset}
