"""A bounded map that forgets the least recently used key first: the one LRU of the sidecar's
in-memory caches, limits and stores.

`get` is a use (the key becomes the most recent), as is `refresh`; `peek`, `lru[key]`, `in` and
iteration are not.
`put` inserts or replaces a key as the most recent and, past `max_entries`, drops the least recent,
handing it to `on_evict` (to wipe it, wake its waiters, or count its bytes). `pop` and `clear` remove
without calling `on_evict`: the caller removing a key knows it does. Values are never None (`get`
and `peek` answer None for a missing key).

On the request path (token counts, decrypted keys), so it is an OrderedDict with its C methods
bound once, and no lock: the sidecar's users are single-threaded (one event loop). `peek` and
`refresh` are those C methods themselves (OrderedDict's get and move_to_end): a hot path that
writes `peek` then `refresh` costs what it cost on an OrderedDict, where `get` adds a Python call.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, ItemsView, Iterator, ValuesView
from typing import Generic, TypeVar, overload

K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")
_MISSING: object = object()


class Lru(Generic[K, V]):
    __slots__ = ("_data", "_max", "_on_evict", "_popitem", "peek", "refresh")

    peek: Callable[[K], V | None]
    """The value, its place in the order left as it is; None when the key is not held."""
    refresh: Callable[[K], None]
    """Make a held key the most recently used (KeyError when it is not held)."""

    def __init__(self, max_entries: int, on_evict: Callable[[K, V], None] | None = None) -> None:
        if max_entries < 0:
            raise ValueError("Lru needs max_entries >= 0")
        data: OrderedDict[K, V] = OrderedDict()  # least recently used first
        self._data, self._max, self._on_evict = data, max_entries, on_evict
        self.peek, self.refresh, self._popitem = data.get, data.move_to_end, data.popitem

    def get(self, key: K) -> V | None:
        """The value, now the most recently used; None when the key is not held."""
        value = self.peek(key)
        if value is not None:
            self.refresh(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Hold `value` under `key` as the most recently used; past `max_entries` the least recently
        used key goes (to `on_evict`)."""
        data = self._data
        if key in data:
            self.refresh(key)
            data[key] = value
            return
        data[key] = value
        if len(data) > self._max:  # one new key: one goes (every key came in through here)
            old_key, old_value = self._popitem(False)
            if self._on_evict is not None:
                self._on_evict(old_key, old_value)

    @overload
    def pop(self, key: K) -> V: ...

    @overload
    def pop(self, key: K, default: D) -> V | D: ...

    def pop(self, key: K, default: object = _MISSING) -> object:
        """Remove the key and answer its value (as dict.pop: KeyError without a default)."""
        if default is _MISSING:
            return self._data.pop(key)
        return self._data.pop(key, default)

    def clear(self) -> None:
        self._data.clear()

    def values(self) -> ValuesView[V]:
        """Least recently used first."""
        return self._data.values()

    def items(self) -> ItemsView[K, V]:
        """Least recently used first."""
        return self._data.items()

    def __getitem__(self, key: K) -> V:
        """The value, its place left as it is (KeyError when the key is not held)."""
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[K]:
        """The keys, least recently used first."""
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)
