"""The QuotaStore contract, its data, and the in-memory store (the embedded default).

A bucket is one limit's counter for one scope and one window. It holds `used` (settled amounts)
and reservations (amount and expiry, by reservation id). All amounts are integers: requests,
tokens, calls in flight, and micro-dollars, so sums are exact in Python and in Redis Lua alike.

`reserve` is all or nothing across the buckets of one call: if any enforced bucket cannot take its
amount (used + unexpired reservations + amount > limit), nothing is written. Shadow buckets take
their amount regardless and report that they would have refused. A second `reserve` with the same
reservation id adds to it (stream extensions); `settle` drops the reservation and adds the real
amount to `used`. Expired reservations are ignored and cleaned up when a bucket is next touched.
Every bucket remembers the highest near-limit level it has reported in its window, so each level
fires once per window per limit however many sidecars share the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sidecar.core.clock import Clock, Deadline
from sidecar.quota.windows import pick

WINDOW_GRACE_MS = 3_600_000  # a window's bucket outlives its end by this (GetQuota of a just-reset window)


@dataclass(frozen=True, slots=True)
class Charge:
    """An amount for one bucket. `edges` are consecutive window starts in epoch ms (empty: no window)."""

    key: str
    edges: tuple[int, ...]
    limit: int
    amount: int
    enforce: bool = True


@dataclass(frozen=True, slots=True)
class BucketState:
    """A bucket as a store saw it: the window it chose, and its totals after the operation."""

    start: int
    end: int
    used: int
    reserved: int
    level: int = 0  # a near-limit level newly reached by this operation, else 0
    over: bool = False  # the amount did not fit (for a shadow bucket: it would have refused)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of a reserve: admitted, or the index of the first enforced charge that did not fit."""

    admitted: bool
    buckets: tuple[BucketState, ...]
    refused: int = -1
    at: int = 0  # the store's time of the decision, epoch ms (Redis TIME): window ends count from it


class QuotaStoreError(Exception):
    """The store could not be reached or answered with an error; `kind` as in `sidecar.stores.errors`
    ("timeout": the operation may have run on the server)."""

    def __init__(self, message: str, *, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


class QuotaStore(Protocol):
    async def reserve(
        self,
        tag: str,
        rid: str,
        charges: Sequence[Charge],
        *,
        ttl_ms: int,
        levels: Sequence[int],
        deadline: Deadline | None = None,
    ) -> Verdict: ...

    async def settle(
        self, tag: str, rid: str, charges: Sequence[Charge], *, levels: Sequence[int]
    ) -> tuple[BucketState, ...]: ...

    async def release(self, tag: str, rid: str, charges: Sequence[Charge], *, ttl_ms: int) -> None:
        """Finish `rid` for good: on each bucket where it still holds a reservation, drop it and
        charge the charge's amount (0 after a failed reserve; the real usage for a settle retried
        after a failure), never more than the reservation held (what a fail_open extension let the
        call use while the store failed was served uncounted). A reserve, settle or release of
        `rid` that reaches the store later (one that timed out may still be queued there) changes
        nothing: idempotent, never charged twice."""
        ...

    async def renew(self, tag: str, rid: str, charges: Sequence[Charge], *, ttl_ms: int) -> None:
        """The call holding `rid` still runs: on each bucket where `rid` holds a live reservation, it
        now expires `ttl_ms` from now (amounts unchanged). A reservation settled, released or
        expired is left as it is: a renewal never brings one back."""
        ...

    async def read(self, tag: str, charges: Sequence[Charge]) -> tuple[BucketState, ...]: ...

    async def aclose(self) -> None: ...


def bucket_key(key: str, start: int) -> str:
    return f"{key}:{start}" if start else key


def crossed(used: int, reserved: int, limit: int, noted: int, levels: Sequence[int]) -> int:
    """The highest level newly reached (0 if none): (used + reserved) as a percentage of limit."""
    if limit <= 0:
        return 0
    reached = [lv for lv in levels if (used + reserved) * 100 >= lv * limit and lv > noted]
    return reached[-1] if reached else 0


@dataclass
class _Bucket:
    used: int = 0
    noted: int = 0
    expires_at: int = 0
    total: int = 0  # the sum of the reservations below, kept up to date
    sweep_at: int = 0  # no reservation expires before this (0: none held); then they are swept
    reservations: dict[str, tuple[int, int]] = field(default_factory=dict)  # rid -> (amount, expires)

    def reserved(self, now_ms: int) -> int:
        """The live reservations' total; O(1) unless one may have expired."""
        if self.sweep_at and self.sweep_at <= now_ms:
            live = {r: v for r, v in self.reservations.items() if v[1] > now_ms}
            self.reservations = live
            self.total = sum(amount for amount, _ in live.values())
            self.sweep_at = min((expires for _, expires in live.values()), default=0)
        return self.total

    def hold(self, rid: str, amount: int, expires: int) -> None:
        held = self.reservations.get(rid, (0, 0))[0]
        self.reservations[rid] = (held + amount, expires)
        self.total += amount
        self.sweep_at = min(self.sweep_at or expires, expires)

    def release(self, rid: str) -> None:
        self.total -= self.reservations.pop(rid, (0, 0))[0]


class MemoryQuotaStore:
    """One process's buckets, in a dict; the event loop makes each operation atomic."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._sweep_at = 10_000

    def _now_ms(self) -> int:
        return int(self._clock.wall() * 1000)

    def _bucket(self, tag: str, charge: Charge, now_ms: int) -> tuple[_Bucket, int, int]:
        start, end = pick(charge.edges, now_ms) if charge.edges else (0, 0)
        name = f"{tag}:{bucket_key(charge.key, start)}"
        bucket = self._buckets.get(name)
        if bucket is None or bucket.expires_at <= now_ms:
            bucket = self._buckets[name] = _Bucket()
        return bucket, start, end

    async def reserve(
        self,
        tag: str,
        rid: str,
        charges: Sequence[Charge],
        *,
        ttl_ms: int,
        levels: Sequence[int],
        deadline: Deadline | None = None,  # an in-process operation does not wait
    ) -> Verdict:
        now = self._now_ms()
        self._sweep(now)
        found = [self._bucket(tag, c, now) for c in charges]
        states: list[BucketState] = []
        refused = -1
        for i, (c, (b, start, end)) in enumerate(zip(charges, found, strict=True)):
            reserved = b.reserved(now)
            over = b.used + reserved + c.amount > c.limit
            if over and c.enforce and refused < 0:
                refused = i
            states.append(BucketState(start, end, b.used, reserved, over=over))
        if refused >= 0:
            return Verdict(False, tuple(states), refused, now)
        out = []
        for c, (b, start, end), s in zip(charges, found, states, strict=True):
            b.hold(rid, c.amount, now + ttl_ms)
            b.expires_at = max(b.expires_at, (end + WINDOW_GRACE_MS) if end else now + ttl_ms)
            level = crossed(b.used, s.reserved + c.amount, c.limit, b.noted, levels)
            b.noted = max(b.noted, level)
            out.append(BucketState(start, end, b.used, s.reserved + c.amount, level, s.over))
        return Verdict(True, tuple(out), at=now)

    async def release(self, tag: str, rid: str, charges: Sequence[Charge], *, ttl_ms: int) -> None:
        """In one process nothing of `rid` can still be on its way: charge where it is held."""
        now = self._now_ms()
        for c in charges:
            b = self._bucket(tag, c, now)[0]
            b.reserved(now)
            if rid in b.reservations:
                held = b.reservations[rid][0]
                b.release(rid)
                b.used += min(c.amount, held)

    async def renew(self, tag: str, rid: str, charges: Sequence[Charge], *, ttl_ms: int) -> None:
        now = self._now_ms()
        for c in charges:
            start = pick(c.edges, now)[0] if c.edges else 0
            b = self._buckets.get(f"{tag}:{bucket_key(c.key, start)}")
            if b is None or b.expires_at <= now or b.reservations.get(rid, (0, 0))[1] <= now:
                continue
            b.reservations[rid] = (b.reservations[rid][0], now + ttl_ms)  # sweep_at stays a lower bound
            if not c.edges:
                b.expires_at = max(b.expires_at, now + ttl_ms)

    async def settle(
        self, tag: str, rid: str, charges: Sequence[Charge], *, levels: Sequence[int]
    ) -> tuple[BucketState, ...]:
        now = self._now_ms()
        out = []
        for c in charges:
            b, start, end = self._bucket(tag, c, now)
            b.reserved(now)
            b.release(rid)
            b.used += c.amount
            if end:
                b.expires_at = max(b.expires_at, end + WINDOW_GRACE_MS)
            reserved = b.reserved(now)
            level = crossed(b.used, reserved, c.limit, b.noted, levels)
            b.noted = max(b.noted, level)
            out.append(BucketState(start, end, b.used, reserved, level))
        return tuple(out)

    async def read(self, tag: str, charges: Sequence[Charge]) -> tuple[BucketState, ...]:
        now = self._now_ms()
        out = []
        for c in charges:
            start, end = pick(c.edges, now) if c.edges else (0, 0)
            b = self._buckets.get(f"{tag}:{bucket_key(c.key, start)}")
            if b is None or b.expires_at <= now:
                out.append(BucketState(start, end, 0, 0))
            else:
                out.append(BucketState(start, end, b.used, b.reserved(now)))
        return tuple(out)

    def _sweep(self, now_ms: int) -> None:
        """Forget expired buckets now and then, so memory stays bounded by live windows."""
        if len(self._buckets) > self._sweep_at:
            self._buckets = {k: b for k, b in self._buckets.items() if b.expires_at > now_ms}
            self._sweep_at = max(10_000, 2 * len(self._buckets))

    async def aclose(self) -> None:
        """Nothing to release."""
