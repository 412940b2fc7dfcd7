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
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from sidecar.core.clock import Clock
from sidecar.core.tasks import cancel_and_wait, detached
from sidecar.quota.store import QuotaStoreError

BATCH = 32  # renewals sent at once: a pool of connections is not flooded by thousands of calls
G = TypeVar("G")


class LiveReservations(Generic[G]):
    """The running calls' grants by reservation id, each passed to `renew` every `period` seconds
    until it is discarded (the grant's charges are built then, not on every call's path)."""

    def __init__(
        self,
        clock: Clock,
        *,
        period: float,
        renew: Callable[[G], Awaitable[None]],
        on_error: Callable[[str, QuotaStoreError], None],
    ) -> None:
        self._clock, self._period, self._renew, self._on_error = clock, period, renew, on_error
        self._live: dict[str, G] = {}
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._live)

    def add(self, rid: str, grant: G) -> None:
        self._live[rid] = grant
        if self._task is None or self._task.done():
            self._task = detached(self._run())  # its rounds are no one call's: no request id

    def discard(self, rid: str) -> None:
        self._live.pop(rid, None)

    async def renew_all(self) -> None:
        """One round: renew every running call's reservation, a batch at a time."""
        held = list(self._live)
        failed: QuotaStoreError | None = None
        for i in range(0, len(held), BATCH):
            results = await asyncio.gather(
                *(self._one(rid) for rid in held[i : i + BATCH]), return_exceptions=True
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

    async def _one(self, rid: str) -> None:
        grant = self._live.get(rid)
        if grant is not None:  # not settled while its batch waited
            await self._renew(grant)

    async def _run(self) -> None:
        while self._live:
            await self._clock.sleep(self._period)
            await self.renew_all()
