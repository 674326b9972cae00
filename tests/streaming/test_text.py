"""Kept text deltas are joined as they come: the same text in a bounded number of strings."""

from runtime.protocol.agent import TextDeltaEvent
from runtime.streaming.responses import ResponsesStream
from runtime.streaming.text import RUN, compact


def test_compact_keeps_the_text_in_at_most_run_plus_one_parts() -> None:
    parts: list[str] = []
    for index in range(5 * RUN + 3):
        parts.append(f"w{index} ")
        compact(parts)
        assert len(parts) <= RUN + 1
    assert "".join(parts) == "".join(f"w{index} " for index in range(5 * RUN + 3))


def test_compact_leaves_short_lists_alone() -> None:
    parts = ["a", "b"]
    compact(parts)
    assert parts == ["a", "b"]


def test_an_open_item_of_many_deltas_closes_with_all_its_text() -> None:
    stream = ResponsesStream({"id": "resp_1", "object": "response"})
    deltas = [f"d{index} " for index in range(3 * RUN)]
    for delta in deltas:
        stream.feed(TextDeltaEvent(item_id="msg_1", delta=delta))
    assert stream.open_texts() == [("msg_1", "".join(deltas))]
    assert len(stream.items["msg_1"].parts) <= RUN + 1
