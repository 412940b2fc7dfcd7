"""The semantic cache on Redis, shared by sidecars: one hash and one sorted set per partition.

Debian's redis-server has no vector search (that is Redis Stack's module), so the sidecar reads a
partition's entries (HGETALL, bounded by the route's max_entries) and compares them itself, as the
memory store does. Each entry packs its creation and expiry times, the float32 vector and the
stored answer. The sorted set orders the partition's entries by last use; adding past the bound
drops the least recently used, atomically in one script. Keys carry a digest of the tenant as their
hash tag, and both expire with the partition's newest entry.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from typing import TYPE_CHECKING

import numpy as np

from sidecar.cache.semantic import SemanticMatch, Vector
from sidecar.cache.semantic_key import Partition

if TYPE_CHECKING:
    from redis.asyncio import Redis

_HEADER = struct.Struct("<ddI")  # created_at, expires_at, dimensions

_ADD = """
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
redis.call("ZADD", KEYS[2], ARGV[3], ARGV[1])
local extra = redis.call("ZCARD", KEYS[2]) - tonumber(ARGV[4])
if extra > 0 then
  local old = redis.call("ZPOPMIN", KEYS[2], extra)
  for i = 1, #old, 2 do redis.call("HDEL", KEYS[1], old[i]) end
end
redis.call("PEXPIRE", KEYS[1], ARGV[5])
redis.call("PEXPIRE", KEYS[2], ARGV[5])
return extra
"""


def pack(vector: Vector, answer: bytes, created_at: float, expires_at: float) -> bytes:
    v = np.ascontiguousarray(vector, dtype="<f4")
    return _HEADER.pack(created_at, expires_at, v.shape[0]) + v.tobytes() + answer


def unpack(data: bytes) -> tuple[Vector, bytes, float, float]:
    created_at, expires_at, dims = _HEADER.unpack_from(data)
    start = _HEADER.size
    end = start + 4 * dims
    if len(data) < end:
        raise ValueError("semantic cache entry shorter than its vector")
    vector = np.frombuffer(data[start:end], dtype="<f4").astype(np.float32)
    return vector, data[end:], created_at, expires_at


class RedisSemanticStore:
    def __init__(self, url: str, *, prefix: str, timeout: float) -> None:
        from redis.asyncio import Redis

        self._prefix = prefix
        self._redis: Redis = Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
        )
        self._add = self._redis.register_script(_ADD)

    def _keys(self, partition: Partition) -> tuple[str, str]:
        tenant = hashlib.blake2b(partition.tenant.encode(), digest_size=10).hexdigest()
        base = f"{self._prefix}:sem:{{{tenant}}}:{partition.key}"
        return base + ":e", base + ":u"

    async def search(self, partition: Partition, vector: Vector, now: float) -> SemanticMatch | None:
        entries_key, used_key = self._keys(partition)
        raw: dict[bytes, bytes] = await self._redis.hgetall(entries_key)  # type: ignore[misc]
        ids: list[bytes] = []
        rows: list[Vector] = []
        found: list[tuple[bytes, float]] = []
        for entry_id, data in raw.items():
            try:
                v, answer, created_at, expires_at = unpack(data)
            except (ValueError, struct.error):
                continue
            if expires_at <= now or v.shape != vector.shape:
                continue
            ids.append(entry_id)
            rows.append(v)
            found.append((answer, created_at))
        if not rows:
            return None
        scores = np.stack(rows) @ vector
        best = int(np.argmax(scores))
        await self._redis.zadd(used_key, {ids[best]: now}, xx=True)
        answer, created_at = found[best]
        return SemanticMatch(float(scores[best]), answer, created_at)

    async def add(
        self, partition: Partition, vector: Vector, answer: bytes, *, now: float, ttl: float, max_entries: int
    ) -> None:
        entries_key, used_key = self._keys(partition)
        value = pack(vector, answer, now, now + ttl)
        args = [uuid.uuid4().hex, value, now, max_entries, max(1, int(ttl * 1000))]
        await self._add(keys=[entries_key, used_key], args=args)

    async def aclose(self) -> None:
        await self._redis.aclose()
