"""The agent wire models serialize to MLflow's JSON and validate stream events by their type."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from runtime.agents import ResponsesAgent, ResponsesAgentResponse, ResponsesAgentStreamEvent
from runtime.protocol.agent import (
    ErrorEvent,
    OutputItemDoneEvent,
    ResponsesAgentRequest,
    TextDeltaEvent,
    UnknownEvent,
    parse_stream_event,
)


def test_request_keeps_mlflow_fields_and_extras() -> None:
    req = ResponsesAgentRequest.model_validate(
        {
            "input": [{"role": "user", "content": "hi"}],
            "context": {"conversation_id": "c1", "user_id": "u1"},
            "custom_inputs": {"k": "v"},
            "reasoning": {"effort": "low"},
        }
    )
    dumped = req.model_dump(exclude_none=True)
    assert dumped["context"] == {"conversation_id": "c1", "user_id": "u1"}
    assert dumped["custom_inputs"] == {"k": "v"}
    assert dumped["reasoning"] == {"effort": "low"}


def test_response_dump_matches_mlflow_shape() -> None:
    agent = ResponsesAgent()
    response = ResponsesAgentResponse(
        output=[agent.create_text_output_item("You said: hello", "msg_1")],
        usage={"input_tokens": 5, "output_tokens": 3},
        custom_outputs={"echo": True},
    )
    assert response.model_dump(exclude_none=True) == {
        "object": "response",
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "You said: hello", "annotations": []}],
            }
        ],
        "usage": {
            "input_tokens": 5,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 3,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 8,
        },
        "custom_outputs": {"echo": True},
    }


def test_helpers_match_mlflow_dicts() -> None:
    a = ResponsesAgent
    assert a.create_text_delta("x", "m") == {
        "type": "response.output_text.delta",
        "item_id": "m",
        "delta": "x",
    }
    assert a.create_function_call_item("fc", "c", "f", "{}") == {
        "type": "function_call",
        "id": "fc",
        "call_id": "c",
        "name": "f",
        "arguments": "{}",
    }
    assert a.create_function_call_output_item("c", "out") == {
        "type": "function_call_output",
        "call_id": "c",
        "output": "out",
    }
    assert a.create_reasoning_item("r", "because")["summary"] == [{"type": "summary_text", "text": "because"}]


def test_stream_events_discriminate_on_type() -> None:
    assert isinstance(parse_stream_event(ResponsesAgent.create_text_delta("a", "m")), TextDeltaEvent)
    done = parse_stream_event(ResponsesAgentStreamEvent(type="response.output_item.done", item={"type": "x"}))
    assert isinstance(done, OutputItemDoneEvent)
    assert isinstance(parse_stream_event({"type": "error", "message": "m"}), ErrorEvent)


def test_unknown_event_types_pass_through_unchanged() -> None:
    raw = {"type": "response.reasoning_summary_text.delta", "item_id": "r", "delta": "hm", "extra": [1]}
    event = parse_stream_event(raw)
    assert isinstance(event, UnknownEvent)
    assert event.model_dump() == raw


def test_known_event_missing_a_field_is_rejected() -> None:
    with pytest.raises(ValidationError, match="delta"):
        parse_stream_event({"type": "response.output_text.delta", "item_id": "m"})
