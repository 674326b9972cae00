"""SSE framing is pure: exact bytes for data frames, event frames and the MLflow terminator."""

from runtime.streaming.sse import DONE_FRAME, data_frame, event_frame, json_bytes


def test_data_frame() -> None:
    assert data_frame(b'{"a":1}') == b'data: {"a":1}\n\n'


def test_event_frame() -> None:
    assert event_frame("response.created", b"{}") == b"event: response.created\ndata: {}\n\n"


def test_json_never_holds_a_raw_newline() -> None:
    payload = json_bytes({"delta": "line1\nline2\r\n"})
    assert b"\n" not in payload
    assert data_frame(payload).count(b"\n") == 2


def test_done_frame() -> None:
    assert DONE_FRAME == b"data: [DONE]\n\n"
