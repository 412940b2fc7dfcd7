"""The decrypted-key cache: provider keys in plaintext, briefly, so not every call costs a KMS round trip.

Entries are keyed by the *wrapped* data key and its context (see `cache_key_for`), never by anything
derived from the plaintext. An entry lives until it is `max_age_seconds` old or has been handed out
`max_uses` times, whichever comes first; past `max_entries` the least recently used entry goes. A
removed entry's buffer is overwritten with zeros. An entry is wiped when it reaches its age even if
nothing asks for it again: one timer (on the injected clock) waits for the oldest entry's age while
the cache holds any, so an idle key does not outlive `max_age_seconds` in memory.

Failure semantics:
- Only a miss calls `load()`. A fresh entry keeps serving while the backend is down; an expired one is
  wiped and removed *before* its reload, so the cache never serves stale keys past their age or uses.
- Misses are single-flight: concurrent `get()`s of one key share one `load()`, run in its own task. If
  it raises, every waiter gets that error and nothing is cached. A waiter that is cancelled stops
  waiting; the load goes on for the others (and still fills the cache).
- `clear()` wipes every entry. A load already in flight still completes and is cached.

Leases: `get()` hands each caller its own copy of the key (a `SecretKey` on a fresh buffer). The
cache may wipe its entry at any time (age, uses, capacity, `clear()`, another caller's miss) without
touching the copies callers hold: a call keeps a usable key until it ends, and wipes its copy then
(`SecretKey.wipe()`). Using a `SecretKey` after it is wiped raises.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn

from sidecar.core.clock import Clock
from sidecar.core.errors import KeyBackendUnavailableError, KeyDecryptError
from sidecar.core.lru import Lru

CacheKey = tuple[str, ...]
Loader = Callable[[], Awaitable[bytearray]]


@dataclass(frozen=True, slots=True)
class KeyCachePolicy:
    """How long, and how often, one decryption may be reused; and how many keys may be held."""

    max_age_seconds: float = 300.0
    max_uses: int = 1000
    max_entries: int = 10_000

    def __post_init__(self) -> None:
        if self.max_age_seconds <= 0 or self.max_uses < 1 or self.max_entries < 1:
            raise ValueError("KeyCachePolicy needs max_age_seconds > 0, max_uses >= 1, max_entries >= 1")


@dataclass(frozen=True, slots=True)
class KeyCacheStats:
    """Counters since the cache was built, for telemetry to export.

    Every `get()` is either a hit (served by a cached entry) or a miss (it waited for a load, its own
    or a shared one). `evictions` counts entries removed for age, uses or capacity; `backend_calls`
    and `backend_errors` count `load()` calls and the ones that raised.
    """

    hits: int
    misses: int
    evictions: int
    backend_calls: int
    backend_errors: int
    entries: int
    decrypt_seconds_total: float


class SecretKey:
    """A plaintext provider key, held in a mutable buffer that can be overwritten.

    It owns the bytearray it is given (no copy), so wiping it wipes the buffer the loader returned.
    Never printed, never pickled; equality is identity.
    """

    __slots__ = ("_buffer", "_wiped")

    def __init__(self, buffer: bytearray) -> None:
        self._buffer = buffer
        self._wiped = False

    @property
    def wiped(self) -> bool:
        return self._wiped

    def reveal(self) -> str:
        """The key as text, for the one place that builds the provider's auth header.

        The limits of this in Python: a `str` is immutable, so this copy (and the header bytes the
        HTTP client makes from it) cannot be wiped; it lives until the garbage collector frees it, and
        freed memory is not zeroed. Wiping the buffer bounds how long the canonical copy lives; it does
        not guarantee that no other copy is left in the process's memory.
        """
        if self._wiped:
            raise RuntimeError("SecretKey used after it was wiped")
        try:
            return self._buffer.decode("utf-8")
        except UnicodeDecodeError:
            # from None: the UnicodeDecodeError holds the raw bytes.
            raise KeyDecryptError("the decrypted provider key is not UTF-8 text") from None

    def lease(self) -> SecretKey:
        """A copy on its own buffer, for one caller to hold and wipe; wiping either leaves the other."""
        if self._wiped:
            raise RuntimeError("SecretKey used after it was wiped")
        return SecretKey(bytearray(self._buffer))

    def wipe(self) -> None:
        """Overwrite the buffer with zeros, in place (its length is kept)."""
        self._buffer[:] = bytes(len(self._buffer))
        self._wiped = True

    def __repr__(self) -> str:
        return "SecretKey(<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("SecretKey cannot be pickled")


def cache_key_for(
    envelope_context_aad: bytes, wrapped_backend: str, wrapped_key_id: str, wrapped_blob: bytes
) -> CacheKey:
    """The cache key of an envelope: its wrapped data key (backend, key id, SHA-256 of the blob) and
    its context. Rewrapping or rotating changes the blob, so the new envelope gets a new entry."""
    blob_digest = hashlib.sha256(wrapped_blob).hexdigest()
    return (wrapped_backend, wrapped_key_id, blob_digest, envelope_context_aad.hex())


class _Entry:
    __slots__ = ("loaded_at", "secret", "uses")

    def __init__(self, secret: SecretKey, loaded_at: float, uses: int) -> None:
        self.secret, self.loaded_at, self.uses = secret, loaded_at, uses


class _Flight:
    """One load in progress and how many `get()`s are waiting for it. The load hands its waiters a
    copy of the key of their own (the handoff), wiped when the last of them has taken its lease."""

    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Task[SecretKey]) -> None:
        self.task = task
        self.waiters = 0

    def leave(self) -> None:
        """A waiter is done (its lease taken, or it was cancelled or the load failed)."""
        self.waiters -= 1
        task = self.task
        if self.waiters == 0 and task.done() and not task.cancelled() and task.exception() is None:
            task.result().wipe()


class KeyCache:
    """Decrypted provider keys with age, use and size limits, and single-flight loading."""

    def __init__(self, policy: KeyCachePolicy, clock: Clock) -> None:
        self._policy, self._clock = policy, clock
        self._lru: Lru[CacheKey, _Entry] = Lru(policy.max_entries, on_evict=self._evicted)
        self._by_age: dict[CacheKey, _Entry] = {}  # insertion order is load order: oldest first
        self._flights: dict[CacheKey, _Flight] = {}
        self._hits = self._misses = self._evictions = self._backend_calls = self._backend_errors = 0
        self._decrypt_seconds = 0.0
        self._closed = False
        self._sweeper: asyncio.Task[None] | None = None

    async def get(self, cache_key: CacheKey, load: Loader) -> SecretKey:
        """The caller's own copy (lease) of the key for `cache_key`, from the cache or from `load()`
        (which decrypts the envelope). The caller wipes it when done; the cache never does."""
        if self._closed:
            raise KeyBackendUnavailableError("the sidecar is shutting down", retry_after=1.0)
        entry = self._fresh(cache_key)
        if entry is not None:
            entry.uses += 1
            self._lru.refresh(cache_key)
            self._hits += 1
            return entry.secret.lease()
        self._misses += 1
        flight = self._join(cache_key, load)
        try:
            # The load's own copy: the cached entry may be evicted (and wiped) before this waiter
            # resumes, which must not send it back to load again (with max_uses 1 and a backend that
            # answers at once, every waiter did, without bound).
            return (await asyncio.shield(flight.task)).lease()
        finally:
            flight.leave()

    def stats(self) -> KeyCacheStats:
        return KeyCacheStats(
            hits=self._hits,
            misses=self._misses,
            evictions=self._evictions,
            backend_calls=self._backend_calls,
            backend_errors=self._backend_errors,
            entries=len(self._lru),
            decrypt_seconds_total=self._decrypt_seconds,
        )

    def close(self) -> None:
        """Shut down: cancel the loads in flight and wipe every entry, so no key is cached after this."""
        self._closed = True
        for flight in self._flights.values():
            flight.task.cancel()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.clear()

    def clear(self) -> None:
        """Wipe and drop every entry (not counted as evictions)."""
        for entry in self._lru.values():
            entry.secret.wipe()
        self._lru.clear()
        self._by_age.clear()

    def purge_expired(self) -> int:
        """Wipe and drop every entry past its age; returns how many. Runs before each load, and from
        the timer that waits for the oldest entry's age."""
        oldest_allowed = self._clock.monotonic() - self._policy.max_age_seconds
        expired: list[CacheKey] = []
        for key, entry in self._by_age.items():
            if entry.loaded_at > oldest_allowed:
                break  # the rest are younger
            expired.append(key)
        for key in expired:
            self._drop(key)
        return len(expired)

    def _fresh(self, cache_key: CacheKey) -> _Entry | None:
        """The entry if it may still serve; an expired one is dropped (and wiped) here."""
        entry = self._lru.peek(cache_key)
        if entry is None:
            return None
        too_old = self._clock.monotonic() - entry.loaded_at >= self._policy.max_age_seconds
        if too_old or entry.uses >= self._policy.max_uses:
            self._drop(cache_key)
            return None
        return entry

    def _join(self, cache_key: CacheKey, load: Loader) -> _Flight:
        """The task loading `cache_key`, started by the first waiter; each caller counts as one use."""
        flight = self._flights.get(cache_key)
        if flight is None:
            self.purge_expired()
            flight = _Flight(asyncio.create_task(self._load(cache_key, load)))
            flight.task.add_done_callback(_retrieve)
            self._flights[cache_key] = flight
        flight.waiters += 1
        return flight

    async def _load(self, cache_key: CacheKey, load: Loader) -> SecretKey:
        started = self._clock.monotonic()
        self._backend_calls += 1
        try:
            plaintext = await load()
        except Exception:
            self._backend_errors += 1
            raise
        finally:
            self._decrypt_seconds += self._clock.monotonic() - started
            flight = self._flights.pop(cache_key)
        secret = SecretKey(plaintext)
        self._insert(cache_key, _Entry(secret, self._clock.monotonic(), uses=flight.waiters))
        handoff = secret.lease()
        if flight.waiters == 0:  # every waiter left (cancelled): no one will take a lease
            handoff.wipe()
        return handoff

    def _insert(self, cache_key: CacheKey, entry: _Entry) -> None:
        if cache_key in self._lru:
            self._drop(cache_key)
        self._lru.put(cache_key, entry)  # past max_entries, the least recently used is _evicted
        self._by_age[cache_key] = entry
        if not self._closed and (self._sweeper is None or self._sweeper.done()):
            self._sweeper = asyncio.create_task(self._sweep())

    async def _sweep(self) -> None:
        """While entries are held: wait until the oldest reaches its age, then wipe what has."""
        while self._by_age:
            oldest = next(iter(self._by_age.values()))
            await self._clock.sleep(oldest.loaded_at + self._policy.max_age_seconds - self._clock.monotonic())
            self.purge_expired()

    def _drop(self, cache_key: CacheKey) -> None:
        self._evicted(cache_key, self._lru.pop(cache_key))

    def _evicted(self, cache_key: CacheKey, entry: _Entry) -> None:
        del self._by_age[cache_key]
        entry.secret.wipe()
        self._evictions += 1


def _retrieve(task: asyncio.Task[SecretKey]) -> None:
    """Mark a load's exception as seen, so a load whose waiters all left does not log as unhandled."""
    if not task.cancelled():
        task.exception()
