"""Turn an agent's MLflow-style events into the full OpenAI Responses event sequence.

An agent says little: text deltas sharing an ``item_id`` and one ``output_item.done`` per finished item.
OpenAI clients (the SDK's ``responses.stream()`` above all) need more: ``response.created`` first, every
item opened with ``output_item.added`` and ``content_part.added``, closed with ``output_text.done`` and
``content_part.done``, function-call arguments as their own deltas, and a terminal ``response.completed``
carrying every item and the usage. :class:`ResponsesStream` fills all of that in, numbering events from 0.
"""

from __future__ import annotations

from typing import Any

from runtime.protocol.agent import (
    AnnotationAddedEvent,
    CompletedEvent,
    ErrorEvent,
    OutputItemAddedEvent,
    OutputItemDoneEvent,
    StreamEvent,
    TextDeltaEvent,
)
from runtime.streaming.sse import json_bytes
from runtime.streaming.text import compact

__all__ = ["ResponsesStream", "finished_item"]

Event = dict[str, Any]

# Lifecycle events :class:`ResponsesStream` makes itself, whatever an agent yields.
_MADE_HERE = frozenset(
    {
        "response.created",
        "response.in_progress",
        "response.queued",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_text.done",
    }
)
_ARGUMENT_EVENTS = frozenset(
    {"response.function_call_arguments.delta", "response.function_call_arguments.done"}
)


class _Item:
    __slots__ = ("fresh", "index", "item", "parts", "text_open")

    def __init__(self, index: int, item: dict[str, Any]) -> None:
        self.index = index
        self.item = item
        self.parts: list[str] = []
        self.text_open = False
        self.fresh = True  # opened here; False once the agent opened it with its own output_item.added


def _sendable(value: Any) -> Any:
    """``value``, once it is known to encode as JSON: what goes into the final event must fail now, while
    the agent's call is open (its trace then says ERROR), not when that event is sent (a cut stream)."""
    if value is not None:
        json_bytes(value)  # TypeError for what JSON cannot hold
    return value


def finished_item(item: dict[str, Any]) -> dict[str, Any]:
    """An output item as OpenAI shows it when complete: messages get a status and full content parts."""
    kind = item.get("type", "message")
    if kind == "function_call":
        return {"status": "completed", **item}
    if kind == "function_call_output":  # OpenAI's output items carry an id and a status; MLflow's lack them
        return {"id": f"fco_{item.get('call_id', '')}", "status": "completed", **item}
    if kind != "message":
        return item
    content = []
    for part in item.get("content") or []:
        is_text = part.get("type") == "output_text"
        content.append({"annotations": [], "logprobs": [], **part} if is_text else part)
    return {
        **item,
        "type": "message",
        "role": item.get("role", "assistant"),
        "status": "completed",
        "content": content,
    }


class ResponsesStream:
    """Stateful translator for one response; ``feed`` and ``finish`` return the events to send, in order."""

    def __init__(self, response: dict[str, Any]) -> None:
        self.response = response
        self.seq = 0
        self.items: dict[str, _Item] = {}  # open items by id
        self.next_index = 0
        self.output: list[dict[str, Any]] = []  # finished items, in the order they finished
        self.indexes: list[int] = []  # and their output_index: a response lists them in that order
        self.usage: dict[str, Any] | None = None
        self.custom_outputs: dict[str, Any] | None = None
        self.output_text_chars = 0

    def _ev(self, event: Event) -> Event:
        event["sequence_number"] = self.seq
        self.seq += 1
        return event

    def start(self) -> list[Event]:
        snapshot = {**self.response, "status": "in_progress", "output": [], "usage": None}
        return [
            self._ev({"type": "response.created", "response": snapshot}),
            self._ev({"type": "response.in_progress", "response": snapshot}),
        ]

    def feed(self, event: StreamEvent) -> list[Event]:
        extra = event.__pydantic_extra__
        if extra and "custom_outputs" in extra:  # MLflow's stream events carry them at the top level
            self.custom_outputs = _sendable(extra["custom_outputs"])
        if isinstance(event, TextDeltaEvent):
            return self._delta(event)
        if isinstance(event, OutputItemDoneEvent):
            return self._item_done(event.item)
        if isinstance(event, OutputItemAddedEvent):
            opened, events = self._open(event.item)
            opened.fresh = False
            return events
        if isinstance(event, AnnotationAddedEvent):
            state = self.items.get(event.item_id)
            return [
                self._ev(
                    {
                        "type": "response.output_text.annotation.added",
                        "item_id": event.item_id,
                        "output_index": state.index if state else 0,
                        "content_index": 0,
                        "annotation_index": event.annotation_index,
                        "annotation": event.annotation,
                    }
                )
            ]
        if isinstance(event, CompletedEvent):
            self.usage = _sendable(event.response.get("usage")) or self.usage
            if "custom_outputs" in event.response:
                self.custom_outputs = _sendable(event.response["custom_outputs"])
            return []
        if isinstance(event, ErrorEvent):
            return self.fail({"code": event.code or "agent_error", "message": event.message})
        return self._passed_on(event.model_dump(exclude_none=True))

    def _passed_on(self, event: Event) -> list[Event]:
        """An event type this translator does not make: sent on, numbered in this stream and placed at its
        item's index here. Those it makes itself (an agent forwarding an upstream OpenAI stream yields
        them too) are dropped: one ``response.created``, one content part per text, argument events only
        for an item the agent opened itself (else they are made when the item is done)."""
        kind = event["type"]
        if kind in _MADE_HERE:
            return []
        state = self.items.get(str(event.get("item_id")))
        if kind in _ARGUMENT_EVENTS and (state is None or state.fresh):
            return []
        if state is not None and "output_index" in event:
            event["output_index"] = state.index
        return [self._ev(event)]

    def _open(self, item: dict[str, Any]) -> tuple[_Item, list[Event]]:
        item_id = str(item.get("id") or f"item_{self.next_index}")
        state = self.items.get(item_id)
        if state is not None:
            return state, []
        state = _Item(self.next_index, item)
        self.next_index += 1
        self.items[item_id] = state
        opened = {**item, "id": item_id, "status": "in_progress"}
        if opened.get("type", "message") == "message":
            opened.update(type="message", role=opened.get("role", "assistant"), content=[])
        elif opened["type"] == "function_call":
            opened["arguments"] = ""
        return state, [
            self._ev({"type": "response.output_item.added", "output_index": state.index, "item": opened})
        ]

    def _delta(self, event: TextDeltaEvent) -> list[Event]:
        state, events = self._open({"type": "message", "id": event.item_id, "role": "assistant"})
        if not state.text_open:
            state.text_open = True
            events.append(
                self._ev(
                    {
                        "type": "response.content_part.added",
                        "item_id": event.item_id,
                        "output_index": state.index,
                        "content_index": 0,
                        "part": {"type": "output_text", "text": "", "annotations": []},
                    }
                )
            )
        state.parts.append(event.delta)
        compact(state.parts)
        self.output_text_chars += len(event.delta)
        events.append(
            self._ev(
                {
                    "type": "response.output_text.delta",
                    "item_id": event.item_id,
                    "output_index": state.index,
                    "content_index": 0,
                    "delta": event.delta,
                    "logprobs": [],
                }
            )
        )
        return events

    def _item_done(self, item: dict[str, Any]) -> list[Event]:
        kind = item.get("type", "message")
        item_id = str(item.get("id") or f"item_{self.next_index}")
        if kind == "message" and self.items and item_id not in self.items:
            item_id = self._streamed_as(item) or item_id
        state, events = self._open({**item, "id": item_id})
        fresh = bool(events)
        final = finished_item({**item, "id": item_id})
        if kind == "message":
            texts = [p for p in final["content"] if p.get("type") == "output_text"]
            if not state.text_open and texts:
                events += self._delta(TextDeltaEvent(item_id=item_id, delta=texts[0]["text"]))
            if texts:
                events += self._close_text(item_id, state, texts[0])
        elif kind == "function_call" and fresh:
            args = str(item.get("arguments", ""))
            events.append(
                self._ev(
                    {
                        "type": "response.function_call_arguments.delta",
                        "item_id": item_id,
                        "output_index": state.index,
                        "delta": args,
                    }
                )
            )
            events.append(
                self._ev(
                    {
                        "type": "response.function_call_arguments.done",
                        "item_id": item_id,
                        "output_index": state.index,
                        "arguments": args,
                    }
                )
            )
        state.item = final
        self.output.append(final)
        self.indexes.append(state.index)
        events.append(
            self._ev({"type": "response.output_item.done", "output_index": state.index, "item": final})
        )
        del self.items[item_id]
        return events

    def _streamed_as(self, item: dict[str, Any]) -> str | None:
        """The id of the open message whose deltas spelled exactly this finished message's text, when the
        agent gave the two different ids (deltas per chunk, the final item under its own id): one message,
        as MLflow's reducer sees it, not the text twice."""
        text = "".join(
            p.get("text", "")
            for p in item.get("content") or ()
            if isinstance(p, dict) and p.get("type") == "output_text"
        )
        if not text:
            return None
        return next((k for k, s in self.items.items() if s.text_open and "".join(s.parts) == text), None)

    def _close_text(self, item_id: str, state: _Item, part: dict[str, Any]) -> list[Event]:
        state.text_open = False
        common = {"item_id": item_id, "output_index": state.index, "content_index": 0}
        return [
            self._ev({"type": "response.output_text.done", **common, "text": part["text"], "logprobs": []}),
            self._ev({"type": "response.content_part.done", **common, "part": part}),
        ]

    def _in_order(self) -> list[dict[str, Any]]:
        """The finished items by output_index (items an agent interleaves finish out of order)."""
        indexes = self.indexes
        if indexes == sorted(indexes):
            return self.output
        return [item for _, item in sorted(zip(indexes, self.output, strict=True), key=lambda pair: pair[0])]

    def forget_since(self, count: int) -> None:
        """Forget the items finished after the first ``count``: they could not be sent."""
        del self.output[count:]
        del self.indexes[count:]

    def open_texts(self) -> list[tuple[str, str]]:
        """Items that streamed deltas but were never closed: (item id, text so far)."""
        return [(k, "".join(s.parts)) for k, s in self.items.items() if s.text_open]

    def finish(self, usage: dict[str, Any] | None) -> list[Event]:
        events: list[Event] = []
        for item_id, text in self.open_texts():
            events += self._item_done(
                {
                    "type": "message",
                    "id": item_id,
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text}],
                }
            )
        final = {**self.response, "status": "completed", "output": self._in_order(), "usage": usage}
        if self.custom_outputs is not None:  # as MLflow's agent server sends them
            final["custom_outputs"] = self.custom_outputs
        events.append(self._ev({"type": "response.completed", "response": final}))
        return events

    def fail(self, error: dict[str, Any]) -> list[Event]:
        """The error, then ``response.failed`` with what was streamed: an unfinished message is in its output
        with the text so far and the status ``incomplete``."""
        partial = [
            finished_item(
                {"type": "message", "id": item_id, "content": [{"type": "output_text", "text": text}]}
            )
            | {"status": "incomplete"}
            for item_id, text in self.open_texts()
        ]
        final = {**self.response, "status": "failed", "output": [*self._in_order(), *partial], "error": error}
        return [
            self._ev(
                {"type": "error", "code": error.get("code"), "message": error.get("message"), "param": None}
            ),
            self._ev({"type": "response.failed", "response": final}),
        ]
