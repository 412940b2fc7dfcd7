"""A small byte store with TTLs on aiocache: in memory (bounded) or Redis (shared by sidecars).

Used by the response cache and by the summary cache, each under its own namespace. Every
operation is bounded by a timeout; callers treat a failed or slow lookup as a miss, so a cache
outage makes calls slower, never failed. Redis goes through the shared client factory
(`sidecar.stores.redis`): `rediss://` with a CA and client certificate, ACL users, timeouts.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol

from sidecar.stores.redis import RedisOps


class ByteStore(Protocol):
    """get/set of bytes under string keys, with a time to live in seconds."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float) -> None: ...

    async def aclose(self) -> None: ...


class AiocacheStore:
    """One aiocache backend and namespace. The memory backend keeps at most `max_entries` keys
    (the oldest written go first)."""

    def __init__(self, cache: Any, *, timeout: float, max_entries: int | None = None) -> None:
        self._cache, self._timeout, self._max = cache, timeout, max_entries
        self._order: OrderedDict[str, None] = OrderedDict()

    @classmethod
    def memory(cls, namespace: str, *, timeout: float, max_entries: int) -> AiocacheStore:
        from aiocache import SimpleMemoryCache
        from aiocache.serializers import NullSerializer

        cache = SimpleMemoryCache(serializer=NullSerializer(), namespace=namespace)
        return cls(cache, timeout=timeout, max_entries=max_entries)

    async def get(self, key: str) -> bytes | None:
        value = await self._cache.get(key, timeout=self._timeout)
        if value is None:
            return None
        return value if isinstance(value, bytes) else str(value).encode()

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self._cache.set(key, value, ttl=ttl, timeout=self._timeout)
        if self._max is None:
            return
        self._order.pop(key, None)
        self._order[key] = None
        while len(self._order) > self._max:
            oldest, _ = self._order.popitem(last=False)
            await self._cache.delete(oldest, timeout=self._timeout)

    async def aclose(self) -> None:
        await self._cache.clear()


class RedisByteStore:
    """Bytes in Redis under `namespace:key` (aiocache's key layout), through the shared client
    factory: TLS, ACL users and per-operation timeouts as every Redis store. Failures raise
    StoreError (classified); callers treat them as a miss or a skipped write."""

    def __init__(self, ops: RedisOps, namespace: str) -> None:
        self._ops, self._namespace = ops, f"{namespace}:" if namespace else ""

    async def get(self, key: str) -> bytes | None:
        value = await self._ops.run("get", lambda: self._ops.client.get(self._namespace + key))
        return None if value is None else bytes(value)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        ttl_ms = max(1, int(ttl * 1000))
        await self._ops.run("set", lambda: self._ops.client.set(self._namespace + key, value, px=ttl_ms))

    async def aclose(self) -> None:
        await self._ops.aclose()
