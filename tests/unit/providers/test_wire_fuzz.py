"""Gemini's and Bedrock's answers as a hostile upstream writes them: valid answers (unary and
streamed) with values of the wrong type, huge or negative counts, NaN, lone surrogates, deep
nesting, removed fields, repeated parts. Each is a parsed answer that holds the invariants
(tests/support/wire_fuzz.py) or a ProviderError (a bad answer: fallback, or STREAM_INTERRUPTED),
never another exception (INTERNAL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.core.errors import ProviderError
from sidecar.core.types import Chunk, FinishReason, ToolCallDelta
from sidecar.providers import bedrock, gemini
from sidecar.providers._http import decode_json
from sidecar.providers.sse import SseEvent
from sidecar.providers.stream import StreamAssembler, parse_answer
from tests.support import eventstream
from tests.support.wire_fuzz import assembled, check_calls, check_chunk, check_usage, mutated, wire_text

FUZZ = settings(
    max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None
)
SIG = "c2lnbmF0dXJl"
GEMINI_USAGE = {
    "promptTokenCount": 10,
    "candidatesTokenCount": 5,
    "thoughtsTokenCount": 3,
    "cachedContentTokenCount": 2,
    "totalTokenCount": 18,
}
GEMINI_PARTS = [
    {"text": "thinking it over", "thought": True},
    {"text": "Checking.", "thoughtSignature": SIG},
    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}, "thoughtSignature": SIG},
    {"functionCall": {"name": "get_time", "args": {"zone": "CET"}}},
]
GEMINI_ANSWER = {
    "candidates": [{"content": {"role": "model", "parts": GEMINI_PARTS}, "finishReason": "STOP", "index": 0}],
    "promptFeedback": {"safetyRatings": []},
    "usageMetadata": GEMINI_USAGE,
    "modelVersion": "gemini-2.5-flash",
    "responseId": "r1",
}
GEMINI_EVENTS = [
    {"candidates": [{"content": {"role": "model", "parts": [p]}, "index": 0}], "responseId": "r1"}
    for p in GEMINI_PARTS
] + [
    {"candidates": [{"finishReason": "STOP", "index": 0}], "usageMetadata": GEMINI_USAGE, "responseId": "r1"}
]
GEMINI_BLOCKED = {  # a prompt refused: no candidates, promptFeedback says why
    "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [{"category": "x", "probability": "HIGH"}]},
    "usageMetadata": {"promptTokenCount": 10, "totalTokenCount": 10},
}

BEDROCK_ANSWER = {
    "output": {
        "message": {
            "role": "assistant",
            "content": [
                {"reasoningContent": {"reasoningText": {"text": "hm", "signature": SIG}}},
                {"text": "Checking."},
                {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Paris"}}},
                {"toolUse": {"toolUseId": "t2", "name": "get_time", "input": {}}},
            ],
        }
    },
    "stopReason": "tool_use",
    "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 17, "cacheReadInputTokens": 1,
              "cacheWriteInputTokens": 1},
    "metrics": {"latencyMs": 10},
}  # fmt: skip
BEDROCK_EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("messageStart", {"role": "assistant"}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hm"}}}),
    ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": SIG}}}),
    ("contentBlockStop", {"contentBlockIndex": 0}),
    ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "Checking."}}),
    ("contentBlockStart", {"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "t1", "name": "f"}}}),
    ("contentBlockStart", {"contentBlockIndex": 3, "start": {"toolUse": {"toolUseId": "t2", "name": "g"}}}),
    ("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": '{"city":'}}}),
    ("contentBlockDelta", {"contentBlockIndex": 3, "delta": {"toolUse": {"input": "{}"}}}),
    ("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"toolUse": {"input": '"Paris"}'}}}),
    ("contentBlockStop", {"contentBlockIndex": 2}),
    ("contentBlockStop", {"contentBlockIndex": 3}),
    ("messageStop", {"stopReason": "tool_use"}),
    ("metadata", {"usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
                  "metrics": {"latencyMs": 9}}),
]  # fmt: skip


def _maybe_mutated(valid: Any) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(valid), mutated(valid))


def _unary(parse: Any, doc: Any) -> None:
    try:
        data = decode_json(wire_text(doc))
        chunk = parse_answer(parse, data)
    except ProviderError:
        return
    check_chunk(chunk)


def _streamed(events: list[Any], parse: Any) -> None:
    """The events through the parser and the assembler as stream_chunks runs them."""
    assembler, deltas, chunks = StreamAssembler(), list[ToolCallDelta](), list[Chunk]()
    try:
        for event in events:
            chunk = assembler.feed(parse_answer(parse, event))
            if chunk is not None:
                chunks.append(chunk)
                deltas += chunk.tool_calls
        final = assembler.final()
    except ProviderError:
        return
    for chunk in chunks:
        check_chunk(Chunk(text=chunk.text, thinking=chunk.thinking, thinking_blocks=chunk.thinking_blocks))
    check_usage(final.usage)
    check_calls(assembled(deltas), whole=final.finish_reason is FinishReason.TOOL_CALLS)


def test_the_valid_answers_parse_whole() -> None:
    """The seeds of the fuzzing are good answers: they parse, and hold every invariant."""
    check_chunk(gemini.parse_response(GEMINI_ANSWER))
    assert gemini.parse_response(GEMINI_BLOCKED).finish_reason is FinishReason.CONTENT_FILTER
    check_chunk(bedrock.parse_response(BEDROCK_ANSWER))
    assert len(gemini.parse_response(GEMINI_ANSWER).tool_calls) == 2
    assert len(bedrock.parse_response(BEDROCK_ANSWER).tool_calls) == 2


@FUZZ
@given(st.one_of(mutated(GEMINI_ANSWER), mutated(GEMINI_BLOCKED)))
def test_gemini_answers_parse_or_are_bad_answers(doc: Any) -> None:
    _unary(gemini.parse_response, doc)


@FUZZ
@given(st.lists(st.sampled_from(range(len(GEMINI_EVENTS) + 1)), min_size=1, max_size=8), st.data())
def test_gemini_streams_parse_or_are_bad_answers(order: list[int], data: st.DataObject) -> None:
    events = [data.draw(_maybe_mutated([*GEMINI_EVENTS, GEMINI_BLOCKED][i])) for i in order]
    _streamed([SseEvent("message", wire_text(e)) for e in events], gemini.StreamParser())


@FUZZ
@given(mutated(BEDROCK_ANSWER))
def test_bedrock_answers_parse_or_are_bad_answers(doc: Any) -> None:
    _unary(bedrock.parse_response, doc)
    _unary(lambda d: bedrock.parse_response(d, answer="get_weather"), doc)


def _frames(events: list[tuple[str, Any]]) -> bytes:
    return b"".join(
        eventstream.frame(
            {":event-type": kind, ":content-type": "application/json", ":message-type": "event"},
            wire_text(body).encode("utf-8", "surrogatepass"),
        )
        for kind, body in events
    )


async def _messages(raw: bytes, cuts: list[int]) -> list[Any]:
    async def reads() -> AsyncGenerator[bytes, None]:
        start = 0
        for cut in sorted(c % (len(raw) + 1) for c in cuts):
            yield raw[start:cut]
            start = cut
        yield raw[start:]

    out: list[Any] = []
    async for batch in bedrock.event_messages(reads()):
        out += batch
    return out


@FUZZ
@given(
    st.lists(st.sampled_from(range(len(BEDROCK_EVENTS))), min_size=1, max_size=16),
    st.data(),
    st.lists(st.integers(0, 10_000), max_size=4),
    st.none() | st.tuples(st.integers(0, 10_000), st.integers(0, 255)),
    st.none() | st.just("f"),
)
def test_bedrock_streams_parse_or_are_bad_answers(
    order: list[int], data: st.DataObject, cuts: list[int], flip: tuple[int, int] | None, answer: str | None
) -> None:
    events = [(BEDROCK_EVENTS[i][0], data.draw(_maybe_mutated(BEDROCK_EVENTS[i][1]))) for i in order]
    raw = bytearray(_frames(events))
    if flip is not None:
        raw[flip[0] % len(raw)] = flip[1]
    try:
        messages = asyncio.run(_messages(bytes(raw), cuts))
    except ProviderError:
        return
    _streamed(messages, bedrock.StreamParser(answer))
