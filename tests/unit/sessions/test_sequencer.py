"""Per-user ordering: FIFO turns, other users unaffected, abandoning and cancelling keep the order."""

from __future__ import annotations

import asyncio

import pytest

from sidecar.core.clock import FakeClock
from sidecar.sessions.sequencer import Abandoned, UserSequencer

A, B = ("t", "a"), ("t", "b")


async def step(
    seq: UserSequencer, owner: tuple[str, str], name: str, log: list[str], gate: asyncio.Event
) -> None:
    async with seq.turn(owner):
        log.append(f"{name}+")
        await gate.wait()
        log.append(f"{name}-")


async def test_turns_of_one_user_run_one_at_a_time_in_arrival_order() -> None:
    seq, log, gate = UserSequencer(FakeClock()), [], asyncio.Event()
    tasks = [asyncio.create_task(step(seq, A, n, log, gate)) for n in "xyz"]
    other = asyncio.create_task(step(seq, B, "b", log, asyncio.Event()))
    await asyncio.sleep(0)
    assert log == ["x+", "b+"]  # another user is not held up
    gate.set()
    await asyncio.gather(*tasks)
    assert log[1:] == ["b+", "x-", "y+", "y-", "z+", "z-"]
    other.cancel()
    await asyncio.gather(other, return_exceptions=True)
    assert len(seq) == 0  # nothing left behind


async def test_abandoned_while_waiting() -> None:
    seq, log, gate = UserSequencer(FakeClock()), [], asyncio.Event()
    first = asyncio.create_task(step(seq, A, "x", log, gate))
    await asyncio.sleep(0)
    abandon: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def waiting() -> None:
        async with seq.turn(A, abandon=abandon):
            log.append("never")

    second = asyncio.create_task(waiting())
    third = asyncio.create_task(step(seq, A, "z", log, gate))
    await asyncio.sleep(0)
    abandon.set_result(None)
    with pytest.raises(Abandoned):
        await second
    assert log == ["x+"]  # the third still waits for the first
    gate.set()
    await asyncio.gather(first, third)
    assert log == ["x+", "x-", "z+", "z-"]


async def test_cancelled_while_waiting_keeps_the_order() -> None:
    seq, log, gate = UserSequencer(FakeClock()), [], asyncio.Event()
    first = asyncio.create_task(step(seq, A, "x", log, gate))
    second = asyncio.create_task(step(seq, A, "y", log, gate))
    third = asyncio.create_task(step(seq, A, "z", log, gate))
    await asyncio.sleep(0)
    second.cancel()
    await asyncio.sleep(0)
    assert log == ["x+"]
    gate.set()
    await asyncio.gather(first, third)
    assert second.cancelled()
    assert log == ["x+", "x-", "z+", "z-"]
    assert len(seq) == 0
