"""RetryInfo of a quota refusal is the time until the window resets by the store's clock (Redis time
in production), not by the sidecar's own clock, which may be seconds off: a sidecar ahead of Redis
near a window's end told callers to retry after 1 ms, again and again, until the window really ended."""

from __future__ import annotations

import pytest

from sidecar.config.quota import QuotaPolicy, TierConfig
from sidecar.core.errors import QuotaExceededError
from sidecar.quota.service import Amounts, QuotaService
from sidecar.quota.signals import QuotaSignals
from sidecar.quota.store import QuotaStore
from tests.conftest import FakeClock

LIMITS = [{"name": "one-a-minute", "metric": "requests", "scope": "user", "window": "minute", "limit": 1}]
SKEW = 4.0  # the sidecar's clock is this far ahead of the store's


def until_minute_end(clock: FakeClock) -> float:
    return 60 - clock.wall() % 60


@pytest.mark.parametrize("left", [10.0, 3.0])
async def test_retry_after_counts_to_the_stores_window_end(
    quota_store: QuotaStore, clock: FakeClock, left: float
) -> None:
    clock.advance(until_minute_end(clock) - left)  # the store's clock: `left` seconds of the minute left
    sidecar_clock = FakeClock(start=clock.now + SKEW)
    tiers = {"free": TierConfig(requests_per_minute=1000)}
    quota = QuotaService(QuotaPolicy(limits=LIMITS), tiers, quota_store, sidecar_clock, QuotaSignals())
    await quota.reserve("acme", "ann", "free", Amounts(requests=1))
    with pytest.raises(QuotaExceededError) as refused:
        await quota.reserve("acme", "ann", "free", Amounts(requests=1))
    assert refused.value.retry_after == pytest.approx(left, abs=0.01)
