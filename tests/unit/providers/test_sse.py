from __future__ import annotations

import pytest

from sidecar.core.errors import ProviderMalformedError
from sidecar.providers.sse import SseDecoder, SseEvent
from tests.support.upstream import fixture

TRANSCRIPT = (
    b"event: a\ndata: one\n\n: keep-alive comment\n\ndata: two\ndata: lines\n\nevent: b\ndata:three\n\n"
)
EXPECTED = [SseEvent("a", "one"), SseEvent("message", "two\nlines"), SseEvent("b", "three")]


def test_whole_transcript() -> None:
    assert SseDecoder().feed(TRANSCRIPT) == EXPECTED


def test_any_split_of_the_bytes_gives_the_same_events() -> None:
    for cut in range(len(TRANSCRIPT)):
        d = SseDecoder()
        assert d.feed(TRANSCRIPT[:cut]) + d.feed(TRANSCRIPT[cut:]) + d.close() == EXPECTED


def test_byte_by_byte_with_crlf_and_cr_line_ends() -> None:
    for sep in (b"\r\n", b"\r"):
        raw = TRANSCRIPT.replace(b"\n", sep)
        d = SseDecoder()
        events = [e for i in range(len(raw)) for e in d.feed(raw[i : i + 1])] + d.close()
        assert events == EXPECTED


def test_final_event_without_blank_line_is_dispatched_at_close() -> None:
    d = SseDecoder()
    assert d.feed(b"data: [DONE]") == []
    assert d.close() == [SseEvent("message", "[DONE]")]


def test_utf8_split_inside_a_character() -> None:
    raw = "data: héllo 🌍\n\n".encode()
    d = SseDecoder()
    events = [e for i in range(len(raw)) for e in d.feed(raw[i : i + 1])]
    assert events == [SseEvent("message", "héllo 🌍")]


def test_oversized_event_is_malformed() -> None:
    d = SseDecoder(max_event_bytes=100)
    with pytest.raises(ProviderMalformedError):
        d.feed(b"data: " + b"x" * 200)


def test_recorded_openai_transcript_has_every_event() -> None:
    events = SseDecoder().feed(fixture("openai/stream.sse"))
    assert len(events) == 13 and events[-1].data == "[DONE]"


def test_an_event_of_many_data_lines_is_bounded() -> None:
    d = SseDecoder(max_event_bytes=100)
    with pytest.raises(ProviderMalformedError):
        d.feed(b"data: 0123456789\n" * 20)


@pytest.mark.timeout(10)
def test_a_long_line_split_in_small_reads_is_decoded_in_linear_time() -> None:
    """A 4 MiB event arriving 64 bytes at a time: each read is only kept until its line ends.
    Re-joining the line on every read copied ~137 GB here (minutes of CPU with the event loop, and
    so every other call, blocked); kept in pieces it is about 65,000 cheap appends."""
    size, piece = 4 << 20, 64
    raw = b"data: " + b"x" * size + b"\n\n"
    d = SseDecoder(max_event_bytes=size + 1)
    events = [e for i in range(0, len(raw), piece) for e in d.feed(raw[i : i + piece])]
    assert [len(e.data) for e in events] == [size]


def test_a_leading_byte_order_mark_is_ignored_however_the_bytes_are_split() -> None:
    """WHATWG: one leading U+FEFF is ignored. It made the first line's field `\\ufeffevent`, and
    Anthropic's message_start (the prompt's token counts) was dropped."""
    raw = b"\xef\xbb\xbf" + TRANSCRIPT
    for cut in range(6):
        d = SseDecoder()
        assert d.feed(raw[:cut]) + d.feed(raw[cut:]) + d.close() == EXPECTED
    d = SseDecoder()
    assert [e for i in range(len(raw)) for e in d.feed(raw[i : i + 1])] + d.close() == EXPECTED


def test_a_byte_order_mark_after_the_start_is_text() -> None:
    assert SseDecoder().feed(b"data: one\n\n\xef\xbb\xbfdata: two\n\n") == [SseEvent("message", "one")]


def test_an_event_of_empty_data_lines_is_bounded_too() -> None:
    """Each data line adds a line break to the event's data: `data:` lines with nothing after them
    counted 0, so an upstream sending them without a blank line grew one event without limit (4
    million of them, 24 MB on the wire, held 35 MB and dispatched a 4 MB event past a 1 MiB bound)."""
    d = SseDecoder(max_event_bytes=100)
    with pytest.raises(ProviderMalformedError):
        d.feed(b"data:\n" * 200)
