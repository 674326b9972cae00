"""Incremental parser of a ``text/event-stream`` body.

It takes bytes as they arrive (a frame may be split anywhere, even inside a ``\\r\\n``) and hands back each
complete frame that carries data. Comment-only frames (pings) are dropped, as a browser's EventSource does.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SseEvent", "SseParser"]

# Guards against a server that never ends a frame: past this, the buffered remainder is dropped and counted.
MAX_FRAME_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str | None
    data: bytes


def _parse_frame(frame: bytes) -> SseEvent | None:
    event: str | None = None
    data_lines: list[bytes] = []
    for line in frame.split(b"\n"):
        if not line or line[:1] == b":":
            continue
        field, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            data_lines.append(value)
        elif field == b"event":
            event = value.decode("utf-8", "replace")
    if not data_lines:
        return None
    return SseEvent(event, b"\n".join(data_lines))


class SseParser:
    """Feed body bytes, get complete events; ``oversized`` counts frames dropped for exceeding the bound."""

    __slots__ = ("_buf", "oversized")

    def __init__(self) -> None:
        self._buf = b""
        self.oversized = 0

    def feed(self, chunk: bytes) -> list[SseEvent]:
        raw = self._buf + chunk
        # A trailing CR may be the first half of CRLF: keep it raw until the next chunk says.
        cut = len(raw) - 1 if raw[-1:] == b"\r" else len(raw)
        text = raw[:cut].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        pieces = text.split(b"\n\n")
        self._buf = pieces[-1] + raw[cut:]
        if len(self._buf) > MAX_FRAME_BYTES:
            self._buf = b""
            self.oversized += 1
        events: list[SseEvent] = []
        for frame in pieces[:-1]:
            if frame:
                parsed = _parse_frame(frame)
                if parsed is not None:
                    events.append(parsed)
        return events
