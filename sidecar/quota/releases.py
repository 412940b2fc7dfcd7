"""Releases of reservation ids whose reserve or settle failed, retried until the store answers.

A reserve that timed out (or whose caller was cancelled) may still run on the store later. Its
reservation id must then be released (a tombstone refuses the reserve if it runs later), or the
reservation holds its amounts, a concurrency slot among them, until the reservation TTL. A settle
that failed is released the same way with the call's usage as the amounts (charged only where the
reservation is still held, so never twice). The retrying, backoff and bound are
`sidecar.stores.pending`'s; a release no longer matters once the reservation would have expired.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sidecar.core.clock import Clock
from sidecar.quota.store import Charge, QuotaStore, QuotaStoreError
from sidecar.stores.pending import MAX_PENDING, PendingWrites, TooManyPendingError


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
        self._store, self._clock, self._ttl_ms, self._on_error = store, clock, ttl_ms, on_error
        self._writes: PendingWrites[str, tuple[str, tuple[Charge, ...]]] = PendingWrites(
            clock,
            attempt=self._release,
            failures=(QuotaStoreError,),
            on_error=self._report,
            max_pending=max_pending,
        )

    def __len__(self) -> int:
        return len(self._writes)

    def store_answered(self) -> None:
        self._writes.store_answered()

    async def idle(self) -> None:
        await self._writes.idle()

    async def aclose(self) -> None:
        await self._writes.aclose()

    def add(self, tenant: str, rid: str, charges: Sequence[Charge]) -> None:
        """Release `rid` as soon as the store answers (the first attempt starts at once)."""
        until = self._clock.monotonic() + self._ttl_ms / 1000
        self._writes.add(rid, (tenant, tuple(charges)), until=until)

    async def _release(self, rid: str, held: tuple[str, tuple[Charge, ...]]) -> None:
        tenant, charges = held
        await self._store.release(tenant, rid, charges, ttl_ms=self._ttl_ms)

    def _report(self, error: Exception) -> None:
        if not isinstance(error, QuotaStoreError):  # TooManyPendingError: the oldest was dropped
            error = QuotaStoreError(f"quota store: {error}", kind=TooManyPendingError.kind)
        self._on_error("release", error)
