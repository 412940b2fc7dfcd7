"""The Embedder protocol and its result: a batch of texts in, one vector per text out."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

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
        if not isinstance(row, list) or not 0 < len(row) <= MAX_DIMENSIONS or not all(map(_finite, row)):
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
