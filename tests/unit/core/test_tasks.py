"""cancel_and_wait: the one way background loops are stopped."""

from __future__ import annotations

import asyncio

import pytest

from sidecar.core.tasks import cancel_and_wait


async def test_the_task_is_cancelled_and_its_cancellation_swallowed() -> None:
    task = asyncio.create_task(asyncio.Event().wait())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled()
    await cancel_and_wait(None)


async def test_a_cancellation_of_the_caller_while_it_waits_is_passed_on() -> None:
    release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await release.wait()  # cleanup that takes a while
            raise

    task = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    stopper = asyncio.create_task(cancel_and_wait(task))
    await asyncio.sleep(0)
    stopper.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await stopper


async def test_an_error_the_task_ended_with_is_raised() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="boom"):
        await cancel_and_wait(task)
