"""Micro-benchmark of the bounded LRU maps on the request path: a get that hits and a put that evicts.

    .venv/bin/python bench/lru_micro.py [rounds]

Rows:
- `map`: the bare operations, as the modules wrote them on an OrderedDict (get + move_to_end;
  set + move_to_end + len + popitem(last=False)) and through sidecar/core/lru.py (skipped where it
  does not exist): Lru.get (a Python call), Lru.peek + Lru.refresh (the hot paths' way), Lru.put.
- `MemoizedCount`: a hit (a 400-character text counted before) and a miss that evicts (a new text,
  a count of len(): the cost of the digest and the map), in sidecar/context/tokenizer.py.
- `KeyCache.get`: a hit, driven without an event loop (a hit never awaits).
Run it with PYTHONPATH at another tree (`git archive REV sidecar | tar -x -C /tmp/rev`) to compare.
Times are CPU time of this process (the minimum of the rounds): the machine may be shared.
"""

from __future__ import annotations

import asyncio
import sys
import time
import timeit
from collections import OrderedDict
from collections.abc import Callable

from sidecar.context.tokenizer import MemoizedCount
from sidecar.core.clock import FakeClock
from sidecar.keys.cache import KeyCache, KeyCachePolicy, cache_key_for

N = 200_000
SIZE = 10_000


def best(stmt: Callable[[], object], rounds: int) -> float:
    """Nanoseconds per call: the least of `rounds` rounds of N calls, in CPU time."""
    timer = timeit.Timer(stmt, timer=time.process_time)
    return min(timer.repeat(repeat=rounds, number=N)) / N * 1e9


def map_rows(rounds: int) -> dict[str, float]:
    keys = [f"key-{i}".encode() for i in range(SIZE * 4)]
    hit = keys[SIZE // 2]
    od: OrderedDict[bytes, int] = OrderedDict((k, 1) for k in keys[:SIZE])

    def od_get() -> object:
        value = od.get(hit)
        if value is not None:
            od.move_to_end(hit)
        return value

    fresh = iter(keys * (N * 10 // len(keys) + 1))

    def od_put() -> None:
        key = next(fresh)
        od[key] = 1
        od.move_to_end(key)
        while len(od) > SIZE:
            od.popitem(last=False)

    rows = {
        "map get-hit, OrderedDict": best(od_get, rounds),
        "map put-evict, OrderedDict": best(od_put, rounds),
    }
    try:
        from sidecar.core.lru import Lru
    except ImportError:
        return rows
    lru: Lru[bytes, int] = Lru(SIZE)
    for k in keys[:SIZE]:
        lru.put(k, 1)
    fresh_lru = iter(keys * (N * 10 // len(keys) + 1))

    def lru_peek_refresh() -> object:
        value = lru.peek(hit)
        if value is not None:
            lru.refresh(hit)
        return value

    rows["map get-hit, Lru.get"] = best(lambda: lru.get(hit), rounds)
    rows["map get-hit, Lru.peek+refresh"] = best(lru_peek_refresh, rounds)
    rows["map put-evict, Lru.put"] = best(lambda: lru.put(next(fresh_lru), 1), rounds)
    return rows


def memoized_rows(rounds: int) -> dict[str, float]:
    count = MemoizedCount(len, max_entries=SIZE)
    known = "a known text " * 31
    count(known)
    texts = iter([f"{i:08d}" + "a new text " * 36 for i in range(N * rounds + SIZE)])
    for _ in range(SIZE):
        count(next(texts))
    return {
        "MemoizedCount hit": best(lambda: count(known), rounds),
        "MemoizedCount miss-evict": best(lambda: count(next(texts)), rounds),
    }


def key_cache_rows(rounds: int) -> dict[str, float]:
    cache = KeyCache(KeyCachePolicy(max_age_seconds=1e9, max_uses=10**12), FakeClock())
    key = cache_key_for(b"aad", "kms", "key-1", b"wrapped")

    async def fill() -> None:
        async def load() -> bytearray:
            return bytearray(b"sk-test")

        (await cache.get(key, load)).wipe()

    asyncio.run(fill())

    async def unused() -> bytearray:
        raise AssertionError("a hit does not load")

    def hit() -> None:
        coro = cache.get(key, unused)
        try:
            coro.send(None)
        except StopIteration as done:
            done.value.wipe()
        else:
            raise AssertionError("a hit awaited")

    return {"KeyCache.get hit": best(hit, rounds)}


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    rows = {**map_rows(rounds), **memoized_rows(rounds), **key_cache_rows(rounds)}
    for name, ns in rows.items():
        print(f"{name:32s} {ns:8.1f} ns")  # noqa: T201


if __name__ == "__main__":
    main()
