"""The marks that clears leave for conversations with nothing stored (in-memory store), bounded apart.

A clear must win over a turn (or a Switch) in flight for a conversation that has no stored state
yet, so it leaves a mark: the store-wide count at the clear, which the turn's append, its summary
and the Switch's activation are compared with. Kept in the conversations' own table, those marks
let a caller who clears made-up conversation ids push out other users' real conversations. So they
live here instead: at most `bound` of them (a tenth of `max_conversations` by default), each for the
conversations' TTL. A mark pushed out by the bound is not forgotten: it raises `floor`, a mark that
holds for every conversation with nothing stored. A turn that read its epoch before a mark it no
longer finds is refused all the same (the clear still wins); the price of a flood of clears is that
a turn started before the newest mark pushed out, on a conversation with nothing stored, loses its
exchange's memory (never its answer), and a Switch ticketed in that window is SWITCH_SUPERSEDED.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from sidecar.core.clock import Clock
from sidecar.core.lru import Lru

K = TypeVar("K")


class ClearMarks(Generic[K]):
    def __init__(self, bound: int, ttl_seconds: float, clock: Clock) -> None:
        self._bound, self._ttl, self._clock = max(1, bound), ttl_seconds, clock
        # key -> (expires at, mark), least recently put first
        self._marks: Lru[K, tuple[float, int]] = Lru(self._bound, self._pushed_out)
        self.floor = 0  # the highest mark pushed out by the bound

    def __len__(self) -> int:
        return len(self._marks)

    def get(self, key: K) -> int:
        """The mark that holds for `key`: its own, or the floor, whichever is higher."""
        entry = self._marks.peek(key)
        if entry is not None and entry[0] <= self._clock.monotonic():
            self._marks.pop(key)
            entry = None
        return max(self.floor, entry[1] if entry is not None else 0)

    def pop(self, key: K) -> int:
        """The mark that holds for `key` (as `get`), which a conversation written anew takes over."""
        mark = self.get(key)
        self._marks.pop(key, None)
        return mark

    def put(self, key: K, mark: int) -> None:
        self._marks.put(key, (self._clock.monotonic() + self._ttl, mark))

    def _pushed_out(self, key: K, entry: tuple[float, int]) -> None:
        expires, mark = entry
        if expires > self._clock.monotonic():
            self.lift(mark)

    def lift(self, mark: int) -> None:
        """A mark that can no longer be kept for its conversation holds for all of them."""
        self.floor = max(self.floor, mark)

    def clear(self) -> None:
        self._marks.clear()
