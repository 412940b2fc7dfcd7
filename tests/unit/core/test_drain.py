"""The shutdown drain on virtual time: refuse new calls, wait for running ones, cut the rest."""

from __future__ import annotations

import asyncio

import pytest

from sidecar.core.clock import FakeClock
from sidecar.core.drain import CUT, Drain
from sidecar.core.errors import SidecarDrainingError


async def test_running_calls_finish_within_the_grace_and_new_ones_are_refused() -> None:
    clock = FakeClock(auto_advance=True)
    drain = Drain(clock)
    finished: list[str] = []

    async def call(seconds: float) -> None:
        with drain.call():
            await clock.sleep(seconds)
            finished.append(f"{seconds:g}")

    task = asyncio.create_task(call(3))
    await asyncio.sleep(0)
    drained = asyncio.create_task(drain.drain(10, cut_wait=1))
    await asyncio.sleep(0)
    with pytest.raises(SidecarDrainingError), drain.call():
        pass
    assert await drained == 0  # nothing cut
    await task
    assert finished == ["3"] and clock.monotonic() == pytest.approx(1003)


async def test_calls_still_running_at_the_end_of_the_grace_are_cut_and_know_it() -> None:
    clock = FakeClock(auto_advance=True)
    drain = Drain(clock)
    seen: list[tuple[str, bool]] = []

    async def call() -> None:
        with drain.call():
            try:
                await clock.sleep(60)
            except asyncio.CancelledError as exc:
                seen.append((str(exc.args[0]) if exc.args else "", drain.cut_now()))
                raise

    task = asyncio.create_task(call())
    await asyncio.sleep(0)
    assert await drain.drain(5, cut_wait=1) == 1  # the one call cut
    await asyncio.gather(task, return_exceptions=True)
    assert seen == [(CUT, True)]
    assert clock.monotonic() == pytest.approx(1005)
