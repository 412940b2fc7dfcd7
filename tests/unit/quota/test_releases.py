"""PendingReleases: retried with backoff on the injected clock until the store answers; bounded."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import pytest

from sidecar.quota.releases import PendingReleases
from sidecar.quota.store import BucketState, Charge, QuotaStoreError, Verdict
from sidecar.stores.pending import BATCH, FIRST_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS
from tests.conftest import FakeClock

CHARGES = (Charge("c|user|u", (), 1, 1),)


class FlakyStore:
    """Fails `failures` release attempts, then releases; records the ids released."""

    def __init__(self, failures: int) -> None:
        self.failures, self.attempts, self.released = failures, 0, []

    async def release(self, tag: str, rid: str, charges: Sequence[Charge], *, ttl_ms: int) -> None:
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            raise QuotaStoreError("quota store Redis: timeout", kind="timeout")
        self.released.append(rid)

    async def reserve(self, *a: object, **k: object) -> Verdict:
        raise AssertionError("not used")

    async def settle(self, *a: object, **k: object) -> tuple[BucketState, ...]:
        raise AssertionError("not used")

    async def read(self, *a: object, **k: object) -> tuple[BucketState, ...]:
        raise AssertionError("not used")

    async def renew(self, *a: object, **k: object) -> None:
        raise AssertionError("not used")

    async def aclose(self) -> None:
        pass


async def settle_loop() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def pending(store: FlakyStore, clock: FakeClock, errors: list[str], **kw: int) -> PendingReleases:
    return PendingReleases(store, clock, ttl_ms=60_000, on_error=lambda op, exc: errors.append(op), **kw)


async def test_a_release_is_retried_with_backoff_until_the_store_answers(clock: FakeClock) -> None:
    store, errors = FlakyStore(failures=10), []
    releases = pending(store, clock, errors)
    releases.add("t", "r1", CHARGES)
    backoffs = []
    while len(releases):
        await settle_loop()
        due = clock.next_timer()
        if due is not None:
            backoffs.append(due - clock.now)
            clock.advance(due - clock.now)
    await releases.idle()
    assert store.released == ["r1"] and store.attempts == 11
    assert errors == ["release"]  # reported once, not once per attempt
    assert backoffs[0] == pytest.approx(FIRST_BACKOFF_SECONDS)
    assert max(backoffs) == pytest.approx(MAX_BACKOFF_SECONDS)
    assert all(b <= a * 2 + 1e-9 for a, b in itertools.pairwise(backoffs))


async def test_the_store_answering_another_operation_ends_the_backoff(clock: FakeClock) -> None:
    store, errors = FlakyStore(failures=6), []
    releases = pending(store, clock, errors)
    releases.add("t", "r1", CHARGES)
    await settle_loop()
    while store.attempts < 6:  # backing off further each time
        due = clock.next_timer()
        if due is not None:
            clock.advance(due - clock.now)
        await settle_loop()
    assert len(releases) == 1 and clock.next_timer() is not None
    releases.store_answered()  # a reserve just succeeded: the release goes now, not after its backoff
    await settle_loop()
    assert store.released == ["r1"] and not len(releases)


async def test_a_release_whose_reservation_expired_is_dropped(clock: FakeClock) -> None:
    store, errors = FlakyStore(failures=10**6), []
    releases = pending(store, clock, errors)
    releases.add("t", "r1", CHARGES)
    while len(releases):
        await settle_loop()
        clock.advance(MAX_BACKOFF_SECONDS)
    assert store.released == [] and clock.now - 1000.0 <= 60 + 2 * MAX_BACKOFF_SECONDS


async def test_the_pending_set_is_bounded_oldest_first(clock: FakeClock) -> None:
    store, errors = FlakyStore(failures=10**6), []
    releases = pending(store, clock, errors, max_pending=3)
    for i in range(5):
        releases.add("t", f"r{i}", CHARGES)
    assert len(releases) == 3 and errors.count("release") == 2  # two dropped, reported
    store.failures = 0
    await releases.aclose()
    assert store.released == ["r2", "r3", "r4"]


async def test_closing_with_the_store_down_costs_one_round(clock: FakeClock) -> None:
    store, errors = FlakyStore(failures=10**6), []
    releases = pending(store, clock, errors)
    for i in range(100):
        releases.add("t", f"r{i}", CHARGES)
    await settle_loop()
    attempts = store.attempts
    await releases.aclose()
    assert store.attempts - attempts <= BATCH and len(releases) == 100
