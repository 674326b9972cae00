"""Conversions between Responses items and Chat Completions messages, for agents that call chat LLMs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

__all__ = ["content_text", "last_user_text", "responses_to_chat_messages"]


def content_text(content: Any) -> str:
    """The text of a message ``content``: a string, or a list of input_text/output_text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            text for part in content if isinstance(part, dict) and isinstance(text := part.get("text"), str)
        )
    return ""


def last_user_text(items: Sequence[dict[str, Any]]) -> str:
    for item in reversed(items):
        if item.get("role") == "user":
            return content_text(item.get("content"))
    return ""


def responses_to_chat_messages(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role", "user")
            messages.append(
                {
                    "role": "system" if role == "developer" else role,
                    "content": content_text(item.get("content")),
                }
            )
        elif kind == "function_call":
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item.get("arguments", "")},
            }
            if messages and messages[-1]["role"] == "assistant" and "tool_calls" in messages[-1]:
                messages[-1]["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output", "")
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": item["call_id"],
                    "content": output if isinstance(output, str) else json.dumps(output),
                }
            )
        elif kind == "reasoning":
            continue
    return messages
