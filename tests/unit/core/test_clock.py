"""The clock's timers: SystemClock is asyncio's; FakeClock is virtual time that never sleeps."""

from __future__ import annotations

import asyncio
import time

import pytest

from sidecar.core.clock import Deadline, FakeClock, SystemClock


async def test_fake_sleep_wakes_only_when_time_is_advanced() -> None:
    clock = FakeClock()
    woke: list[float] = []

    async def sleeper() -> None:
        await clock.sleep(5)
        woke.append(clock.monotonic())

    task = asyncio.create_task(sleeper())
    await asyncio.sleep(0)
    clock.advance(4.9)
    await asyncio.sleep(0)
    assert woke == []
    clock.advance(0.2)
    await task
    assert woke == [pytest.approx(1005.1)]  # runs after advance() returned


async def test_fake_timeout_raises_timeout_error_at_virtual_time() -> None:
    clock = FakeClock(auto_advance=True)
    forever: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with clock.timeout(30):
            await forever
    assert clock.monotonic() == pytest.approx(1030.0)
    assert time.monotonic() - started < 1.0


async def test_fake_timeout_that_does_not_fire_leaves_no_timer() -> None:
    clock = FakeClock()
    async with clock.timeout(10):
        await asyncio.sleep(0)
    assert clock.pending() == 0
    async with clock.timeout(None):
        pass


async def test_fake_timeout_keeps_an_outer_cancellation_a_cancellation() -> None:
    clock = FakeClock()

    async def body() -> None:
        async with clock.timeout(10):
            await asyncio.get_running_loop().create_future()

    task = asyncio.create_task(body())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_fake_wait_returns_pending_on_timeout_without_cancelling() -> None:
    clock = FakeClock(auto_advance=True)
    slow = asyncio.ensure_future(clock.sleep(100))
    done, pending = await clock.wait({slow}, within=2)
    assert (done, pending) == (set(), {slow})
    assert not slow.cancelled()
    assert clock.monotonic() == pytest.approx(1002.0)
    done, _ = await clock.wait({slow})
    assert done == {slow} and clock.monotonic() == pytest.approx(1100.0)


async def test_auto_advance_runs_timers_in_order() -> None:
    clock = FakeClock(auto_advance=True)
    order: list[str] = []

    async def after(seconds: float, name: str) -> None:
        await clock.sleep(seconds)
        order.append(name)

    await asyncio.gather(after(3, "c"), after(1, "a"), after(2, "b"))
    assert order == ["a", "b", "c"]
    assert clock.monotonic() == pytest.approx(1003.0)


async def test_system_clock_timers_are_asyncio_timers() -> None:
    clock = SystemClock()
    with pytest.raises(TimeoutError):
        async with clock.timeout(0):
            await clock.sleep(1)
    task = asyncio.ensure_future(clock.sleep(0))
    done, pending = await clock.wait({task}, within=1)
    assert done == {task} and not pending


def test_deadline_bound_and_margin() -> None:
    clock = FakeClock()
    deadline = Deadline.after(2.0, clock)
    assert deadline.bound(5.0) == 2.0
    assert deadline.bound(None) == 2.0
    assert Deadline.after(None, clock).bound(5.0) == 5.0
    clock.advance(1.95)
    assert not deadline.expired()
    assert deadline.expired(margin=0.1)
