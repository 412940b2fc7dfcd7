"""The semantic cache's store protocol and its in-memory store (numpy: the `embeddings` extra).

The memory store is bounded twice: per partition (the route's max_entries) and in total; the least
recently used entry goes first. Search is brute force: one matrix-vector product over the partition.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from sidecar.cache.semantic_key import Partition

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class SemanticMatch:
    similarity: float
    answer: bytes
    created_at: float  # wall clock


@dataclass(slots=True)
class _Entry:
    vector: Vector
    answer: bytes
    created_at: float
    expires_at: float


class SemanticStore(Protocol):
    async def search(
        self, partition: Partition, vector: Vector, now: float, *, touch_from: float = -1.0
    ) -> SemanticMatch | None:
        """The most similar live entry of the partition, whatever its similarity; None when empty.
        It counts as used (for the LRU bound) only when its similarity is at least `touch_from`."""
        ...

    async def add(
        self, partition: Partition, vector: Vector, answer: bytes, *, now: float, ttl: float, max_entries: int
    ) -> None: ...

    async def aclose(self) -> None: ...


def unit(values: Sequence[float]) -> Vector:
    v = np.asarray(values, dtype=np.float32)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


@dataclass(slots=True)
class _Bucket:
    entries: OrderedDict[int, _Entry] = field(default_factory=OrderedDict)
    matrix: Vector | None = None  # the entries' vectors stacked in `ids` order; None after a change
    ids: list[int] = field(default_factory=list)

    def scores(self, vector: Vector) -> tuple[list[int], Vector]:
        if self.matrix is None:
            self.ids = list(self.entries)
            self.matrix = np.stack([self.entries[i].vector for i in self.ids])
        scores: Vector = self.matrix @ vector
        return self.ids, scores


class MemorySemanticStore:
    """Bounded by entries and by bytes: an entry costs its answer and its vector twice (the vector,
    and its row in the partition's stacked matrix)."""

    def __init__(self, *, max_entries: int, max_bytes: int | None = None) -> None:
        self._max, self._max_bytes = max_entries, max_bytes
        self._buckets: dict[Partition, _Bucket] = {}
        self._order: OrderedDict[tuple[Partition, int], None] = OrderedDict()  # least recently used first
        self._next_id = 0
        self._bytes = 0

    @property
    def bytes_held(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._order)

    async def search(
        self, partition: Partition, vector: Vector, now: float, *, touch_from: float = -1.0
    ) -> SemanticMatch | None:
        bucket = self._buckets.get(partition)
        if bucket is None:
            return None
        for entry_id in [i for i, e in bucket.entries.items() if e.expires_at <= now]:
            self._drop(partition, entry_id)
        if not bucket.entries:
            return None
        ids, scores = bucket.scores(vector)
        best = int(np.argmax(scores))
        entry_id = ids[best]
        if scores[best] >= touch_from:
            self._order.move_to_end((partition, entry_id))
            bucket.entries.move_to_end(entry_id)
        entry = bucket.entries[entry_id]
        return SemanticMatch(float(scores[best]), entry.answer, entry.created_at)

    async def add(
        self, partition: Partition, vector: Vector, answer: bytes, *, now: float, ttl: float, max_entries: int
    ) -> None:
        entry = _Entry(vector.astype(np.float32), answer, now, now + ttl)
        if self._max_bytes is not None and _size(entry) > self._max_bytes:
            return  # could never be held within the bound
        bucket = self._buckets.setdefault(partition, _Bucket())
        self._next_id += 1
        bucket.entries[self._next_id] = entry
        bucket.matrix = None
        self._bytes += _size(entry)
        self._order[(partition, self._next_id)] = None
        while len(bucket.entries) > max_entries:
            self._drop(partition, next(iter(bucket.entries)))
        while len(self._order) > self._max or (self._max_bytes is not None and self._bytes > self._max_bytes):
            self._drop(*next(iter(self._order)))

    def _drop(self, partition: Partition, entry_id: int) -> None:
        bucket = self._buckets[partition]
        if (entry := bucket.entries.pop(entry_id, None)) is not None:
            self._bytes -= _size(entry)
        bucket.matrix = None
        self._order.pop((partition, entry_id), None)
        if not bucket.entries:
            del self._buckets[partition]

    async def aclose(self) -> None:
        self._buckets.clear()
        self._order.clear()
        self._bytes = 0


def _size(entry: _Entry) -> int:
    return len(entry.answer) + 2 * entry.vector.nbytes
