"""The semantic cache on Redis, shared by sidecars: per partition, two hashes and a sorted set.

Debian's redis-server has no vector search (that is Redis Stack's module), so the sidecar reads a
partition's vectors (HGETALL, bounded by the route's max_entries) and compares them itself, as the
memory store does; only the best match's answer is then read (HGET), so a lookup moves the
vectors, not every stored answer. One hash holds each entry's creation and expiry times and its
float32 vector, another its answer, and the sorted set orders the entries by last use; adding past
the bound drops the least recently used, atomically in one script. Keys carry a digest of the
tenant as their hash tag, and all three expire with the partition's newest entry.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

from sidecar.cache.semantic import SemanticMatch, Vector
from sidecar.cache.semantic_key import Partition

if TYPE_CHECKING:
    from sidecar.stores.redis import RedisOps

_HEADER = struct.Struct("<ddI")  # created_at, expires_at, dimensions

# KEYS: vectors, answers, last use. ARGV: id, packed vector, answer, now, max entries, ttl in ms.
_ADD = """
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
redis.call("HSET", KEYS[2], ARGV[1], ARGV[3])
redis.call("ZADD", KEYS[3], ARGV[4], ARGV[1])
local extra = redis.call("ZCARD", KEYS[3]) - tonumber(ARGV[5])
if extra > 0 then
  local old = redis.call("ZPOPMIN", KEYS[3], extra)
  for i = 1, #old, 2 do
    redis.call("HDEL", KEYS[1], old[i])
    redis.call("HDEL", KEYS[2], old[i])
  end
end
for i = 1, 3 do redis.call("PEXPIRE", KEYS[i], ARGV[6]) end
return extra
"""


def pack(vector: Vector, created_at: float, expires_at: float) -> bytes:
    v = np.ascontiguousarray(vector, dtype="<f4")
    return _HEADER.pack(created_at, expires_at, v.shape[0]) + v.tobytes()


def _entry_type(dimensions: int) -> np.dtype[Any]:
    return np.dtype(
        [("created", "<f8"), ("expires", "<f8"), ("dims", "<u4"), ("vector", "<f4", (dimensions,))]
    )


def _table(raw: dict[bytes, bytes], dimensions: int) -> tuple[list[bytes], Any]:
    """The entries with vectors of `dimensions` (others, and unreadable ones, are left out), parsed
    in one pass: one structured numpy array over their concatenated bytes."""
    entry = _entry_type(dimensions)
    ids = [k for k, v in raw.items() if len(v) == entry.itemsize]
    table = np.frombuffer(b"".join(raw[k] for k in ids), dtype=entry)
    keep = table["dims"] == dimensions
    return [i for i, ok in zip(ids, keep, strict=True) if ok], table[keep]


def unpack(data: bytes) -> tuple[Vector, float, float]:
    created_at, expires_at, dims = _HEADER.unpack_from(data)
    start = _HEADER.size
    if len(data) != start + 4 * dims:
        raise ValueError("semantic cache entry of the wrong length for its vector")
    vector = np.frombuffer(data[start:], dtype="<f4").astype(np.float32)
    return vector, created_at, expires_at


class RedisSemanticStore:
    """Through the shared client factory (TLS, ACL users, per-operation timeouts); failures raise
    StoreError, which the layer counts as a miss or a skipped write."""

    def __init__(self, ops: RedisOps, *, prefix: str) -> None:
        self._ops, self._prefix = ops, prefix
        self._redis = ops.client
        self._add = self._redis.register_script(_ADD)

    def _keys(self, partition: Partition) -> list[str]:
        tenant = hashlib.blake2b(partition.tenant.encode(), digest_size=10).hexdigest()
        base = f"{self._prefix}:sem:{{{tenant}}}:{partition.key}"
        return [base + ":v", base + ":a", base + ":u"]

    async def search(
        self, partition: Partition, vector: Vector, now: float, *, touch_from: float = -1.0
    ) -> SemanticMatch | None:
        vectors_key, answers_key, used_key = self._keys(partition)

        async def vectors() -> dict[bytes, bytes]:
            return await self._redis.hgetall(vectors_key)  # type: ignore[no-any-return, misc]

        raw = await self._ops.run("get", vectors)
        ids, table = _table(raw, vector.shape[0])
        live = table["expires"] > now
        if not live.any():
            return None
        scores = table["vector"][live] @ vector
        best = int(np.argmax(scores))
        entry_id = ids[int(np.flatnonzero(live)[best])]

        async def answer_of() -> bytes | None:
            return await self._redis.hget(answers_key, entry_id)  # type: ignore[arg-type, misc, no-any-return]

        answer = await self._ops.run("get", answer_of)
        if answer is None:
            return None  # trimmed by another sidecar between the two reads
        if scores[best] >= touch_from:
            await self._ops.run("set", lambda: self._redis.zadd(used_key, {entry_id: now}, xx=True))
        created = float(table["created"][live][best])
        return SemanticMatch(float(scores[best]), answer, created)

    async def add(
        self, partition: Partition, vector: Vector, answer: bytes, *, now: float, ttl: float, max_entries: int
    ) -> None:
        value = pack(vector, now, now + ttl)
        args: list[bytes | str | float] = [
            uuid.uuid4().hex,
            value,
            answer,
            now,
            max_entries,
            max(1, int(ttl * 1000)),
        ]
        await self._ops.run("set", lambda: self._add(keys=self._keys(partition), args=args))

    async def aclose(self) -> None:
        await self._ops.aclose()
