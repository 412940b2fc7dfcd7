"""The Embedder protocol and its result: a batch of texts in, one vector per text out."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from sidecar.core.clock import Deadline
from sidecar.core.errors import ProviderMalformedError
from sidecar.core.types import Usage


@dataclass(frozen=True, slots=True)
class Embeddings:
    """One vector per input text, in input order."""

    vectors: tuple[tuple[float, ...], ...]
    dimensions: int
    normalized: bool  # every vector has unit L2 norm, so a dot product is the cosine similarity
    usage: Usage  # input tokens as prompt_tokens; embeddings produce no completion tokens


class Embedder(Protocol):
    name: ClassVar[str]

    async def embed(self, texts: Sequence[str], *, deadline: Deadline) -> Embeddings: ...

    async def aclose(self) -> None: ...


T = TypeVar("T")
FLOAT32_MAX = 3.4028234663852886e38  # vectors travel as float32 (numpy, the proto's `float`)
MAX_DIMENSIONS = 65_536  # the most a deployment may ask for (config/embeddings.py); no model makes more


def checked_vectors(rows: Any, count: int, dimensions: int | None = None) -> tuple[tuple[float, ...], ...]:
    """Vectors from an upstream answer: `count` lists of floats finite in float32, all of one length
    (a larger JSON number would become infinite, then a NaN similarity): `dimensions` when the
    deployment asked for that many (a server that ignores the request answers another size), and
    never more than MAX_DIMENSIONS."""
    if not isinstance(rows, list) or len(rows) != count:
        raise ProviderMalformedError(f"expected {count} embeddings, the upstream sent another number")
    vectors: list[tuple[float, ...]] = []
    for row in rows:
        if (
            not isinstance(row, list | tuple)
            or not 0 < len(row) <= MAX_DIMENSIONS
            or not all(map(_finite, row))
        ):
            raise ProviderMalformedError(
                f"an embedding is not a list of 1 to {MAX_DIMENSIONS} finite float32 numbers"
            )
        vectors.append(tuple(float(v) for v in row))
    size = (dimensions or len(vectors[0])) if vectors else 0
    if any(len(v) != size for v in vectors):
        expected = f"{dimensions} (as asked)" if dimensions else "one length"
        raise ProviderMalformedError(f"embeddings not all of {expected} in one answer")
    return tuple(vectors)


def is_normalized(vectors: Sequence[Sequence[float]], tolerance: float = 1e-3) -> bool:
    return all(abs(math.sqrt(sum(x * x for x in v)) - 1.0) <= tolerance for v in vectors)


def _finite(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and abs(value) <= FLOAT32_MAX
    )


def batches(texts: Sequence[str], size: int) -> list[Sequence[str]]:
    """The texts in order, in pieces of at most `size` (a provider's limit per request)."""
    return [texts[i : i + size] for i in range(0, len(texts), size)]


async def each(calls: Sequence[Callable[[], Awaitable[T]]], concurrency: int) -> list[T]:
    """Every call's result in order, `concurrency` of them running at a time. The first failure is
    raised as it is (a TaskGroup would wrap it in an ExceptionGroup, which nothing classifies), once
    the other calls are cancelled and ended (their connections closed)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    tasks = [asyncio.ensure_future(one(call)) for call in calls]
    if not tasks:
        return []
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        # every call ended; the failures after the first are taken here, not logged as lost
        await asyncio.gather(*tasks, return_exceptions=True)
