"""A small byte store with TTLs on aiocache: in memory (bounded) or Redis (shared by sidecars).

Used by the response cache and by the summary cache, each under its own namespace. Every
operation is bounded by a timeout; callers treat a failed or slow lookup as a miss, so a cache
outage makes calls slower, never failed.
"""

from __future__ import annotations

import urllib.parse
from collections import OrderedDict
from typing import Any, Protocol


class ByteStore(Protocol):
    """get/set of bytes under string keys, with a time to live in seconds."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float) -> None: ...

    async def aclose(self) -> None: ...


class AiocacheStore:
    """One aiocache backend and namespace. The memory backend keeps at most `max_entries` keys
    (the oldest written go first); Redis bounds itself (maxmemory and its eviction policy)."""

    def __init__(self, cache: Any, *, timeout: float, max_entries: int | None = None) -> None:
        self._cache, self._timeout, self._max = cache, timeout, max_entries
        self._order: OrderedDict[str, None] = OrderedDict()

    @classmethod
    def memory(cls, namespace: str, *, timeout: float, max_entries: int) -> AiocacheStore:
        from aiocache import SimpleMemoryCache
        from aiocache.serializers import NullSerializer

        cache = SimpleMemoryCache(serializer=NullSerializer(), namespace=namespace)
        return cls(cache, timeout=timeout, max_entries=max_entries)

    @classmethod
    def redis(cls, url: str, namespace: str, *, timeout: float) -> AiocacheStore:
        from aiocache import RedisCache
        from aiocache.serializers import NullSerializer

        parsed = urllib.parse.urlparse(url)
        cache = RedisCache(
            serializer=NullSerializer(),
            namespace=namespace,
            endpoint=parsed.hostname or "127.0.0.1",
            port=parsed.port or 6379,
            db=int(parsed.path.strip("/") or 0),
            password=urllib.parse.unquote(parsed.password) if parsed.password else None,
            create_connection_timeout=timeout,
        )
        return cls(cache, timeout=timeout)

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
        client = getattr(self._cache, "client", None)
        if client is not None:  # Redis: close the pool directly (aiocache's close() is deprecated there)
            await client.aclose()
        else:
            await self._cache.clear()
