"""Where first answers wait for their retries: the protocol, its errors, and the in-memory store.

A key is claimed by the first call (`claim` returns None: run it); a call that finds the key held
gets the Held entry: the fingerprint of the request that claimed it and, once finished, its answer.
The first call ends with `finish` (keep the answer for the window) or `release` (it failed: forget
the key so a retry runs again).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from sidecar.core.clock import Clock
from sidecar.core.errors import Code, FieldViolation, SidecarError
from sidecar.core.lru import Lru


class IdempotencyKeyReusedError(SidecarError):
    """Another request already used this tenant's request_id within the window."""

    code = Code.INVALID_ARGUMENT
    reason = "IDEMPOTENCY_KEY_REUSED"

    def __init__(self, field_name: str) -> None:
        super().__init__(
            "this request_id was already used by a different request of the tenant; use a new id",
            metadata={"field": field_name},
            violations=[FieldViolation(field_name, "already used by a different request")],
        )


class IdempotencyStoreUnavailableError(SidecarError):
    code = Code.UNAVAILABLE
    reason = "IDEMPOTENCY_STORE_UNAVAILABLE"
    retryable = True


@dataclass(frozen=True)
class Held:
    """A key another call holds: its request's fingerprint and, once it finished, its answer."""

    fingerprint: bytes
    answer: bytes | None


class IdempotencyStore(Protocol):
    async def claim(self, key: str, fingerprint: bytes) -> Held | None: ...

    async def finish(self, key: str, fingerprint: bytes, answer: bytes) -> None: ...

    async def release(self, key: str) -> None: ...

    async def wait(self, key: str) -> Held | None:
        """The entry once it has an answer, or None when the first call released it."""
        ...

    async def aclose(self) -> None: ...


@dataclass
class _Entry:
    fingerprint: bytes
    expires_at: float
    answer: bytes | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryIdempotencyStore:
    """One process's keys, bounded in count (oldest evicted first) and expiring after the window."""

    def __init__(self, *, clock: Clock, window_seconds: float, max_entries: int) -> None:
        self._clock, self._window = clock, window_seconds
        self._entries: Lru[str, _Entry] = Lru(max_entries, on_evict=_evicted)

    async def claim(self, key: str, fingerprint: bytes) -> Held | None:
        now = self._clock.monotonic()
        entry = self._entries.peek(key)
        if entry is not None and entry.expires_at > now:
            return Held(entry.fingerprint, entry.answer)
        self._entries.pop(key, None)
        self._entries.put(key, _Entry(fingerprint, now + self._window))
        return None

    async def finish(self, key: str, fingerprint: bytes, answer: bytes) -> None:
        entry = self._entries.peek(key)
        if entry is not None and entry.fingerprint == fingerprint:
            entry.answer = answer
            entry.expires_at = self._clock.monotonic() + self._window
            entry.done.set()

    async def release(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            entry.done.set()

    async def wait(self, key: str) -> Held | None:
        entry = self._entries.peek(key)
        if entry is None:
            return None
        await entry.done.wait()
        return Held(entry.fingerprint, entry.answer) if entry.answer is not None else None

    async def aclose(self) -> None:
        for entry in self._entries.values():
            entry.done.set()
        self._entries.clear()


def _evicted(key: str, entry: _Entry) -> None:
    entry.done.set()  # anyone waiting on it runs the call itself
