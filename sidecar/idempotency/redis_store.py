"""Idempotency keys in Redis, shared by every sidecar on it.

One string per key: `P` + fingerprint while the first call runs (expiring after the in-flight
bound, so a crashed sidecar does not hold it for good), `D` + fingerprint + answer once finished
(expiring after the window). A waiting call polls at a fixed interval on the injected clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from sidecar.core.clock import Clock
from sidecar.idempotency.store import Held, IdempotencyStoreUnavailableError

if TYPE_CHECKING:
    from redis.asyncio import Redis

_FP = 32  # sha256


class RedisIdempotencyStore:
    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        window_seconds: float,
        in_flight_seconds: float = 300.0,
        clock: Clock,
        poll_seconds: float = 0.05,
    ) -> None:
        from redis.asyncio import Redis  # lazily: costs nothing unless configured

        self._redis: Redis = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._prefix = prefix
        self._window_ms = int(window_seconds * 1000)
        self._in_flight_ms = int(min(in_flight_seconds, window_seconds) * 1000)
        self._poll, self._clock = poll_seconds, clock

    def _key(self, key: str) -> str:
        # hashed: tenant and request ids never appear in Redis key names
        return self._prefix + hashlib.sha256(key.encode()).hexdigest()

    async def _run(self, op: Awaitable[Any]) -> Any:
        try:
            return await op
        except Exception as exc:
            raise IdempotencyStoreUnavailableError(
                "the idempotency store is unreachable; retry", retry_after=1.0
            ) from exc

    async def claim(self, key: str, fingerprint: bytes) -> Held | None:
        name = self._key(key)
        claimed = await self._run(self._redis.set(name, b"P" + fingerprint, nx=True, px=self._in_flight_ms))
        if claimed:
            return None
        held = _decode(await self._run(self._redis.get(name)))
        if held is None:  # released or expired between the two commands: try once more
            claimed = await self._run(
                self._redis.set(name, b"P" + fingerprint, nx=True, px=self._in_flight_ms)
            )
            return None if claimed else Held(fingerprint, None)
        return held

    async def finish(self, key: str, fingerprint: bytes, answer: bytes) -> None:
        await self._run(self._redis.set(self._key(key), b"D" + fingerprint + answer, px=self._window_ms))

    async def release(self, key: str) -> None:
        await self._run(self._redis.delete(self._key(key)))

    async def wait(self, key: str) -> Held | None:
        name = self._key(key)
        while True:
            held = _decode(await self._run(self._redis.get(name)))
            if held is None or held.answer is not None:
                return held
            await self._clock.sleep(self._poll)

    async def aclose(self) -> None:
        await self._redis.aclose()


def _decode(raw: bytes | None) -> Held | None:
    if not raw or raw[:1] not in (b"P", b"D") or len(raw) < 1 + _FP:
        return None
    fingerprint = raw[1 : 1 + _FP]
    return Held(fingerprint, raw[1 + _FP :] if raw[:1] == b"D" else None)
