"""Undo writes a store must receive eventually, retried until it answers.

A store operation that timed out (or whose caller was cancelled) may still run later: Redis that
stalls (a fork, a slow script, SIGSTOP) keeps the command queued and runs it when it wakes up. What
such an operation would hold (a quota reservation, an idempotency claim) must then be undone by a
write that itself may fail. `PendingWrites` keeps those writes by key and retries them with a capped
exponential backoff on the injected clock until the store takes them or they no longer matter (the
held thing has expired on the store by then). One task works through every pending write, a batch at
a time; the set is bounded (the oldest is dropped first); each write's first failure, and each drop,
is reported once through `on_error`, in the context of the call that added the write (its log lines
carry that call's request id, not the id of whichever call happened to start the worker).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sidecar.core.clock import Clock
from sidecar.core.lru import Lru
from sidecar.core.tasks import cancel_and_wait, detached

FIRST_BACKOFF_SECONDS = 0.05
MAX_BACKOFF_SECONDS = 5.0
MAX_PENDING = 10_000
BATCH = 32  # writes sent at once while working through the pending set

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TooManyPendingError(Exception):
    """The pending set was full: its oldest write was dropped (what it held expires on the store)."""

    kind = "full"


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    until: float  # monotonic: nothing is left to undo by then
    context: contextvars.Context  # the adding call's: its failure is reported as that call's
    reported: bool = False


class PendingWrites(Generic[K, V]):
    """Sends `attempt(key, value)` for every added key until it returns without one of `failures`."""

    def __init__(
        self,
        clock: Clock,
        *,
        attempt: Callable[[K, V], Awaitable[object]],
        failures: tuple[type[Exception], ...],
        on_error: Callable[[Exception], None],
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._clock, self._attempt, self._failures = clock, attempt, failures
        self._on_error, self._max = on_error, max_pending
        self._pending: Lru[K, _Entry[V]] = Lru(max_pending, on_evict=self._dropped)
        self._worker: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._answered = asyncio.Event()  # the store answered someone else: stop backing off

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, key: K, value: V, *, until: float) -> None:
        """Send the write as soon as the store answers (the first attempt starts at once); `until` is
        the monotonic time after which it no longer matters. A key added again replaces its write."""
        self._pending.pop(key, None)
        self._pending.put(key, _Entry(value, until, contextvars.copy_context()))
        self._idle.clear()
        if self._worker is None or self._worker.done():
            self._worker = detached(self._work())

    def waiting(self, key: K) -> V | None:
        """The write pending for `key` (not sent yet, or failed so far, and still mattering), else None."""
        entry = self._pending.peek(key)
        return None if entry is None or entry.until <= self._clock.monotonic() else entry.value

    def _dropped(self, key: K, dropped: _Entry[V]) -> None:
        full = TooManyPendingError(f"more than {self._max} pending writes; the oldest dropped")
        dropped.context.run(self._on_error, full)

    def store_answered(self) -> None:
        """The store answered another operation: a write backing off is tried again at once (after a
        restart, what the failed writes would undo stays held until the next try)."""
        if self._pending:
            self._answered.set()

    async def idle(self) -> None:
        """Until nothing is pending (tests, and a drain before closing)."""
        await self._idle.wait()

    async def aclose(self) -> None:
        """Stop backing off and work through what is pending while the store answers: rounds go on
        until one fails entirely (each is bounded by the store's timeout), so a store that is down
        costs the shutdown one timeout. What is left expires on the store."""
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
        """Try a batch of the oldest pending writes; False when the store failed them all."""
        now = self._clock.monotonic()
        for key in [key for key, entry in self._pending.items() if entry.until <= now]:
            self._pending.pop(key)  # expired on the store by now: nothing is held any more
        batch = list(self._pending.items())[:BATCH]
        if not batch:
            return True
        results = await asyncio.gather(*(self._send(key, entry) for key, entry in batch))
        return any(results)

    async def _send(self, key: K, entry: _Entry[V]) -> bool:
        try:
            await self._attempt(key, entry.value)
        except self._failures as exc:
            if not entry.reported:
                entry.reported = True
                entry.context.run(self._on_error, exc)
            return False
        if self._pending.peek(key) is entry:  # not replaced by a newer write meanwhile
            self._pending.pop(key)
        return True
