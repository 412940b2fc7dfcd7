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
    """One aiocache backend and namespace. The memory backend keeps at most `max_entries` keys and
    `max_bytes` of values together (the oldest written go first): a count alone let 10,000 answers
    of up to 256 KiB each grow a sidecar with a 256 MiB limit past it."""

    def __init__(
        self, cache: Any, *, timeout: float, max_entries: int | None = None, max_bytes: int | None = None
    ) -> None:
        self._cache, self._timeout, self._max, self._max_bytes = cache, timeout, max_entries, max_bytes
        self._order: OrderedDict[str, int] = OrderedDict()  # key -> its value's size, oldest first
        self._bytes = 0

    @classmethod
    def memory(cls, namespace: str, *, timeout: float, max_entries: int, max_bytes: int) -> AiocacheStore:
        from aiocache import SimpleMemoryCache
        from aiocache.serializers import NullSerializer

        cache = SimpleMemoryCache(serializer=NullSerializer(), namespace=namespace)
        return cls(cache, timeout=timeout, max_entries=max_entries, max_bytes=max_bytes)

    @property
    def bytes_held(self) -> int:
        """The values' bytes the bounds count (an expired entry until it is read or evicted)."""
        return self._bytes

    async def get(self, key: str) -> bytes | None:
        value = await self._cache.get(key, timeout=self._timeout)
        if value is None:
            self._bytes -= self._order.pop(key, 0)  # expired: no longer held
            return None
        return value if isinstance(value, bytes) else str(value).encode()

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        if self._max is None and self._max_bytes is None:
            await self._cache.set(key, value, ttl=ttl, timeout=self._timeout)
            return
        if self._max_bytes is not None and len(value) > self._max_bytes:
            return  # could never be held within the bound
        await self._cache.set(key, value, ttl=ttl, timeout=self._timeout)
        self._bytes += len(value) - self._order.pop(key, 0)
        self._order[key] = len(value)
        while self._order and (
            (self._max is not None and len(self._order) > self._max)
            or (self._max_bytes is not None and self._bytes > self._max_bytes)
        ):
            oldest, size = self._order.popitem(last=False)
            self._bytes -= size
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
