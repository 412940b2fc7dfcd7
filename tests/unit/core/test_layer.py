from __future__ import annotations

from collections.abc import AsyncGenerator

from sidecar.core.layer import Handler, compose
from sidecar.core.types import Call, Chunk


def tag(name: str, log: list[str]):  # type: ignore[no-untyped-def]
    def layer(inner: Handler) -> Handler:
        async def handler(call: Call) -> AsyncGenerator[Chunk, None]:
            log.append(f"{name}>")
            async for chunk in inner(call):
                yield Chunk(text=chunk.text + name)
            log.append(f"<{name}")

        return handler

    return layer


async def test_first_layer_is_outermost() -> None:
    log: list[str] = []

    async def terminal(call: Call) -> AsyncGenerator[Chunk, None]:
        log.append("terminal")
        yield Chunk(text="")

    handler = compose(terminal, [tag("a", log), tag("b", log)])
    out = [c.text async for c in handler(None)]  # type: ignore[arg-type]
    assert out == ["ba"]
    assert log == ["a>", "b>", "terminal", "<b", "<a"]
