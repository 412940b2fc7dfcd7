"""stream_chunks: one chunk per network read, errors after the text that preceded them."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest

from sidecar.core.clock import FakeClock
from sidecar.core.errors import ProviderUnavailableError
from sidecar.core.types import Chunk, FinishReason, Usage
from sidecar.providers import openai
from sidecar.providers.sse import SseDecoder, SseEvent
from sidecar.providers.stream import stream_chunks
from tests.support.upstream import fixture, sse_events


async def reads(*raw: bytes) -> AsyncGenerator[list[SseEvent], None]:
    decoder = SseDecoder()
    for data in raw:
        if events := decoder.feed(data):
            yield events


async def run(*raw: bytes) -> list[Chunk]:
    return [c async for c in stream_chunks(reads(*raw), lambda e: openai.parse_event(e.data), FakeClock())]


async def test_one_chunk_per_read_and_the_final_chunk() -> None:
    events = sse_events(fixture("openai/stream.sse"))
    out = await run(b"".join(events[:3]), b"".join(events[3:]))
    assert [c.text for c in out] == ["Hello!", " How can I help you today?", ""]
    assert out[-1].finish_reason is FinishReason.STOP
    assert out[-1].usage == Usage(19, 9)


async def test_error_event_follows_the_text_read_with_it() -> None:
    out: list[str] = []
    with pytest.raises(ProviderUnavailableError):
        async for chunk in stream_chunks(
            reads(fixture("openai/stream_error.sse")), lambda e: openai.parse_event(e.data), FakeClock()
        ):
            out.append(chunk.text)
    assert out == ["Hello!"]


async def test_stops_reading_at_done() -> None:
    out = await run(fixture("openai/stream.sse") + b'data: {"not": "read"}\n\n')
    assert [c.text for c in out] == ["Hello! How can I help you today?", ""]


async def test_a_stream_that_reports_no_usage_ends_with_none_not_zero() -> None:
    """Zero would be charged as the answer's usage; None leaves the count to the sidecar."""
    events = [e for e in sse_events(fixture("openai/stream.sse")) if b'"usage":{' not in e]
    out = await run(b"".join(events))
    assert out[-1].finish_reason is FinishReason.STOP
    assert out[-1].usage is None


def test_a_completion_without_usage_has_none_not_zero() -> None:
    import json

    data = json.loads(fixture("openai/chat_completion.json"))
    del data["usage"]
    assert openai.parse_response(data).usage is None
