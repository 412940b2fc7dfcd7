"""A reserve that does not return normally leaks nothing: a real Redis made slow with DEBUG SLEEP
(the reserve times out while its script is queued, then runs) and a caller cancelled mid-reserve.
The concurrency slot and the tokens/USD are free right after, not after the reservation TTL."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sidecar.config.quota import QuotaPolicy, TierConfig
from sidecar.quota.redis_store import RedisQuotaStore
from sidecar.quota.service import Amounts, QuotaService
from sidecar.quota.signals import QuotaSignals
from sidecar.quota.store import QuotaStoreError
from tests.conftest import FakeClock
from tests.support.quota_cluster import OwnRedis
from tests.support.redis import stall, start_redis

pytestmark = pytest.mark.integration
LIMITS = [
    {"name": "one-at-a-time", "metric": "concurrency", "limit": 1},
    {"name": "tokens", "metric": "tokens", "window": "day", "limit": 10_000},
    {"name": "dollars", "metric": "usd", "window": "day", "limit": 5},
]
NAMES = {"one-at-a-time", "tokens", "dollars"}
CALL = Amounts(requests=1, tokens=500, usd=2_000, concurrency=1)


@pytest.fixture
async def slow_redis() -> AsyncIterator[str]:
    with start_redis("--enable-debug-command", "yes") as port:
        yield f"redis://127.0.0.1:{port}/0"


def service(url: str, clock: FakeClock, timeout: float, **policy: Any) -> QuotaService:
    store = RedisQuotaStore.from_url(url, clock, prefix="leak", timeout=timeout)
    tiers = {"free": TierConfig(requests_per_minute=1000)}
    quota = QuotaPolicy(store="redis", redis_url=url, limits=LIMITS, **policy)
    return QuotaService(quota, tiers, store, clock, QuotaSignals())


async def warm(quota: QuotaService) -> None:
    """A connection in the pool and the scripts loaded, so a reserve under DEBUG SLEEP is sent at
    once and queued (a cold client would still be connecting when it gives up)."""
    await quota.settle(await quota.reserve("acme", "ann", "free", CALL), Amounts())


async def drained(quota: QuotaService, clock: FakeClock) -> None:
    """Until every pending release is done; their backoff runs on the injected clock, moved here."""
    for _ in range(500):
        if not len(quota.releases):
            return
        clock.advance(1.0)
        await asyncio.sleep(0.02)
    raise AssertionError(f"{len(quota.releases)} releases still pending")


async def held(quota: QuotaService) -> dict[str, float]:
    return {
        s.limit.name: s.reserved for s in await quota.snapshot("acme", "ann", "free") if s.limit.name in NAMES
    }


async def test_a_reserve_that_timed_out_after_its_script_ran_is_released(slow_redis: str) -> None:
    clock = FakeClock()
    quota = service(slow_redis, clock, timeout=0.2)
    try:
        await warm(quota)
        sleeper = await stall(slow_redis, 0.6)
        grant = await quota.reserve("acme", "ann", "free", CALL)  # times out: fail_open admits, degraded
        assert grant.degraded
        await sleeper  # Redis wakes up and runs the queued reserve script, then the release
        await drained(quota, clock)
        assert await held(quota) == {"one-at-a-time": 0, "tokens": 0, "dollars": 0}
        again = await quota.reserve("acme", "ann", "free", CALL)  # the slot is free at once
        assert not again.degraded
        await quota.settle(again, Amounts())
    finally:
        await quota.aclose()


async def test_a_caller_cancelled_mid_reserve_leaves_nothing_held(slow_redis: str) -> None:
    clock = FakeClock()
    quota = service(slow_redis, clock, timeout=5.0)
    try:
        await warm(quota)
        sleeper = await stall(slow_redis, 0.4)
        caller = asyncio.create_task(quota.reserve("acme", "ann", "free", CALL))
        await asyncio.sleep(0.05)  # the reserve script is queued behind the sleep
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        await sleeper
        await drained(quota, clock)
        assert await held(quota) == {"one-at-a-time": 0, "tokens": 0, "dollars": 0}
        again = await quota.reserve("acme", "ann", "free", CALL)
        assert not again.degraded
        await quota.settle(again, Amounts())
    finally:
        await quota.aclose()


async def test_a_release_that_overtakes_its_reserve_still_wins(slow_redis: str) -> None:
    """The release may reach Redis before the timed-out reserve runs: the reserve is then refused."""
    clock = FakeClock()
    quota = service(slow_redis, clock, timeout=2.0)
    store = quota.store
    try:
        charges = [
            quota._charge(lim, "acme", "ann", CALL.of(lim.metric), None)
            for lim in quota.limits("acme", "ann", "free")
        ]
        await store.release("acme", "late", charges, ttl_ms=60_000)
        with pytest.raises(Exception, match="released"):
            await store.reserve("acme", "late", charges, ttl_ms=60_000, levels=())
        assert await held(quota) == {"one-at-a-time": 0, "tokens": 0, "dollars": 0}
    finally:
        await quota.aclose()


async def test_a_stall_longer_than_every_release_attempt_still_frees_the_slot(slow_redis: str) -> None:
    """Redis answers nothing for longer than the store timeout times the release attempts: the
    queued reserve runs when it wakes up, and a release must still follow it (the slot would
    otherwise stay taken for the reservation TTL, 15 minutes by default)."""
    clock = FakeClock()
    quota = service(slow_redis, clock, timeout=0.2)
    try:
        await warm(quota)
        sleeper = await stall(slow_redis, 1.5)
        grant = await quota.reserve("acme", "ann", "free", CALL)
        assert grant.degraded
        await sleeper
        free = {"one-at-a-time": 0, "tokens": 0, "dollars": 0}
        for _ in range(100):  # the releases back off on the injected clock, moved here
            if await held(quota) == free:
                break
            clock.advance(1.0)
            await asyncio.sleep(0.02)
        assert await held(quota) == free
        again = await quota.reserve("acme", "ann", "free", CALL)
        assert not again.degraded
        await quota.settle(again, Amounts())
    finally:
        await quota.aclose()


async def test_a_settle_that_failed_is_retried_and_charged_once(tmp_path: Path) -> None:
    """Redis (with persistence) restarts while a call runs: the call's settle finds it down. The
    reservation must not hold the slot for the TTL, and the call's usage is charged once Redis is
    back (not lost, not twice)."""
    redis = OwnRedis(tmp_path)
    redis.start()
    clock = FakeClock(start=time.time() - FakeClock().wall() + FakeClock().now)  # wall time is Redis's
    quota = service(redis.url, clock, timeout=0.5, store_timeout_seconds=0.5)
    try:
        grant = await quota.reserve("acme", "ann", "free", CALL)
        redis.stop()
        await quota.settle(grant, Amounts(requests=1, tokens=300, usd=1_000))  # refused: Redis is down
        redis.start()
        free = {"one-at-a-time": 0, "tokens": 0, "dollars": 0}
        for _ in range(100):  # the retries back off on the injected clock, moved here
            if await held(quota) == free:
                break
            clock.advance(1.0)
            await asyncio.sleep(0.02)
        assert await held(quota) == free
        used = {s.limit.name: s.used for s in await quota.snapshot("acme", "ann", "free")}
        assert (used["tokens"], used["dollars"]) == (300, 0.001)
    finally:
        await quota.aclose()
        redis.stop()


class LateExtensions(RedisQuotaStore):
    """A stalled Redis, scripted: an extension times out at the caller and reaches Redis only after
    whatever the caller sends next on another connection (here: the call's settle)."""

    hold_back = False
    late: list[tuple[Any, ...]]

    async def reserve(self, tag: str, rid: str, charges: Any, **kw: Any) -> Any:
        if self.hold_back:
            self.late.append((tag, rid, charges, kw))
            raise QuotaStoreError("quota store Redis: timeout", kind="timeout")
        return await super().reserve(tag, rid, charges, **kw)

    async def arrive(self) -> None:
        for tag, rid, charges, kw in self.late:
            with contextlib.suppress(QuotaStoreError):  # refused: the reservation was finished
                await super().reserve(tag, rid, charges, **kw)


async def test_an_extension_that_reaches_redis_after_the_settle_holds_nothing(redis_url: str) -> None:
    clock = FakeClock(start=time.time() - FakeClock().wall() + FakeClock().now)  # wall time is Redis's
    store = LateExtensions.from_url(redis_url, clock, prefix=f"late:{time.time_ns()}", timeout=2.0)
    store.late = []
    tiers = {"free": TierConfig(requests_per_minute=1000)}
    quota = QuotaService(
        QuotaPolicy(store="redis", redis_url=redis_url, limits=LIMITS), tiers, store, clock, QuotaSignals()
    )
    try:
        grant = await quota.reserve("acme", "ann", "free", CALL)
        store.hold_back = True
        await quota.extend(grant, Amounts(tokens=200, usd=500))  # fail_open: the stream goes on
        store.hold_back = False
        await quota.settle(grant, Amounts(requests=1, tokens=600, usd=2_400))
        await store.arrive()  # the extension runs now, after the settle
        await quota.releases.idle()
        assert await held(quota) == {"one-at-a-time": 0, "tokens": 0, "dollars": 0}
        used = {s.limit.name: s.used for s in await quota.snapshot("acme", "ann", "free")}
        # what Redis held (500 tokens, $0.002); the 100 tokens past it, granted while the store
        # failed, were served uncounted as fail_open says, never charged later past the limit
        assert (used["tokens"], used["dollars"]) == (500, 0.002)
    finally:
        await quota.aclose()


class QueuedExtensions(LateExtensions):
    """A stalled Redis, scripted: an extension is sent and hangs (its script queued at the server)
    until the caller is cancelled; it reaches Redis only after the call's settle."""

    sent: asyncio.Event

    async def reserve(self, tag: str, rid: str, charges: Any, **kw: Any) -> Any:
        if self.hold_back:
            self.late.append((tag, rid, charges, kw))
            self.sent.set()
            await asyncio.Event().wait()
        return await super().reserve(tag, rid, charges, **kw)


async def test_an_extension_whose_caller_was_cancelled_holds_nothing_when_it_runs_late(
    redis_url: str,
) -> None:
    clock = FakeClock(start=time.time() - FakeClock().wall() + FakeClock().now)  # wall time is Redis's
    store = QueuedExtensions.from_url(redis_url, clock, prefix=f"queued:{time.time_ns()}", timeout=2.0)
    store.late, store.sent = [], asyncio.Event()
    tiers = {"free": TierConfig(requests_per_minute=1000)}
    quota = QuotaService(
        QuotaPolicy(store="redis", redis_url=redis_url, limits=LIMITS), tiers, store, clock, QuotaSignals()
    )
    try:
        grant = await quota.reserve("acme", "ann", "free", CALL)
        store.hold_back = True
        extending = asyncio.ensure_future(quota.extend(grant, Amounts(tokens=200, usd=500)))
        await store.sent.wait()
        extending.cancel()  # the caller went away while its extension was on its way to Redis
        with contextlib.suppress(asyncio.CancelledError):
            await extending
        store.hold_back = False
        await quota.settle(grant, Amounts(requests=1, tokens=450, usd=1_800))
        await store.arrive()  # the extension runs now, after the settle
        await quota.releases.idle()
        assert await held(quota) == {"one-at-a-time": 0, "tokens": 0, "dollars": 0}
        used = {s.limit.name: s.used for s in await quota.snapshot("acme", "ann", "free")}
        assert (used["tokens"], used["dollars"]) == (450, 0.0018)
    finally:
        await quota.aclose()
