"""Bounds on envelopes that do not open, on FakeClock: remembered digests, the per-tenant window, the
unwraps in flight counted until they end, and memory bounded whatever a caller sends."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from sidecar.core.clock import FakeClock
from sidecar.keys.envelope import KeyRecordCorruptError
from sidecar.keys.failures import EnvelopeFailures, FailurePolicy, KeyFailureLimitError


class Refusals(Counter[str]):
    def key_envelope_refused(self, reason: str) -> None:
        self[reason] += 1


def failures(clock: FakeClock, **policy: float) -> tuple[EnvelopeFailures, Refusals]:
    refusals = Refusals()
    limits = {"max_per_tenant": 3, "window_seconds": 60.0, "remember_seconds": 600.0, **policy}
    return EnvelopeFailures(FailurePolicy(**limits), clock, refusals), refusals  # type: ignore[arg-type]


async def fail_inline(f: EnvelopeFailures, tenant: str, digest: str) -> None:
    async with f.inline_unwrap(tenant):
        f.failed(digest, tenant, damaged=True)


async def test_a_damaged_envelope_is_refused_at_once_until_it_is_forgotten() -> None:
    clock = FakeClock()
    f, refusals = failures(clock)
    f.check_known("d1")
    f.failed("d1", None, damaged=True)
    with pytest.raises(KeyRecordCorruptError):
        f.check_known("d1")
    f.check_known("d2")
    clock.advance(600)
    f.check_known("d1")  # forgotten: it may be asked again
    assert refusals == {"known_bad": 1}


async def test_a_refusal_that_may_pass_is_counted_not_remembered() -> None:
    f, _ = failures(FakeClock())
    for _ in range(3):
        async with f.inline_unwrap("evil"):
            f.failed("same", "evil", damaged=False)  # e.g. AccessDenied: the same envelope may open later
        f.check_known("same")
    with pytest.raises(KeyFailureLimitError):
        async with f.inline_unwrap("evil"):
            pass


async def test_past_the_limit_a_tenants_inline_envelopes_are_refused_until_the_oldest_leaves_the_window() -> (
    None
):
    clock = FakeClock()
    f, refusals = failures(clock)
    for n in range(3):
        await fail_inline(f, "evil", f"d{n}")
        clock.advance(10)
    with pytest.raises(KeyFailureLimitError) as info:
        async with f.inline_unwrap("evil"):
            pytest.fail("no unwrap past the limit")
    err = info.value
    assert err.code.value == "RESOURCE_EXHAUSTED" and err.reason == "KEY_FAILURE_LIMIT_REACHED"
    assert err.retry_after == pytest.approx(30.0)  # the first failed at 0 s, now is 30 s
    assert err.metadata["maxFailures"] == "3" and err.metadata["windowSeconds"] == "60"
    async with f.inline_unwrap("acme"):  # another tenant: not affected
        pass
    clock.advance(30)
    async with f.inline_unwrap("evil"):  # the oldest failure left the window
        pass
    assert refusals == {"tenant_limit": 1}


async def test_unwraps_in_flight_count_until_they_end_so_a_burst_waits_then_is_refused() -> None:
    f, _ = failures(FakeClock())
    release = asyncio.Event()
    entered: list[int] = []

    async def forged(n: int) -> str:
        try:
            async with f.inline_unwrap("evil"):
                entered.append(n)
                await release.wait()
                f.failed(f"d{n}", "evil", damaged=True)
        except KeyFailureLimitError:
            return "refused"
        return "failed"

    burst = [asyncio.create_task(forged(n)) for n in range(10)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(entered) == 3  # the others wait for one of these to end
    release.set()
    assert sorted(await asyncio.gather(*burst)) == ["failed"] * 3 + ["refused"] * 7


async def test_an_honest_burst_passes_in_turn() -> None:
    f, _ = failures(FakeClock())
    running = 0
    most = 0

    async def honest() -> None:
        nonlocal running, most
        async with f.inline_unwrap("acme"):
            running += 1
            most = max(most, running)
            await asyncio.sleep(0)
            running -= 1

    await asyncio.gather(*(honest() for _ in range(20)))  # none refused, at most 3 at once
    assert most == 3


async def test_memory_is_bounded_whatever_is_sent() -> None:
    clock = FakeClock()
    f = EnvelopeFailures(FailurePolicy(max_per_tenant=2, max_remembered=5, max_tenants=4), clock)
    for n in range(100):
        async with f.inline_unwrap(f"t{n}"):
            f.failed(f"d{n}", f"t{n}", damaged=True)
    assert len(f._bad) == 5 and len(f._tenants) == 4
    with pytest.raises(KeyRecordCorruptError):
        f.check_known("d99")
    f.check_known("d0")  # the least recent went first
