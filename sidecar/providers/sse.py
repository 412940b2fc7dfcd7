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
        buffer = self._buffer + data
        if b"\r" in buffer:
            buffer = _normalize_line_ends(buffer)
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()  # the incomplete last line (empty after a line end)
        events: list[SseEvent] = []
        for raw in lines:
            event = self._line(raw.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
        if len(self._buffer) + self._size > self._max:
            raise ProviderMalformedError(f"server-sent event larger than {self._max} bytes")
        return events

    def close(self) -> list[SseEvent]:
        """End of stream: a final event without its blank line is still dispatched."""
        if self._buffer.endswith(b"\r"):
            self._buffer = self._buffer[:-1] + b"\n"
        return self.feed(b"\n\n") if self._buffer or self._data else []

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


def _normalize_line_ends(buffer: bytes) -> bytes:
    """CRLF and lone CR become LF; a CR at the very end waits, as it may be half of a CRLF."""
    tail = b"\r" if buffer.endswith(b"\r") else b""
    body = buffer[: len(buffer) - len(tail)]
    return body.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + tail
