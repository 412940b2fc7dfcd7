"""Releases of reservation ids whose reserve or settle failed, retried until the store answers.

A reserve that timed out (or whose caller was cancelled) may still run on the store later: Redis
that stalls (a fork, a slow script, SIGSTOP) keeps the script queued and runs it when it wakes up.
Its reservation id must then be released (a tombstone refuses the reserve if it runs later), or the
reservation holds its amounts, a concurrency slot among them, until the reservation TTL. A settle
that failed is released the same way with the call's usage as the amounts (charged only where the
reservation is still held, so never twice). Each is retried with a capped exponential backoff on
the injected clock until it succeeds or the reservation would have expired anyway. One task works
through every pending release; the pending set is bounded (the oldest is dropped first, and
reported as a store error).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sidecar.core.clock import Clock
from sidecar.core.tasks import cancel_and_wait
from sidecar.quota.store import Charge, QuotaStore, QuotaStoreError

FIRST_BACKOFF_SECONDS = 0.05
MAX_BACKOFF_SECONDS = 5.0
MAX_PENDING = 10_000
BATCH = 32  # releases sent at once while working through the pending set


@dataclass(slots=True)
class _Pending:
    tenant: str
    charges: tuple[Charge, ...]
    until: float  # monotonic: the reservation has expired by then, nothing left to release
    reported: bool = False  # its first failure was reported (one store error per release)


class PendingReleases:
    """Release what a reservation id may hold, retrying until the store answers."""

    def __init__(
        self,
        store: QuotaStore,
        clock: Clock,
        *,
        ttl_ms: int,
        on_error: Callable[[str, QuotaStoreError], None],
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._store, self._clock, self._ttl_ms = store, clock, ttl_ms
        self._on_error, self._max = on_error, max_pending
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self._worker: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._answered = asyncio.Event()  # the store answered someone else: stop backing off

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, tenant: str, rid: str, charges: Sequence[Charge]) -> None:
        """Release `rid` as soon as the store answers (the first attempt starts at once)."""
        self._pending[rid] = _Pending(tenant, tuple(charges), self._clock.monotonic() + self._ttl_ms / 1000)
        while len(self._pending) > self._max:
            self._pending.popitem(last=False)
            self._on_error("release", QuotaStoreError("quota store: too many pending releases", kind="full"))
        self._idle.clear()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.ensure_future(self._work())

    def store_answered(self) -> None:
        """The store answered another operation: a release backing off tries again at once (after a
        restart, reservations the failed settles left would hold their slots until the next try)."""
        if self._pending:
            self._answered.set()

    async def idle(self) -> None:
        """Until nothing is pending (tests, and a drain before closing)."""
        await self._idle.wait()

    async def aclose(self) -> None:
        """Stop backing off and work through what is pending while the store answers: rounds go on
        until one fails entirely (each is bounded by the store's timeout), so a store that is down
        costs the shutdown one timeout. What is left expires by its TTL."""
        await cancel_and_wait(self._worker)
        self._worker = None
        while self._pending and await self._round():
            pass
        if not self._pending:
            self._idle.set()

    async def _work(self) -> None:
        backoff = FIRST_BACKOFF_SECONDS
        try:
            while self._pending:
                if await self._round():
                    backoff = FIRST_BACKOFF_SECONDS
                    continue
                await self._back_off(backoff)
                backoff = min(MAX_BACKOFF_SECONDS, backoff * 2)
        finally:
            if not self._pending:
                self._idle.set()

    async def _back_off(self, seconds: float) -> None:
        """Sleep `seconds` on the clock, or until the store answers another operation."""
        self._answered.clear()
        answered = asyncio.ensure_future(self._answered.wait())
        try:
            await self._clock.wait([answered], within=seconds)
        finally:
            await cancel_and_wait(answered)

    async def _round(self) -> bool:
        """Try a batch of the oldest pending releases; False when the store failed them all."""
        now = self._clock.monotonic()
        for rid in [rid for rid, p in self._pending.items() if p.until <= now]:
            del self._pending[rid]  # expired on the store by now: nothing is held any more
        batch = list(self._pending.items())[:BATCH]
        if not batch:
            return True
        results = await asyncio.gather(*(self._release(rid, p) for rid, p in batch))
        return any(results)

    async def _release(self, rid: str, pending: _Pending) -> bool:
        try:
            await self._store.release(pending.tenant, rid, pending.charges, ttl_ms=self._ttl_ms)
        except QuotaStoreError as exc:
            if not pending.reported:
                pending.reported = True
                self._on_error("release", exc)
            return False
        self._pending.pop(rid, None)
        return True
