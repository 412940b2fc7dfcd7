"""An upstream's answer read into Chunks: pure parse functions run under `parse_answer` (a shape they
trip over is a bad answer, never INTERNAL), stream events assembled into text, tool-call, thinking
and final chunks (`StreamAssembler`), and a whole event stream relayed with `stream_chunks`, read to
the end of its HTTP response so the connection goes back to the pool."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import TypeVar

from sidecar.core.clock import Clock, Deadline
from sidecar.core.errors import (
    DeadlineExceededError,
    ProviderError,
    ProviderMalformedError,
    ProviderUnavailableError,
)
from sidecar.core.types import Chunk, FinishReason, ThinkingBlock, ToolCallDelta, Usage

E = TypeVar("E")  # one event of an upstream stream, as its transport decodes it
R = TypeVar("R")
_SHAPE_ERRORS = (TypeError, AttributeError, KeyError, IndexError, RecursionError)


def parse_answer(parse: Callable[[E], R], data: E) -> R:
    """Run a pure parse function on upstream data. The parsers raise ProviderMalformedError for the
    shapes they know to be wrong; any other shape they trip over is a bad answer too (never INTERNAL):
    the route falls back, the breaker counts it, a started stream ends STREAM_INTERRUPTED."""
    try:
        return parse(data)
    except _SHAPE_ERRORS as exc:
        raise ProviderMalformedError(
            f"upstream answer has an unexpected shape ({type(exc).__name__})"
        ) from exc


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """What one upstream stream event means, provider-neutral. Produced by pure parse functions."""

    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    done: bool = False
    tool_calls: tuple[ToolCallDelta, ...] = ()  # indexes as the provider numbers them
    thinking: str = ""
    thinking_signature: str = ""  # ends the thinking block whose text came before it
    redacted_thinking: str = ""  # a whole redacted thinking block (its opaque data)
    refused: bool = False  # the text is the model's refusal (OpenAI's `refusal`): a filtered answer
    blocks: tuple[ThinkingBlock, ...] = ()  # whole blocks as they came (Gemini's part signatures)


class StreamAssembler:
    """Turns parsed stream events into Chunks: text at once, one final chunk at the end.

    Providers report finish reason and usage in separate events (OpenAI sends usage after the
    finish reason; Anthropic splits input and output counts), so both are held until the end. A
    stream that reported no usage at all ends with usage None (not zero): the sidecar counts it.
    """

    def __init__(self) -> None:
        self._finish: FinishReason | None = None
        self._usage: Usage | None = None
        self._done = False
        self._refused = False
        self._calls: dict[int, int] = {}  # provider index -> the call's ordinal (0, 1, ...)
        self._thought: list[str] = []  # the text of the thinking block not yet signed

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, event: StreamEvent) -> Chunk | None:
        # a filter's finish is never undone by a later one: a hostile upstream's `stop` after it
        # (and Azure's asynchronous filter may report content_filter after `stop`: it then wins)
        if event.finish_reason is not None and self._finish is not FinishReason.CONTENT_FILTER:
            self._finish = event.finish_reason
        if event.usage is not None:
            self._usage = event.usage if self._usage is None else self._usage.merge(event.usage)
        if event.done:
            self._done = True
        self._refused = self._refused or event.refused
        blocks = self._thinking_blocks(event)
        if not (event.text or event.tool_calls or event.thinking or blocks):
            return None
        calls = tuple(
            dataclasses.replace(d, index=self._calls.setdefault(d.index, len(self._calls)))
            for d in event.tool_calls
        )
        return Chunk(text=event.text, tool_calls=calls, thinking=event.thinking, thinking_blocks=blocks)

    def _thinking_blocks(self, event: StreamEvent) -> tuple[ThinkingBlock, ...]:
        """A signed block once its signature arrives (with the text since the last one), or a
        redacted block as it came."""
        if event.thinking:
            self._thought.append(event.thinking)
        if event.thinking_signature:
            text, self._thought = "".join(self._thought), []
            return (ThinkingBlock(text=text, signature=event.thinking_signature), *event.blocks)
        if event.redacted_thinking:
            return (ThinkingBlock(redacted=event.redacted_thinking), *event.blocks)
        return event.blocks

    def final(self) -> Chunk:
        """The closing chunk; a stream that never said how it finished is broken, not complete."""
        if self._finish is None:
            raise ProviderUnavailableError("upstream stream ended before it finished")
        finish = self._finish
        if self._refused and finish is FinishReason.STOP:  # a refusal that ran to its end
            finish = FinishReason.CONTENT_FILTER
        return Chunk(finish_reason=finish, usage=self._usage)


async def stream_chunks(
    batches: AsyncGenerator[list[E], None],
    parse: Callable[[E], StreamEvent],
    clock: Clock,
    deadline: Deadline | None = None,
) -> AsyncGenerator[Chunk, None]:
    """Parse an upstream event stream (SSE, or AWS event-stream messages) into Chunks, one per
    network read, ending with the final chunk.

    Text of events that arrived together is joined into one chunk. An error event goes out after
    the text that preceded it, so "after the first chunk" means the same as on the wire.
    """
    assembler = StreamAssembler()
    async with aclosing(batches):
        async for batch in batches:
            parts: list[Chunk] = []
            failure: ProviderError | None = None
            for event in batch:
                try:
                    chunk = assembler.feed(parse_answer(parse, event))
                except ProviderError as exc:
                    failure = exc
                    break
                if chunk is not None:
                    parts.append(chunk)
                if assembler.done:
                    break
            if parts:
                yield _joined(parts)
            if failure is not None:
                raise failure
            if assembler.done:
                break
        yield assembler.final()
        if assembler.done:
            await _drain(batches, clock, deadline)


def _joined(parts: list[Chunk]) -> Chunk:
    """The pieces that arrived together as one chunk (tool-call pieces kept in order)."""
    if len(parts) == 1:
        return parts[0]
    return Chunk(
        text="".join(p.text for p in parts),
        tool_calls=tuple(d for p in parts for d in p.tool_calls),
        thinking="".join(p.thinking for p in parts),
        thinking_blocks=tuple(b for p in parts for b in p.thinking_blocks),
    )


DRAIN_SECONDS = 0.25


async def _drain(batches: AsyncGenerator[list[E], None], clock: Clock, deadline: Deadline | None) -> None:
    """Read past the end marker to the end of the HTTP response, so the connection goes back to the
    pool; an upstream that keeps it open longer than a moment just loses it. The caller's result
    waits for this: it takes at most half the call's time left, and the deadline is never its."""
    remaining = None if deadline is None else deadline.remaining()
    wait = DRAIN_SECONDS if remaining is None else min(DRAIN_SECONDS, remaining / 2)
    try:
        async with clock.timeout(wait), aclosing(batches) as rest:
            async for _ in rest:
                pass
    except (TimeoutError, ProviderError, DeadlineExceededError):
        pass
