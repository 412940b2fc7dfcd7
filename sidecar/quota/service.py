"""The reserve/settle algorithm over every limit that applies to a call.

reserve: one atomic store operation takes, on every applicable bucket at once, 1 request, 1 call in
flight, the estimated tokens and the estimated micro-dollars, or takes nothing and names the first
limit that refused. extend: adds tokens and dollars to the same reservation while a stream outgrows
its estimate. settle: drops the reservation and charges the real amounts (0 for calls in flight,
everything 0 for a full refund). When the store fails, a call is refused (QUOTA_UNAVAILABLE) if any
enforced limit that applies is `fail_closed`, else admitted without a reservation ("degraded").
"""

from __future__ import annotations

import asyncio
import uuid
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from sidecar.config.quota import QuotaPolicy, TierConfig, Window
from sidecar.core.clock import DEADLINE_MARGIN, Clock, Deadline
from sidecar.core.errors import (
    DeadlineExceededError,
    FieldViolation,
    InvalidRequestError,
    QuotaExceededError,
    QuotaUnavailableError,
    QuotaViolation,
)
from sidecar.quota.limits import Limit, LimitBook
from sidecar.quota.releases import PendingReleases
from sidecar.quota.renewals import LiveReservations
from sidecar.quota.signals import NearLimitEvent, QuotaSignals
from sidecar.quota.store import BucketState, Charge, QuotaStore, QuotaStoreError, Verdict
from sidecar.quota.windows import window_edges

STORE_RETRY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Amounts:
    """What one call takes: requests and calls in flight are 0 or 1; usd in micro-dollars."""

    requests: int = 0
    tokens: int = 0
    usd: int = 0
    concurrency: int = 0

    def of(self, metric: str) -> int:
        return int(getattr(self, metric))


@dataclass(frozen=True, slots=True)
class Grant:
    """A call's reservation: its limits and the window each bucket chose."""

    rid: str
    tenant: str
    user: str
    limits: tuple[Limit, ...]
    windows: tuple[tuple[int, int], ...]
    degraded: bool = False


@dataclass(frozen=True, slots=True)
class LimitState:
    limit: Limit
    used: float
    reserved: float
    reset_at: float | None  # epoch seconds; None for concurrency

    @property
    def remaining(self) -> float:
        return max(0.0, self.limit.native(self.limit.limit) - self.used - self.reserved)


class QuotaService:
    def __init__(
        self,
        policy: QuotaPolicy,
        tiers: Mapping[str, TierConfig],
        store: QuotaStore,
        clock: Clock,
        signals: QuotaSignals,
    ) -> None:
        self.policy, self.store, self.signals = policy, store, signals
        self._clock = clock
        self._book = LimitBook(policy, tiers)
        self._zone = zoneinfo.ZoneInfo(policy.timezone)
        self._levels = tuple(policy.near_limit_levels)
        self._ttl_ms = int(policy.reservation_ttl_seconds * 1000)
        self._edge_cache: dict[Window, tuple[int, ...]] = {}
        self._settling: set[asyncio.Future[None]] = set()
        self.releases = PendingReleases(store, clock, ttl_ms=self._ttl_ms, on_error=signals.store_error)
        self.live: LiveReservations[Grant] = LiveReservations(
            clock, period=self._ttl_ms / 3000, renew=self._renew, on_error=signals.store_error
        )
        self._unsure: set[str] = set()  # grants whose extension failed: it may reach the store late
        self._blind: dict[str, int] = {}  # tokens granted uncounted (fail_open, the store failing) by rid

    def limits(self, tenant: str, user: str, tier: str) -> tuple[Limit, ...]:
        """The caller's limits; a limit scoped to a tenant or user needs that id (INVALID_ARGUMENT)."""
        limits = self._book.for_caller(tenant, tier)
        bad = []
        if not tenant and limits:
            bad.append(FieldViolation("tenant_id", "required: quota limits apply to every tenant"))
        if not user and any(limit.scope == "user" for limit in limits):
            bad.append(FieldViolation("user_id", "required: this tier has per-user quota limits"))
        if bad:
            raise InvalidRequestError(bad)
        return limits

    async def reserve(
        self,
        tenant: str,
        user: str,
        tier: str,
        amounts: Amounts,
        *,
        deadline: Deadline | None = None,
        near_limit: bool = True,
    ) -> Grant:
        """Reserve `amounts` on every limit of the caller. A reserve that does not return normally
        (the store failed or timed out after the script may have run, or the caller was cancelled)
        releases the reservation id in the background, retried until the store answers
        (`sidecar.quota.releases`), so nothing stays held until the TTL. `near_limit=False`: the
        levels the reservation reaches are not reported (nor remembered as reported): a tentative
        reservation, likely refunded; its settle reports what the charge reaches."""
        limits = self.limits(tenant, user, tier)
        rid = uuid.uuid4().hex
        charges = [self._charge(lim, tenant, user, amounts.of(lim.metric), None) for lim in limits]
        levels = self._levels if near_limit else ()
        try:
            verdict = await self.store.reserve(
                tenant, rid, charges, ttl_ms=self._ttl_ms, levels=levels, deadline=deadline
            )
        except QuotaStoreError as exc:
            self.releases.add(tenant, rid, _nothing(charges))
            _deadline_passed(deadline, "reserving quota", exc)
            return self._store_down("reserve", exc, Grant(rid, tenant, user, limits, (), degraded=True))
        except BaseException:  # cancelled mid-reserve: the script may have run
            self.releases.add(tenant, rid, _nothing(charges))
            raise
        self.releases.store_answered()
        self._report(limits, verdict.buckets, tenant, user)
        if not verdict.admitted:
            raise self._refusal(limits[verdict.refused], verdict, tenant, user)
        grant = Grant(rid, tenant, user, limits, tuple((b.start, b.end) for b in verdict.buckets))
        self.live.add(rid, grant)
        return grant

    async def extend(self, grant: Grant, amounts: Amounts, *, deadline: Deadline | None = None) -> None:
        """Add tokens and dollars to a reservation; raises QuotaExceededError when a limit refuses.
        An extend that failed or whose caller was cancelled may still run on the store, even after
        the call's settle: that settle is then made as a release (see `settle`), which a late
        extension cannot outlive. It waits at most min(store timeout, the deadline's time left); one
        the deadline cut off is DeadlineExceededError (the caller's, never the store's failure)."""
        if grant.degraded:
            return
        picked = [i for i, lim in enumerate(grant.limits) if amounts.of(lim.metric) > 0]
        if not picked:
            return
        limits = tuple(grant.limits[i] for i in picked)
        charges = [self._fixed(grant, i, amounts.of(grant.limits[i].metric)) for i in picked]
        try:
            verdict = await self.store.reserve(
                grant.tenant, grant.rid, charges, ttl_ms=self._ttl_ms, levels=self._levels, deadline=deadline
            )
        except QuotaStoreError as exc:
            self._unsure.add(grant.rid)
            _deadline_passed(deadline, "extending its quota reservation", exc)
            self._store_down("extend", exc, grant, limits)
            self._uncounted(grant, amounts, limits, exc)
            return
        except BaseException:  # cancelled mid-extension: the script may still run, after the settle
            self._unsure.add(grant.rid)
            raise
        self._report(limits, verdict.buckets, grant.tenant, grant.user)
        if not verdict.admitted:
            raise self._refusal(limits[verdict.refused], verdict, grant.tenant, grant.user)

    def _uncounted(
        self, grant: Grant, amounts: Amounts, limits: Sequence[Limit], exc: QuotaStoreError
    ) -> None:
        """An extension the store failed to take, every limit it touches fail_open: granted uncounted,
        as a call admitted while the store fails is served, but bounded: at most
        `output_tokens_estimate` tokens per call (what a call reserves up front). Past that the call
        ends with QUOTA_UNAVAILABLE. Nothing granted this way is charged later: the call's settle is
        a release, which charges no more than the store held."""
        blind = self._blind.get(grant.rid, 0) + amounts.tokens
        if blind > self.policy.output_tokens_estimate:
            raise QuotaUnavailableError(
                "the quota store is unreachable and the call outgrew what it may use uncounted "
                f"(output_tokens_estimate, {self.policy.output_tokens_estimate} tokens)",
                metadata={"limit": limits[0].name},
                retry_after=STORE_RETRY_SECONDS,
            ) from exc
        self._blind[grant.rid] = blind

    async def settle(self, grant: Grant, amounts: Amounts) -> None:
        """Charge the real amounts and release the reservation; never raises for the store. A settle
        that fails is retried in the background as a release carrying the amounts: it charges only
        where the reservation is still held, so a settle that did run (its answer was lost) or that
        runs late is not charged twice."""
        if grant.degraded:
            return
        self.live.discard(grant.rid)
        self._blind.pop(grant.rid, None)
        charges = [self._fixed(grant, i, amounts.of(lim.metric)) for i, lim in enumerate(grant.limits)]
        if grant.rid in self._unsure:  # an extension may still arrive: finish the id for good
            self._unsure.discard(grant.rid)
            try:
                await self.store.release(grant.tenant, grant.rid, charges, ttl_ms=self._ttl_ms)
            except QuotaStoreError as exc:
                self.signals.store_error("settle", exc)
                self.releases.add(grant.tenant, grant.rid, charges)
            return
        try:
            states = await self.store.settle(grant.tenant, grant.rid, charges, levels=self._levels)
        except QuotaStoreError as exc:
            self.signals.store_error("settle", exc)
            self.releases.add(grant.tenant, grant.rid, charges)
            return
        self._report(grant.limits, states, grant.tenant, grant.user)

    async def _renew(self, grant: Grant) -> None:
        """Keep a running call's reservation alive (see `sidecar.quota.renewals`)."""
        charges = [self._fixed(grant, i, 0) for i in range(len(grant.limits))]
        await self.store.renew(grant.tenant, grant.rid, charges, ttl_ms=self._ttl_ms)

    async def settle_shielded(
        self, grant: Grant, amounts: Amounts, *, deadline: Deadline | None = None
    ) -> None:
        """settle(), finished even if the caller is cancelled meanwhile; aclose() waits for it. The
        caller waits for it at most until its deadline: a stalled store does not hold a call past it
        (the settle goes on in the background, and is retried there if the store fails)."""
        task = asyncio.ensure_future(self.settle(grant, amounts))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)
        within = deadline.remaining() if deadline is not None else None
        if within is None:
            await asyncio.shield(task)
        elif within > 0:
            await self._clock.wait({task}, within=within)

    async def snapshot(self, tenant: str, user: str, tier: str) -> list[LimitState]:
        """Every limit of the caller with its current window (user limits only with a user)."""
        limits = tuple(lim for lim in self._book.for_caller(tenant, tier) if user or lim.scope == "tenant")
        charges = [self._charge(lim, tenant, user, 0, None) for lim in limits]
        try:
            states = await self.store.read(tenant, charges)
        except QuotaStoreError as exc:
            self.signals.store_error("read", exc)
            raise QuotaUnavailableError(
                "the quota store is unreachable", retry_after=STORE_RETRY_SECONDS
            ) from exc
        return [
            LimitState(lim, lim.native(s.used), lim.native(s.reserved), s.end / 1000 if s.end else None)
            for lim, s in zip(limits, states, strict=True)
        ]

    async def idle(self) -> None:
        """Until the settles in flight (a caller may have stopped waiting at its deadline) and the
        pending releases are done: tests."""
        await asyncio.gather(*self._settling, return_exceptions=True)
        await self.releases.idle()

    async def aclose(self) -> None:
        """Finish the settles in flight, stop renewing, and, while the store answers, send the
        pending releases; then close the store and stop the webhook sender."""
        try:
            await asyncio.gather(*self._settling, return_exceptions=True)
            await self.live.aclose()
            await self.releases.aclose()
            await self.store.aclose()
        finally:
            if self.signals.webhook is not None:
                await self.signals.webhook.aclose()

    def _charge(
        self, lim: Limit, tenant: str, user: str, amount: int, edges: tuple[int, ...] | None
    ) -> Charge:
        if edges is None:
            edges = self._edges(lim.window) if lim.window else ()
        return Charge(lim.key(tenant, user), edges, lim.limit, amount, enforce=not lim.shadow)

    def _edges(self, window: Window) -> tuple[int, ...]:
        """The window's edges around now, computed once per window (time zone arithmetic is slow)."""
        now = self._clock.wall()
        edges = self._edge_cache.get(window)
        if edges is None or not edges[1] <= now * 1000 < edges[2]:
            edges = self._edge_cache[window] = window_edges(window, now, self._zone)
        return edges

    def _fixed(self, grant: Grant, i: int, amount: int) -> Charge:
        """A charge on the very bucket the reservation chose, whatever the time is now."""
        lim, (start, end) = grant.limits[i], grant.windows[i]
        return self._charge(lim, grant.tenant, grant.user, amount, (start, end) if end else ())

    def _store_down(
        self, operation: str, exc: QuotaStoreError, grant: Grant, limits: Sequence[Limit] | None = None
    ) -> Grant:
        self.signals.store_error(operation, exc)
        closed = [lim.name for lim in limits or grant.limits if lim.fail_closed and not lim.shadow]
        if closed:
            raise QuotaUnavailableError(
                f"the quota store is unreachable and limit {closed[0]} is fail_closed",
                metadata={"limit": closed[0]},
                retry_after=STORE_RETRY_SECONDS,
            ) from exc
        return grant

    def _report(self, limits: Sequence[Limit], states: Sequence[BucketState], tenant: str, user: str) -> None:
        for lim, s in zip(limits, states, strict=True):
            if s.over and lim.shadow:
                self.signals.refused(lim.name, lim.reason, shadow=True)
            if s.level:
                self.signals.near_limit(self._event(lim, s, tenant, user))

    def _event(self, lim: Limit, s: BucketState, tenant: str, user: str) -> NearLimitEvent:
        return NearLimitEvent(
            limit=lim.name,
            metric=lim.metric,
            scope=lim.scope,
            tenant=tenant,
            user=user if lim.scope == "user" else "",
            window=lim.window or "concurrent",
            level=s.level,
            used=lim.native(s.used + s.reserved),
            limit_value=lim.native(lim.limit),
            window_end=s.end / 1000 if s.end else None,
            shadow=lim.shadow,
        )

    def _refusal(self, lim: Limit, verdict: Verdict, tenant: str, user: str) -> QuotaExceededError:
        """The refusal by `lim`; RetryInfo counts to its window's end by the store's clock (Redis
        time), which the sidecar's may be seconds away from."""
        self.signals.refused(lim.name, lim.reason, shadow=False)
        s = verdict.buckets[verdict.refused]
        now_ms = verdict.at or self._clock.wall() * 1000
        retry = max(0.001, (s.end - now_ms) / 1000) if s.end else STORE_RETRY_SECONDS
        window = lim.window or "concurrent"
        value = f"{lim.native(lim.limit):g}"
        return QuotaExceededError(
            f"{lim.scope} limit {lim.name} ({value} {lim.metric} per {window}) is exhausted",
            reason=lim.reason,
            metadata={"limit": lim.name, "metric": lim.metric, "window": window, "scope": lim.scope},
            violation=QuotaViolation(
                lim.subject(tenant, user), f"{lim.name}: {value} {lim.metric} per {window}"
            ),
            retry_after=round(retry, 3),
        )


def _deadline_passed(deadline: Deadline | None, doing: str, exc: QuotaStoreError) -> None:
    """A store operation cut off by the call's deadline is the caller's: DEADLINE_EXCEEDED, never
    a store failure (no fail_open admission, no QUOTA_UNAVAILABLE). The timer that cut it may fire a
    little before the deadline itself (DEADLINE_MARGIN)."""
    if deadline is not None and deadline.expired(DEADLINE_MARGIN):
        raise DeadlineExceededError(f"the call's deadline passed while {doing}") from exc


def _nothing(charges: Sequence[Charge]) -> list[Charge]:
    """The charges of a reserve that failed, to release: whatever it may hold is dropped, no usage."""
    return [replace(c, amount=0) for c in charges]
