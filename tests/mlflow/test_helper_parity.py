"""MLflow's item helpers and ours give the same results on the same inputs, and a request's input items read
the way MLflow's do (``item.role``, ``item.model_dump()``) as well as the way dicts do.

Compared with the installed ``mlflow`` itself (the ``mlflow`` extra of the test command), not with copies of
its output.
"""

from __future__ import annotations

from typing import Any

import pytest

from runtime import agents
from runtime.agents import ResponsesAgent
from runtime.protocol.agent import ResponsesAgentRequest

pytestmark = [pytest.mark.mlflow, pytest.mark.filterwarnings("ignore::UserWarning")]

mlflow_responses = pytest.importorskip("mlflow.types.responses", reason="the test command installs mlflow")

INPUT: list[dict[str, Any]] = [
    {"role": "system", "content": "be brief"},
    {"role": "developer", "content": "answer in English"},
    {"role": "user", "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]},
    {
        "type": "message",
        "role": "assistant",
        "id": "m1",
        "content": [{"type": "output_text", "text": "let me look", "annotations": []}],
    },
    {"type": "reasoning", "id": "r1", "summary": [{"type": "summary_text", "text": "thinking"}]},
    {"type": "function_call", "id": "f1", "call_id": "c1", "name": "lookup", "arguments": '{"q": 1}'},
    {"type": "function_call", "id": "f2", "call_id": "c2", "name": "other", "arguments": ""},
    {"type": "function_call_output", "call_id": "c1", "output": "found"},
    {"type": "function_call_output", "call_id": "c2", "output": "none"},
    {"role": "user", "content": "thanks"},
]

CHAT_CHUNKS: list[dict[str, Any]] = [
    {"id": "chunk", "choices": [{"delta": {"role": "assistant", "content": ""}}]},
    {"id": "chunk", "choices": [{"delta": {"content": "Hel"}}]},
    {"id": "chunk", "choices": [{"delta": {"content": "lo"}}]},
    {
        "id": "chunk",
        "choices": [
            {
                "delta": {
                    "tool_calls": [
                        {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": '{"a"'}}
                    ]
                }
            }
        ],
    },
    {
        "id": "chunk",
        "choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}}],
    },
    {"id": "chunk", "choices": []},
]


def _mlflow_request() -> Any:
    return mlflow_responses.ResponsesAgentRequest(input=INPUT)


def _our_request() -> ResponsesAgentRequest:
    return ResponsesAgentRequest.model_validate({"input": INPUT})


def test_prep_msgs_for_cc_llm_gives_mlflows_chat_messages() -> None:
    from mlflow.pyfunc import ResponsesAgent as MlflowAgent

    expected = MlflowAgent.prep_msgs_for_cc_llm(_mlflow_request().input)
    assert ResponsesAgent.prep_msgs_for_cc_llm(_our_request().input) == expected
    assert agents.to_chat_completions_input(_our_request().input) == expected
    # MLflow's own pattern: dump each item first.
    assert ResponsesAgent.prep_msgs_for_cc_llm([i.model_dump() for i in _our_request().input]) == expected


def test_each_item_converts_as_mlflows_responses_to_cc() -> None:
    for item in [*INPUT, {"type": "function_call_output", "call_id": "c", "output": {"rows": [1, 2]}}]:
        assert ResponsesAgent._responses_to_cc(item) == mlflow_responses.responses_to_cc(item), item


def test_input_items_read_like_mlflows_items_and_like_dicts() -> None:
    ours, theirs = _our_request().input, _mlflow_request().input
    for mine, mlflows in zip(ours, theirs, strict=True):
        assert mine.type == mlflows.type
        dumped, expected = mine.model_dump(exclude_none=True), mlflows.model_dump(exclude_none=True)
        # MLflow drops what its models do not declare (a message's id, a part's annotations); we keep it.
        for key, value in expected.items():
            if key == "content" and isinstance(value, list):
                assert [p["text"] for p in dumped[key]] == [p["text"] for p in value]
            else:
                assert dumped[key] == value, key
    assert ours[-1].role == "user" and ours[-1].content == "thanks" and ours[-1]["content"] == "thanks"
    assert ours[5].call_id == "c1" and ours[5]["name"] == "lookup"
    with pytest.raises(AttributeError, match="no 'nothing'"):
        _ = ours[0].nothing


def test_chat_completion_chunks_become_mlflows_stream_events() -> None:
    from mlflow.pyfunc import ResponsesAgent as MlflowAgent

    expected_items: list[dict[str, Any]] = []
    expected = [
        e.model_dump(exclude_none=True)
        for e in MlflowAgent.output_to_responses_items_stream(iter(CHAT_CHUNKS), expected_items)
    ]
    ours_items: list[dict[str, Any]] = []
    ours = [
        e.model_dump(exclude_none=True)
        for e in ResponsesAgent.output_to_responses_items_stream(iter(CHAT_CHUNKS), ours_items)
    ]
    assert ours == expected
    assert ours_items == expected_items
    assert [e["type"] for e in ours][-2:] == ["response.output_item.done", "response.output_item.done"]


def test_the_output_reducer_keeps_the_done_items_as_mlflows_does() -> None:
    events = [
        ResponsesAgent.create_text_delta("Hel", "m1"),
        {"type": "response.output_item.done", "item": ResponsesAgent.create_text_output_item("Hello", "m1")},
        {
            "type": "response.output_item.done",
            "item": ResponsesAgent.create_function_call_output_item("c", "x"),
        },
    ]
    assert ResponsesAgent.responses_agent_output_reducer(
        events
    ) == mlflow_responses.responses_agent_output_reducer(events)


def test_the_create_helpers_build_mlflows_dicts() -> None:
    cases: list[tuple[str, tuple[Any, ...]]] = [
        ("create_text_delta", ("hi", "m1")),
        ("create_text_output_item", ("hi", "m1")),
        ("create_function_call_item", ("f1", "c1", "lookup", "{}")),
        ("create_function_call_output_item", ("c1", "out")),
        ("create_reasoning_item", ("r1", "thinking")),
        ("create_annotation_added", ("m1", {"type": "url_citation", "url": "https://example.com"}, 0)),
    ]
    for name, args in cases:
        assert getattr(agents, name)(*args) == getattr(mlflow_responses, name)(*args), name
        assert getattr(ResponsesAgent, name)(*args) == getattr(mlflow_responses, name)(*args), name
