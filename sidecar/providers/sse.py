"""An incremental decoder for text/event-stream (the WHATWG server-sent events format)."""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.core.errors import ProviderMalformedError

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str
    data: str


class SseDecoder:
    """Feed it bytes as they arrive; it returns the events completed so far."""

    def __init__(self, max_event_bytes: int = 1 << 20) -> None:
        self._pending: list[bytes] = []  # the incomplete last line, in the pieces it arrived in
        self._pending_size = 0
        self._event = ""
        self._data: list[str] = []
        self._size = 0
        self._max = max_event_bytes
        self._first_line = True  # a byte order mark before it is ignored (WHATWG)

    def feed(self, data: bytes) -> list[SseEvent]:
        """Linear in the bytes fed, however they are split: a piece without a line end is only kept
        (joining the line on every read would make a long line split in small reads quadratic)."""
        if b"\n" not in data and b"\r" not in data:
            self._keep(data)
            self._check()
            return []
        buffer = b"".join((*self._pending, data)) if self._pending else data
        if b"\r" in buffer:
            buffer = _normalize_line_ends(buffer)
        lines = buffer.split(b"\n")
        self._pending, self._pending_size = [], 0
        self._keep(lines.pop())  # the incomplete last line (empty after a line end)
        if self._first_line and lines:  # a complete first line: only now may a BOM be whole
            self._first_line = False
            lines[0] = lines[0].removeprefix(_BOM)
        events: list[SseEvent] = []
        for raw in lines:
            event = self._line(raw.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
        self._check()
        return events

    def close(self) -> list[SseEvent]:
        """End of stream: a final event without its blank line is still dispatched."""
        rest = b"".join(self._pending)
        if rest.endswith(b"\r"):
            rest = rest[:-1] + b"\n"
        self._pending, self._pending_size = [], 0
        return self.feed(rest + b"\n\n") if rest or self._data else []

    def _keep(self, piece: bytes) -> None:
        if piece:
            self._pending.append(piece)
            self._pending_size += len(piece)

    def _check(self) -> None:
        if self._pending_size + self._size > self._max:
            raise ProviderMalformedError(f"server-sent event larger than {self._max} bytes")

    def _line(self, line: str) -> SseEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # comment / keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
            self._size += len(value) + 1  # and the line break joining it: empty lines count too
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
