from __future__ import annotations

import pytest

from bench.sse import MAX_FRAME_BYTES, SseEvent, SseParser

STREAM = (
    b": ping\r\n\r\n"
    b'event: response.created\r\ndata: {"a":1}\r\n\r\n'
    b"data: line one\ndata: line two\n\n"
    b"id: 7\rdata:no-space\r\r"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    SseEvent("response.created", b'{"a":1}'),
    SseEvent(None, b"line one\nline two"),
    SseEvent(None, b"no-space"),
    SseEvent(None, b"[DONE]"),
]


def test_parses_crlf_lf_and_cr_line_endings_and_drops_comment_frames() -> None:
    assert SseParser().feed(STREAM) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 5, 13])
def test_same_events_whatever_the_chunking(size: int) -> None:
    parser = SseParser()
    events = []
    for start in range(0, len(STREAM), size):
        events += parser.feed(STREAM[start : start + size])
    assert events == EXPECTED


def test_incomplete_frame_waits_for_its_blank_line() -> None:
    parser = SseParser()
    assert parser.feed(b"data: x\r\n") == []
    assert parser.feed(b"\r") == []
    assert parser.feed(b"\n") == [SseEvent(None, b"x")]


def test_oversized_frame_is_dropped_and_counted() -> None:
    parser = SseParser()
    assert parser.feed(b"data: " + b"x" * (MAX_FRAME_BYTES + 1)) == []
    assert parser.oversized == 1
    assert parser.feed(b"data: y\n\n") == [SseEvent(None, b"y")]
