"""The agent-to-OpenAI translator fills in every event a Responses client expects."""

from __future__ import annotations

from runtime.agents import ResponsesAgent
from runtime.protocol.agent import parse_stream_event
from runtime.streaming.responses import ResponsesStream

A = ResponsesAgent


def run(events: list[dict[str, object]]) -> list[dict[str, object]]:
    stream = ResponsesStream({"id": "resp_1", "model": "m"})
    out = stream.start()
    for event in events:
        out += stream.feed(parse_stream_event(event))
    return out + stream.finish({"input_tokens": 1, "output_tokens": 2, "total_tokens": 3})


def test_a_whole_item_without_deltas_still_streams_its_text() -> None:
    out = run([{"type": "response.output_item.done", "item": A.create_text_output_item("hi", "m1")}])
    types = [e["type"] for e in out]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert out[4]["delta"] == "hi"


def test_deltas_never_closed_are_closed_at_the_end() -> None:
    out = run([A.create_text_delta("a", "m1"), A.create_text_delta("b", "m1")])
    done = [e for e in out if e["type"] == "response.output_text.done"]
    assert done[0]["text"] == "ab"
    completed = out[-1]["response"]
    assert completed["output"][0]["content"][0]["text"] == "ab"  # type: ignore[index]


def test_items_get_increasing_output_indexes() -> None:
    out = run(
        [
            A.create_text_delta("a", "m1"),
            {"type": "response.output_item.done", "item": A.create_text_output_item("a", "m1")},
            {"type": "response.output_item.done", "item": A.create_reasoning_item("r1", "why")},
            A.create_text_delta("b", "m2"),
        ]
    )
    added = [e["output_index"] for e in out if e["type"] == "response.output_item.added"]
    assert added == [0, 1, 2]


def test_annotations_and_unknown_events_are_forwarded_with_sequence_numbers() -> None:
    out = run(
        [
            A.create_text_delta("a", "m1"),
            A.create_annotation_added("m1", {"type": "url_citation", "url": "u"}),
            {"type": "response.custom.thing", "x": 1},
        ]
    )
    kinds = {e["type"]: e for e in out}
    assert kinds["response.output_text.annotation.added"]["annotation"] == {
        "type": "url_citation",
        "url": "u",
    }
    assert kinds["response.custom.thing"]["x"] == 1
    assert [e["sequence_number"] for e in out] == list(range(len(out)))


def test_agent_error_event_fails_the_response() -> None:
    stream = ResponsesStream({"id": "resp_1"})
    stream.start()
    out = stream.feed(parse_stream_event({"type": "error", "message": "bad", "code": "x"}))
    assert [e["type"] for e in out] == ["error", "response.failed"]
    assert out[1]["response"]["error"] == {"code": "x", "message": "bad"}  # type: ignore[index]


def test_a_failed_response_keeps_the_text_streamed_so_far() -> None:
    stream = ResponsesStream({"id": "resp_1"})
    stream.start()
    stream.feed(parse_stream_event(A.create_text_delta("partial ", "m1")))
    stream.feed(parse_stream_event(A.create_text_delta("answer", "m1")))
    failed = stream.fail({"code": "shutting_down", "message": "the server is shutting down"})[1]["response"]
    [item] = failed["output"]  # type: ignore[index]
    assert (item["id"], item["status"], item["content"][0]["text"]) == ("m1", "incomplete", "partial answer")


def test_usage_from_the_agent_completed_event_is_kept() -> None:
    stream = ResponsesStream({"id": "resp_1"})
    assert (
        stream.feed(
            parse_stream_event({"type": "response.completed", "response": {"usage": {"input_tokens": 4}}})
        )
        == []
    )
    assert stream.usage == {"input_tokens": 4}
