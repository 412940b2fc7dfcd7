"""The allocator trimmer: one trim after a large request, one more for requests during it, none for
small ones; arenas capped through mallopt."""

from __future__ import annotations

import asyncio

from sidecar.telemetry.memory import AllocatorTrimmer, glibc, limit_arenas


class FakeLibc:
    def __init__(self) -> None:
        self.trims = 0
        self.options: list[tuple[int, int]] = []

    def malloc_trim(self, pad: int) -> int:
        self.trims += 1
        return 1

    def mallopt(self, option: int, value: int) -> int:
        self.options.append((option, value))
        return 1


async def settle(trimmer: AllocatorTrimmer) -> None:
    if trimmer._pending is not None:
        await trimmer._pending


async def test_a_large_request_is_followed_by_one_trim() -> None:
    libc = FakeLibc()
    trimmer = AllocatorTrimmer(threshold_bytes=1000, delay_seconds=0, libc=libc)
    trimmer.note(999)
    await settle(trimmer)
    assert libc.trims == 0
    trimmer.note(1000)
    await settle(trimmer)
    assert libc.trims == 1


async def test_requests_during_a_pending_trim_cost_one_more_trim_not_one_each() -> None:
    libc = FakeLibc()
    trimmer = AllocatorTrimmer(threshold_bytes=10, delay_seconds=0, libc=libc)
    for _ in range(50):  # a burst: one trim after it
        trimmer.note(100)
    await settle(trimmer)
    assert libc.trims == 1
    trimmer.note(100)
    await asyncio.sleep(0)  # the trim is waiting for its delay
    for _ in range(50):  # more large requests meanwhile: their buffers may outlive that trim
        trimmer.note(100)
    await settle(trimmer)
    assert libc.trims == 3
    await trimmer.aclose()


async def test_disabled_by_a_zero_threshold() -> None:
    libc = FakeLibc()
    trimmer = AllocatorTrimmer(threshold_bytes=0, delay_seconds=0, libc=libc)
    trimmer.note(10**9)
    assert not trimmer.enabled and trimmer._pending is None


def test_arenas_are_capped_through_mallopt() -> None:
    libc = FakeLibc()
    assert limit_arenas(2, libc) and libc.options == [(-8, 2)]
    assert not limit_arenas(0, libc) and len(libc.options) == 1


def test_this_machine_has_glibc() -> None:
    assert glibc() is not None  # Debian: the trimmer is active where the sidecar ships
