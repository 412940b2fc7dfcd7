"""A call that runs longer than `reservation_ttl_seconds` keeps its reservation: the service renews
the reservations of the calls still running every third of the TTL, on the injected clock."""

from __future__ import annotations

import asyncio

import pytest

from sidecar.config.quota import LimitConfig, QuotaPolicy, TierConfig
from sidecar.core.errors import QuotaExceededError
from sidecar.quota.service import Amounts, QuotaService
from sidecar.quota.signals import QuotaSignals
from sidecar.quota.store import MemoryQuotaStore
from tests.conftest import FakeClock

TTL_SECONDS = 3.0
LIMITS = [
    LimitConfig(name="inflight", metric="concurrency", scope="user", limit=1),
    LimitConfig(name="tokens", metric="tokens", scope="tenant", window="day", limit=100),
]
CALL = Amounts(requests=1, tokens=60, concurrency=1)


def service(clock: FakeClock) -> QuotaService:
    policy = QuotaPolicy(reservation_ttl_seconds=TTL_SECONDS, limits=LIMITS)
    return QuotaService(
        policy, {"free": TierConfig(requests_per_minute=1000)}, MemoryQuotaStore(clock), clock, QuotaSignals()
    )


async def run_for(clock: FakeClock, seconds: int) -> None:
    """Let `seconds` pass on the clock, one at a time, the background tasks running in between."""
    for _ in range(seconds):
        clock.advance(1)
        for _ in range(5):
            await asyncio.sleep(0)


async def test_a_call_longer_than_the_reservation_ttl_keeps_its_hold(clock: FakeClock) -> None:
    quota = service(clock)
    grant = await quota.reserve("t", "u", "free", CALL)
    await run_for(clock, 10)  # the call runs three TTLs
    with pytest.raises(QuotaExceededError) as refused:
        await quota.reserve("t", "u", "free", CALL)
    assert refused.value.metadata["limit"] == "inflight"
    states = {s.limit.name: s for s in await quota.snapshot("t", "u", "free")}
    assert (states["inflight"].reserved, states["tokens"].reserved) == (1, 60)
    await quota.settle(grant, Amounts(requests=1, tokens=30))
    await quota.settle(await quota.reserve("t", "u", "free", CALL), Amounts(requests=1, tokens=30))
    await quota.aclose()


async def test_a_settled_call_is_no_longer_renewed(clock: FakeClock) -> None:
    quota = service(clock)
    grant = await quota.reserve("t", "u", "free", CALL)
    await quota.settle(grant, Amounts(requests=1, tokens=10))
    assert len(quota.live) == 0
    await run_for(clock, 10)
    assert clock.pending() == 0  # no renewal loop left waiting
    await quota.aclose()
