"""The reservations of calls still running, kept alive on the store until the calls settle.

A reservation expires `reservation_ttl_seconds` after it was last written, so that a killed
sidecar's calls stop counting. A call that runs longer than that (a long stream, a slow model)
would otherwise lose its hold while it still runs: its call in flight, its reserved tokens and
dollars would be admitted again to others and the limits overshot. One background task renews,
every third of the TTL, the reservation of each call still running in this process (one store
operation per call, on the buckets its reservation chose, a batch at a time); a call leaves the set
when it is settled. A renewal never brings back a reservation that was settled, released or has
expired (see the stores' `renew`). A round in which the store failed is reported once as the
operation "renew"; the next round tries again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from sidecar.core.clock import Clock
from sidecar.core.tasks import cancel_and_wait, detached
from sidecar.quota.store import Charge, QuotaStore, QuotaStoreError

BATCH = 32  # renewals sent at once: a pool of connections is not flooded by thousands of calls


class LiveReservations:
    """Reservation ids of running calls (with their tenant and charges), renewed until discarded."""

    def __init__(
        self,
        store: QuotaStore,
        clock: Clock,
        *,
        ttl_ms: int,
        on_error: Callable[[str, QuotaStoreError], None],
    ) -> None:
        self._store, self._clock, self._ttl_ms, self._on_error = store, clock, ttl_ms, on_error
        self._live: dict[str, tuple[str, tuple[Charge, ...]]] = {}
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._live)

    def add(self, tenant: str, rid: str, charges: Sequence[Charge]) -> None:
        """Renew `rid` on these buckets (the amounts are ignored) until it is discarded."""
        self._live[rid] = (tenant, tuple(charges))
        if self._task is None or self._task.done():
            self._task = detached(self._run())  # its rounds are no one call's: no request id

    def discard(self, rid: str) -> None:
        self._live.pop(rid, None)

    async def renew_all(self) -> None:
        """One round: renew every running call's reservation, a batch at a time."""
        held = list(self._live.items())
        failed: QuotaStoreError | None = None
        for i in range(0, len(held), BATCH):
            results = await asyncio.gather(
                *(self._renew(rid, tenant, charges) for rid, (tenant, charges) in held[i : i + BATCH]),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, QuotaStoreError):
                    failed = failed or result
                elif isinstance(result, BaseException):
                    raise result
        if failed is not None:
            self._on_error("renew", failed)

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _renew(self, rid: str, tenant: str, charges: tuple[Charge, ...]) -> None:
        if rid in self._live:  # not settled while its batch waited
            await self._store.renew(tenant, rid, charges, ttl_ms=self._ttl_ms)

    async def _run(self) -> None:
        while self._live:
            await self._clock.sleep(self._ttl_ms / 3000)
            await self.renew_all()
