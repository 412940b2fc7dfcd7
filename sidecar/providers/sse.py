"""An incremental decoder for text/event-stream (the WHATWG server-sent events format)."""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.core.errors import ProviderMalformedError


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str
    data: str


class SseDecoder:
    """Feed it bytes as they arrive; it returns the events completed so far."""

    def __init__(self, max_event_bytes: int = 1 << 20) -> None:
        self._buffer = b""
        self._event = ""
        self._data: list[str] = []
        self._size = 0
        self._max = max_event_bytes

    def feed(self, data: bytes) -> list[SseEvent]:
        self._buffer += data
        events: list[SseEvent] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                break
            end, skip = cut
            line = self._buffer[:end].decode("utf-8", errors="replace")
            self._buffer = self._buffer[end + skip :]
            event = self._line(line)
            if event is not None:
                events.append(event)
        if len(self._buffer) + self._size > self._max:
            raise ProviderMalformedError(f"server-sent event larger than {self._max} bytes")
        return events

    def close(self) -> list[SseEvent]:
        """End of stream: a final event without its blank line is still dispatched."""
        events = self.feed(b"\n\n") if self._buffer or self._data else []
        return events

    def _line(self, line: str) -> SseEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # comment / keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
            self._size += len(value)
        elif name == "event":
            self._event = value
        return None  # id and retry are not used by LLM providers

    def _dispatch(self) -> SseEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = SseEvent(self._event or "message", "\n".join(self._data))
        self._event, self._data, self._size = "", [], 0
        return event


def _line_end(buffer: bytes) -> tuple[int, int] | None:
    """Position and length of the first line terminator (CRLF, LF or CR)."""
    lf = buffer.find(b"\n")
    cr = buffer.find(b"\r")
    if cr == -1 or (lf != -1 and lf < cr):
        return None if lf == -1 else (lf, 1)
    if cr == len(buffer) - 1:
        return None  # a CR at the end may be the first half of CRLF
    return (cr, 2) if buffer[cr + 1 : cr + 2] == b"\n" else (cr, 1)
