"""The Layer pattern: every call is a stream of Chunks; a layer wraps the handler inside it.

A layer either returns its inner handler's stream as it is (no hop of its own), or consumes it
through `inner_stream`, which closes it whichever way the layer's own stream ends: exhausted,
raised, cancelled, or closed by its consumer (GeneratorExit). The inner cleanup (quota settle,
attempt bookkeeping, the upstream response) then runs in the call's own task, never left to the
garbage collector. tests/unit/core/test_guards.py fails on any other way of consuming it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from typing import Protocol

from sidecar.core.types import Call, Chunk


class Handler(Protocol):
    """Serve one call as a stream of chunks. It may raise before returning the stream."""

    def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]: ...


Layer = Callable[[Handler], Handler]


def compose(terminal: Handler, layers: Sequence[Layer]) -> Handler:
    """Wrap `terminal` in `layers`; layers[0] is the outermost."""
    handler = terminal
    for layer in reversed(layers):
        handler = layer(handler)
    return handler


def inner_stream(handler: Handler, call: Call) -> aclosing[AsyncGenerator[Chunk, None]]:
    """The one way to consume a handler's stream: `async with inner_stream(inner, call) as chunks:`.

    The generator itself is iterated (no per-chunk wrapper); leaving the block closes it.
    """
    return aclosing(handler(call))


async def collect(handler: Handler, call: Call) -> tuple[str, Chunk]:
    """Run a call to completion: the whole text and the final chunk (unary Generate)."""
    parts: list[str] = []
    final = Chunk()
    async with inner_stream(handler, call) as stream:
        async for chunk in stream:
            if chunk.text:
                parts.append(chunk.text)
            if chunk.is_final:
                final = chunk
    return "".join(parts), final
