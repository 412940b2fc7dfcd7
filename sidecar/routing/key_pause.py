"""Pauses of users' own provider keys: the upstream's Retry-After on a 429 to a user's key, kept
for that key on that deployment alone.

A 429 on a user's own key is that key's limit at the provider, not the deployment's: the shared
breaker never hears of it (sidecar/pipeline/keys.py), and the calls of every other key go on. The
upstream's word on when to come back is still kept, for the key that heard it: until then a call
with that key on that deployment fails at once with USER_KEY_RATE_LIMITED and the time left,
without a request the upstream would refuse (and count against the key).

Keys are held as keyed BLAKE2b digests (a random salt per process), never as text. Pure and
synchronous, on the injected clock; bounded to `max_keys` paused keys, the ones ending first
dropped when more come.
"""

from __future__ import annotations

import hashlib
import heapq
import secrets

from sidecar.core.clock import Clock

MAX_PAUSED_KEYS = 10_000


class KeyPauses:
    """Per (deployment, key): until when the upstream asked that key to wait (monotonic time)."""

    def __init__(self, clock: Clock, *, max_keys: int = MAX_PAUSED_KEYS, salt: bytes | None = None) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self._clock, self._max = clock, max_keys
        self._salt = salt if salt is not None else secrets.token_bytes(16)
        self._until: dict[tuple[str, bytes], float] = {}

    def pause(self, deployment: str, key: str, seconds: float) -> None:
        """The upstream said this key waits `seconds` on this deployment (a longer pause kept)."""
        if not seconds > 0:
            return
        now = self._clock.monotonic()
        slot = (deployment, self._digest(key))
        until = max(now + seconds, self._until.get(slot, now))
        self._until[slot] = until
        if len(self._until) > self._max:
            self._evict(now)

    def remaining(self, deployment: str, key: str) -> float | None:
        """Seconds this key still waits on this deployment; None when it may go."""
        slot = (deployment, self._digest(key))
        until = self._until.get(slot)
        if until is None:
            return None
        left = until - self._clock.monotonic()
        if left <= 0:
            del self._until[slot]
            return None
        return left

    def __len__(self) -> int:
        return len(self._until)

    def _digest(self, key: str) -> bytes:
        return hashlib.blake2b(key.encode(), key=self._salt, digest_size=16).digest()

    def _evict(self, now: float) -> None:
        """Drop the pauses that are over, then (still too many) those ending first."""
        for slot in [s for s, until in self._until.items() if until <= now]:
            del self._until[slot]
        excess = len(self._until) - self._max
        if excess > 0:
            for slot in heapq.nsmallest(excess, self._until, key=self._until.__getitem__):
                del self._until[slot]
