"""A sliding-window event counter in O(1) memory: a ring of time buckets, reset lazily."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from typing import Generic, TypeVar

from sidecar.core.clock import Clock

K = TypeVar("K", bound=enum.Enum)


class SlidingCounter(Generic[K]):
    """Counts events of each kind of an enum over roughly the last ``window_seconds``.

    Time on the clock's monotonic scale is cut into buckets of ``width = window_seconds / buckets``
    seconds, aligned to multiples of the width. The ring keeps one slot per bucket of the window, each
    slot a count per kind and the number of the bucket it belongs to. A slot whose bucket has left the
    window is ignored when read and reset the next time it is written, so memory is
    ``buckets * len(kinds)`` integers whatever the traffic, and nothing runs in the background.

    Granularity: an event counts from the moment it is added until the end of the ``buckets``-th bucket
    counted from its own, i.e. for at least ``window_seconds - width`` and at most ``window_seconds``
    seconds. Events never count for longer than the window; with the default 10 buckets they may be
    forgotten up to 10 % of the window early.

    Not thread-safe: it is meant to be driven from one event loop, like the rest of the pipeline.
    """

    def __init__(self, kinds: type[K], *, window_seconds: float, clock: Clock, buckets: int = 10) -> None:
        if window_seconds <= 0:
            raise ValueError(f"window_seconds must be > 0, got {window_seconds}")
        if buckets < 1:
            raise ValueError(f"buckets must be >= 1, got {buckets}")
        self._kinds: tuple[K, ...] = tuple(kinds)
        self._index = {kind: i for i, kind in enumerate(self._kinds)}
        self._clock = clock
        self._width = window_seconds / buckets
        # A slot with all-zero counts is harmless whatever bucket number it carries, so -1 is a safe start.
        self._bucket_of_slot = [-1] * buckets
        self._counts = [[0] * len(self._kinds) for _ in range(buckets)]

    @property
    def width(self) -> float:
        """Seconds per bucket: the granularity of the window."""
        return self._width

    def add(self, kind: K, n: int = 1) -> None:
        """Count ``n`` events of ``kind`` now."""
        bucket = self._bucket_now()
        slot = bucket % len(self._counts)
        if self._bucket_of_slot[slot] != bucket:
            self._bucket_of_slot[slot] = bucket
            self._counts[slot] = [0] * len(self._kinds)
        self._counts[slot][self._index[kind]] += n

    def totals(self) -> Mapping[K, int]:
        """Events per kind in the window ending now (every kind present, zero if none)."""
        now = self._bucket_now()
        sums = [0] * len(self._kinds)
        for bucket, counts in zip(self._bucket_of_slot, self._counts, strict=True):
            if 0 <= now - bucket < len(self._counts):
                for i, count in enumerate(counts):
                    sums[i] += count
        return dict(zip(self._kinds, sums, strict=True))

    def clear(self) -> None:
        """Forget every event."""
        for counts in self._counts:
            counts[:] = [0] * len(self._kinds)

    def _bucket_now(self) -> int:
        return math.floor(self._clock.monotonic() / self._width)
