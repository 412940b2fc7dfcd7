"""One suite, two stores: the in-memory store and RedisQuotaStore on a real redis-server."""

from __future__ import annotations

import asyncio
import zoneinfo

from sidecar.quota.redis_store import RedisQuotaStore
from sidecar.quota.store import Charge, QuotaStore
from sidecar.quota.windows import window_edges
from tests.conftest import FakeClock

UTC = zoneinfo.ZoneInfo("UTC")
LEVELS = (80, 90, 100)
TTL = 60_000


def minute(clock: FakeClock) -> tuple[int, ...]:
    return window_edges("minute", clock.wall(), UTC)


def fixed(start: int, end: int) -> tuple[int, ...]:
    return (start, end)


async def test_reserve_is_all_or_nothing(quota_store: QuotaStore, clock: FakeClock) -> None:
    edges = minute(clock)
    roomy, tight = Charge("a|user|u", edges, 10, 3), Charge("b|user|u", edges, 4, 3)
    first = await quota_store.reserve("t", "r1", [roomy, tight], ttl_ms=TTL, levels=LEVELS)
    assert first.admitted and [b.reserved for b in first.buckets] == [3, 3]
    second = await quota_store.reserve("t", "r2", [roomy, tight], ttl_ms=TTL, levels=LEVELS)
    assert not second.admitted and second.refused == 1
    after = await quota_store.read("t", [roomy, tight])
    assert [(b.used, b.reserved) for b in after] == [(0, 3), (0, 3)]  # the roomy bucket took nothing


async def test_settle_charges_real_usage_and_extension_adds(
    quota_store: QuotaStore, clock: FakeClock
) -> None:
    edges = minute(clock)
    charge = Charge("tok|user|u", edges, 100, 40)
    v = await quota_store.reserve("t", "r1", [charge], ttl_ms=TTL, levels=())
    window = fixed(v.buckets[0].start, v.buckets[0].end)
    more = await quota_store.reserve("t", "r1", [Charge(charge.key, window, 100, 30)], ttl_ms=TTL, levels=())
    assert more.admitted and more.buckets[0].reserved == 70
    refused = await quota_store.reserve(
        "t", "r1", [Charge(charge.key, window, 100, 31)], ttl_ms=TTL, levels=()
    )
    assert not refused.admitted
    settled = await quota_store.settle("t", "r1", [Charge(charge.key, window, 100, 55)], levels=())
    assert (settled[0].used, settled[0].reserved) == (55, 0)


async def test_concurrent_reserves_never_overshoot(quota_store: QuotaStore, clock: FakeClock) -> None:
    charge = Charge("rpm|user|u", minute(clock), 25, 1)
    verdicts = await asyncio.gather(
        *(quota_store.reserve("t", f"r{i}", [charge], ttl_ms=TTL, levels=()) for i in range(60))
    )
    assert sum(v.admitted for v in verdicts) == 25


async def test_shadow_bucket_reports_but_never_refuses(quota_store: QuotaStore, clock: FakeClock) -> None:
    shadow = Charge("s|tenant|t", minute(clock), 1, 1, enforce=False)
    await quota_store.reserve("t", "r1", [shadow], ttl_ms=TTL, levels=())
    v = await quota_store.reserve("t", "r2", [shadow], ttl_ms=TTL, levels=())
    assert v.admitted and v.buckets[0].over and v.buckets[0].reserved == 2


async def test_expired_reservations_stop_counting(quota_store: QuotaStore, clock: FakeClock) -> None:
    charge = Charge("c|user|u", (), 1, 1)  # a concurrency bucket: no window
    assert (await quota_store.reserve("t", "r1", [charge], ttl_ms=5_000, levels=())).admitted
    assert not (await quota_store.reserve("t", "r2", [charge], ttl_ms=5_000, levels=())).admitted
    clock.advance(6)  # r1's holder died without settling
    assert (await quota_store.reserve("t", "r3", [charge], ttl_ms=5_000, levels=())).admitted
    await quota_store.settle("t", "r3", [Charge(charge.key, (), 1, 0)], levels=())
    assert (await quota_store.read("t", [charge]))[0].reserved == 0


async def test_window_rollover_starts_a_fresh_bucket(quota_store: QuotaStore, clock: FakeClock) -> None:
    clock.advance(60 - clock.wall() % 60 - 1)  # one second before a minute ends
    charge = Charge("rpm|user|u", minute(clock), 1, 1)
    first = await quota_store.reserve("t", "r1", [charge], ttl_ms=TTL, levels=())
    assert first.admitted
    assert not (await quota_store.reserve("t", "r2", [charge], ttl_ms=TTL, levels=())).admitted
    clock.advance(1)  # the same edges, computed before the boundary: the store picks the next window
    late = await quota_store.reserve("t", "r3", [charge], ttl_ms=TTL, levels=())
    assert late.admitted and late.buckets[0].start == first.buckets[0].end


async def test_near_limit_levels_fire_once_per_window(quota_store: QuotaStore, clock: FakeClock) -> None:
    edges = minute(clock)
    fired = []
    for i in range(10):
        v = await quota_store.reserve(
            "t", f"r{i}", [Charge("n|user|u", edges, 10, 1)], ttl_ms=TTL, levels=LEVELS
        )
        fired.append(v.buckets[0].level)
        window = fixed(v.buckets[0].start, v.buckets[0].end)
        await quota_store.settle("t", f"r{i}", [Charge("n|user|u", window, 10, 1)], levels=LEVELS)
    assert fired == [0, 0, 0, 0, 0, 0, 0, 80, 90, 100]
    clock.advance(60)
    v = await quota_store.reserve(
        "t", "x", [Charge("n|user|u", minute(clock), 10, 9)], ttl_ms=TTL, levels=LEVELS
    )
    assert v.buckets[0].level == 90  # a new window reports again (the highest level reached)


async def test_tenants_and_names_do_not_collide(quota_store: QuotaStore, clock: FakeClock) -> None:
    edges = minute(clock)
    await quota_store.reserve("a:b", "r1", [Charge("x|user|c", edges, 1, 1)], ttl_ms=TTL, levels=())
    other = await quota_store.reserve("a", "r2", [Charge("x|user|b%3Ac", edges, 1, 1)], ttl_ms=TTL, levels=())
    assert other.admitted


async def test_running_reserved_total_survives_expiry_and_late_settles(
    quota_store: QuotaStore, clock: FakeClock
) -> None:
    charge = Charge("c|tenant|t", (), 100, 10)
    await quota_store.reserve("t", "r1", [charge], ttl_ms=5_000, levels=())
    clock.advance(3)
    await quota_store.reserve("t", "r2", [Charge(charge.key, (), 100, 20)], ttl_ms=5_000, levels=())
    await quota_store.reserve("t", "r2", [Charge(charge.key, (), 100, 5)], ttl_ms=5_000, levels=())  # extend
    assert (await quota_store.read("t", [charge]))[0].reserved == 35
    clock.advance(3)  # r1 expired, r2 (extended at 3 s) lives on
    assert (await quota_store.read("t", [charge]))[0].reserved == 25
    await quota_store.settle("t", "r1", [Charge(charge.key, (), 100, 0)], levels=())  # too late: a no-op
    assert (await quota_store.read("t", [charge]))[0].reserved == 25
    v = await quota_store.reserve("t", "r3", [Charge(charge.key, (), 100, 75)], ttl_ms=5_000, levels=())
    assert v.admitted and v.buckets[0].reserved == 100
    await quota_store.settle("t", "r2", [Charge(charge.key, (), 100, 0)], levels=())
    assert (await quota_store.read("t", [charge]))[0].reserved == 75


async def test_every_redis_key_has_a_ttl_and_a_tenant_hash_tag(redis_url: str, clock: FakeClock) -> None:
    from redis.asyncio import Redis

    from sidecar.quota.redis_store import RedisQuotaStore

    prefix = "ttl-test"
    store = RedisQuotaStore.from_url(redis_url, clock, prefix=prefix, timeout=2.0, server_time=False)
    client = Redis.from_url(redis_url)
    try:
        day = window_edges("day", clock.wall(), UTC)
        charges = [
            Charge("a|user|u", minute(clock), 9, 1),
            Charge("b|tenant|t", day, 9, 2),
            Charge("c|user|u", (), 9, 1),
        ]
        v = await store.reserve("acme:1", "r1", charges, ttl_ms=30_000, levels=LEVELS)
        fixed_charges = [
            Charge(c.key, (b.start, b.end) if b.end else (), 9, 1)
            for c, b in zip(charges, v.buckets, strict=True)
        ]
        await store.settle("acme:1", "r1", fixed_charges, levels=LEVELS)
        await store.reserve("acme:1", "r2", charges, ttl_ms=30_000, levels=LEVELS)
        keys = [k.decode() async for k in client.scan_iter(match=f"{prefix}:*")]
        assert len(keys) == 3
        assert all(k.startswith(f"{prefix}:{{acme%3A1}}:") for k in keys)  # one Cluster slot per tenant
        ttls = {k.split("}:", 1)[1][:1]: await client.pttl(k) for k in keys}  # by limit: a, b, c
        assert all(ttl > 0 for ttl in ttls.values()), ttls
        assert ttls["c"] <= 30_000  # a concurrency bucket lives as long as its latest reservation
    finally:
        await client.delete(*[k async for k in client.scan_iter(match=f"{prefix}:*")])
        await client.aclose()
        await store.aclose()


async def test_a_release_charges_what_is_still_held_once(quota_store: QuotaStore, clock: FakeClock) -> None:
    """A settle retried as a release: it charges where the reservation is still held, once; a late
    copy of it, or (Redis) the original settle reaching the store after it, charges nothing."""
    edges = minute(clock)
    reserved, used = Charge("tok|user|u", edges, 100, 40), Charge("tok|user|u", edges, 100, 25)
    await quota_store.reserve("t", "r1", [reserved], ttl_ms=TTL, levels=LEVELS)
    await quota_store.release("t", "r1", [used], ttl_ms=TTL)
    await quota_store.release("t", "r1", [used], ttl_ms=TTL)
    if isinstance(quota_store, RedisQuotaStore):  # in one process nothing arrives late
        await quota_store.settle("t", "r1", [used], levels=LEVELS)
    assert [(b.used, b.reserved) for b in await quota_store.read("t", [reserved])] == [(25, 0)]
    await quota_store.release("t", "gone", [used], ttl_ms=TTL)  # nothing held: nothing charged
    assert [(b.used, b.reserved) for b in await quota_store.read("t", [reserved])] == [(25, 0)]


async def test_a_release_charges_no_more_than_was_held(quota_store: QuotaStore, clock: FakeClock) -> None:
    """A call that went on past its reservation while the store failed (fail_open) is charged what
    the store held: the rest was served uncounted, and the bucket never ends over its limit."""
    edges = minute(clock)
    held, used = Charge("tok|user|u", edges, 100, 90), Charge("tok|user|u", edges, 100, 130)
    await quota_store.reserve("t", "r1", [held], ttl_ms=TTL, levels=LEVELS)
    await quota_store.release("t", "r1", [used], ttl_ms=TTL)
    assert [(b.used, b.reserved) for b in await quota_store.read("t", [held])] == [(90, 0)]


async def test_a_renewed_reservation_outlives_its_first_ttl(
    quota_store: QuotaStore, clock: FakeClock
) -> None:
    """A call still running renews its reservation: it keeps counting past the TTL it was made with,
    and stops counting a TTL after the last renewal (its sidecar died)."""
    slot, day = Charge("c|user|u", (), 1, 1), Charge("tok|tenant|t", minute(clock), 100, 60)
    window = (await quota_store.reserve("t", "r1", [slot, day], ttl_ms=5_000, levels=())).buckets[1]
    held = [slot, Charge(day.key, (window.start, window.end), 100, 0)]
    for _ in range(3):  # 12 s: more than two TTLs since the reserve
        clock.advance(4)
        await quota_store.renew("t", "r1", held, ttl_ms=5_000)
    assert [b.reserved for b in await quota_store.read("t", held)] == [1, 60]
    assert not (await quota_store.reserve("t", "r2", [slot], ttl_ms=5_000, levels=())).admitted
    clock.advance(6)  # no renewal for more than a TTL
    assert [b.reserved for b in await quota_store.read("t", held)] == [0, 0]


async def test_a_renewal_never_brings_back_a_finished_reservation(
    quota_store: QuotaStore, clock: FakeClock
) -> None:
    slot = Charge("c|user|u", (), 1, 1)
    await quota_store.reserve("t", "settled", [slot], ttl_ms=5_000, levels=())
    await quota_store.settle("t", "settled", [Charge(slot.key, (), 1, 0)], levels=())
    await quota_store.reserve("t", "released", [slot], ttl_ms=5_000, levels=())
    await quota_store.release("t", "released", [Charge(slot.key, (), 1, 0)], ttl_ms=5_000)
    await quota_store.reserve("t", "expired", [slot], ttl_ms=5_000, levels=())
    clock.advance(6)
    for rid in ("settled", "released", "expired", "never"):
        await quota_store.renew("t", rid, [slot], ttl_ms=5_000)
    assert (await quota_store.read("t", [slot]))[0].reserved == 0
