"""The semantic cache's stores, the same tests on the memory store and on a real Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from sidecar.cache.semantic import MemorySemanticStore, SemanticStore
from sidecar.cache.semantic_key import Partition
from sidecar.cache.semantic_redis import RedisSemanticStore, pack, unpack
from sidecar.stores.errors import StoreUnavailableError
from sidecar.stores.redis import RedisEndpoint, RedisOps

pytestmark = pytest.mark.integration
NOW = 1_763_700_000.0


def redis_store(url: str, prefix: str) -> RedisSemanticStore:
    return RedisSemanticStore(RedisOps(RedisEndpoint(url, timeout=2.0)), prefix=prefix)


def vec(*values: float) -> np.ndarray[Any, Any]:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[SemanticStore]:
    s: SemanticStore
    if request.param == "memory":
        s = MemorySemanticStore(max_entries=1000)
    else:
        url = request.getfixturevalue("redis_url")
        s = redis_store(url, f"t{uuid.uuid4().hex[:10]}")
    yield s
    await s.aclose()


async def test_the_best_match_of_the_partition(store: SemanticStore) -> None:
    p = Partition("acme", "k1")
    await store.add(p, vec(1, 0, 0), b"x-axis", now=NOW, ttl=60, max_entries=10)
    await store.add(p, vec(0, 1, 0), b"y-axis", now=NOW + 1, ttl=60, max_entries=10)
    found = await store.search(p, vec(1, 0.1, 0), NOW + 2)
    assert found is not None and found.answer == b"x-axis" and found.created_at == NOW
    assert found.similarity == pytest.approx(float(vec(1, 0.1, 0) @ vec(1, 0, 0)), abs=1e-6)


async def test_never_another_tenants_entry(store: SemanticStore) -> None:
    """The same partition key under another tenant is another partition: nothing is found."""
    await store.add(Partition("acme", "same"), vec(1, 0), b"acme's answer", now=NOW, ttl=60, max_entries=10)
    assert await store.search(Partition("globex", "same"), vec(1, 0), NOW) is None
    assert await store.search(Partition("acme", "other"), vec(1, 0), NOW) is None
    mine = await store.search(Partition("acme", "same"), vec(1, 0), NOW)
    assert mine is not None and mine.answer == b"acme's answer"


async def test_expired_entries_are_not_found(store: SemanticStore) -> None:
    p = Partition("acme", "k")
    await store.add(p, vec(1, 0), b"old", now=NOW, ttl=10, max_entries=10)
    assert await store.search(p, vec(1, 0), NOW + 9) is not None
    assert await store.search(p, vec(1, 0), NOW + 10) is None


async def test_a_partition_keeps_its_most_recently_used(store: SemanticStore) -> None:
    p = Partition("acme", "k")
    await store.add(p, vec(1, 0, 0), b"a", now=NOW, ttl=60, max_entries=2)
    await store.add(p, vec(0, 1, 0), b"b", now=NOW + 1, ttl=60, max_entries=2)
    assert (await store.search(p, vec(1, 0, 0), NOW + 2)).answer == b"a"  # type: ignore[union-attr]
    await store.add(p, vec(0, 0, 1), b"c", now=NOW + 3, ttl=60, max_entries=2)  # b, least used, goes
    found = await store.search(p, vec(0, 1, 0), NOW + 4)
    assert found is not None and found.answer != b"b" and found.similarity < 0.5


async def test_a_lookup_below_the_touch_level_does_not_keep_an_entry(store: SemanticStore) -> None:
    p = Partition("acme", "k")
    await store.add(p, vec(1, 0, 0), b"a", now=NOW, ttl=60, max_entries=2)
    await store.add(p, vec(0, 1, 0), b"b", now=NOW + 1, ttl=60, max_entries=2)
    near = await store.search(p, vec(1, 0.9, 0), NOW + 2, touch_from=0.99)  # best is a, at 0.74
    assert near is not None and near.answer == b"a"
    await store.add(p, vec(0, 0, 1), b"c", now=NOW + 3, ttl=60, max_entries=2)  # a, not touched, goes
    assert (await store.search(p, vec(1, 0, 0), NOW + 4)).similarity < 0.5  # type: ignore[union-attr]


async def test_the_memory_store_is_bounded_in_bytes() -> None:
    """50,000 entries of 384-dimension vectors and answers up to 256 KiB: far past a 256 MiB sidecar.
    An entry costs its answer and its vector twice (the vector, its row of the stacked matrix)."""
    v = vec(*range(1, 385))  # 1,536 bytes as float32
    store = MemorySemanticStore(max_entries=1000, max_bytes=4 * (1000 + 2 * 1536))
    for i in range(6):
        await store.add(Partition("acme", f"k{i}"), v, bytes(1000), now=NOW, ttl=60, max_entries=10)
    assert len(store) == 4 and store.bytes_held == 4 * (1000 + 2 * 1536)
    assert await store.search(Partition("acme", "k1"), v, NOW) is None
    assert await store.search(Partition("acme", "k5"), v, NOW) is not None
    await store.add(Partition("acme", "big"), v, bytes(20_000), now=NOW, ttl=60, max_entries=10)
    assert await store.search(Partition("acme", "big"), v, NOW) is None and len(store) == 4


async def test_the_memory_store_is_bounded_in_total() -> None:
    store = MemorySemanticStore(max_entries=3)
    for i in range(5):
        await store.add(Partition("acme", f"k{i}"), vec(1, 0), b"x", now=NOW, ttl=60, max_entries=10)
    assert len(store) == 3
    assert await store.search(Partition("acme", "k0"), vec(1, 0), NOW) is None
    assert await store.search(Partition("acme", "k4"), vec(1, 0), NOW) is not None


def test_an_entry_packs_and_unpacks() -> None:
    v = vec(3, 4)
    got, created, expires = unpack(pack(v, NOW, NOW + 5))
    assert np.array_equal(got, v) and (created, expires) == (NOW, NOW + 5)
    with pytest.raises(ValueError):
        unpack(pack(v, NOW, NOW)[:-1])


async def test_redis_trimming_drops_answers_too(redis_url: str) -> None:
    from redis.asyncio import Redis

    prefix = f"t{uuid.uuid4().hex[:10]}"
    store = redis_store(redis_url, prefix)
    client = Redis.from_url(redis_url)
    try:
        for i in range(5):
            await store.add(Partition("acme", "k"), vec(1, i), b"x", now=NOW + i, ttl=30, max_entries=2)
        sizes = {k.decode()[-1]: await client.hlen(k) for k in await client.keys(f"{prefix}:sem:*:[va]")}
        assert sizes == {"v": 2, "a": 2}
    finally:
        await client.aclose()
        await store.aclose()


async def test_redis_keys_are_per_tenant_and_expire(redis_url: str) -> None:
    from redis.asyncio import Redis

    prefix = f"t{uuid.uuid4().hex[:10]}"
    store = redis_store(redis_url, prefix)
    client = Redis.from_url(redis_url)
    try:
        await store.add(Partition("acme", "k"), vec(1, 0), b"a", now=NOW, ttl=30, max_entries=5)
        await store.add(Partition("globex", "k"), vec(1, 0), b"g", now=NOW, ttl=30, max_entries=5)
        keys = sorted(k.decode() for k in await client.keys(f"{prefix}:sem:*"))
        assert len(keys) == 6 and len({k.split(":")[2] for k in keys}) == 2  # two tenant hash tags
        ttls = [await client.ttl(k) for k in keys]
        assert all(0 < t <= 30 for t in ttls)
    finally:
        await client.aclose()
        await store.aclose()


async def test_a_redis_that_is_down_raises_a_store_error() -> None:
    from tests.support.kms import free_port

    store = redis_store(f"redis://127.0.0.1:{free_port()}/0", "down")
    try:
        with pytest.raises(StoreUnavailableError):
            await store.search(Partition("acme", "k"), vec(1, 0), NOW)
    finally:
        await store.aclose()
