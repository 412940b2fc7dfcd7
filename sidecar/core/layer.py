"""The Layer pattern: every call is a stream of Chunks; a layer wraps the handler inside it."""

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


async def collect(handler: Handler, call: Call) -> tuple[str, Chunk]:
    """Run a call to completion: the whole text and the final chunk (unary Generate)."""
    parts: list[str] = []
    final = Chunk()
    async with aclosing(handler(call)) as stream:
        async for chunk in stream:
            if chunk.text:
                parts.append(chunk.text)
            if chunk.is_final:
                final = chunk
    return "".join(parts), final
