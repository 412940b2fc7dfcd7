"""The stream write watchdog (api/decode.py Writer): one timer per stream bounds each write that gRPC
flow control holds, and never the time the pipeline takes between writes."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from sidecar.api.decode import Writer
from sidecar.core.clock import FakeClock
from sidecar.core.errors import CallerNotReadingError


class Context:
    """A servicer context whose write waits until the test lets it through."""

    def __init__(self) -> None:
        self.gate: asyncio.Future[None] | None = None
        self.written: list[Any] = []

    async def write(self, response: Any) -> None:
        if self.gate is not None:
            await self.gate
        self.written.append(response)


async def stream(writer: Writer, context: Context, clock: FakeClock, gaps: list[float]) -> None:
    watch = writer.watch()
    try:
        for i, gap in enumerate(gaps):
            await clock.sleep(gap)  # the pipeline making the next response
            await writer(context, i, watch)  # type: ignore[arg-type]
    finally:
        if watch is not None:
            watch.close()


async def test_slow_responses_between_fast_writes_never_trip_it() -> None:
    clock = FakeClock(auto_advance=True)
    context = Context()
    writer = Writer(clock, 30.0, logging.getLogger("test"))
    await stream(writer, context, clock, [20.0, 40.0, 100.0])  # 160 s of stream, every write at once
    assert context.written == [0, 1, 2]
    assert clock.pending() == 0  # the watchdog closed with its stream


async def test_a_write_held_past_the_bound_ends_the_stream_as_the_callers_doing() -> None:
    clock = FakeClock()
    context = Context()
    writer = Writer(clock, 30.0, logging.getLogger("test"))
    context.gate = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(stream(writer, context, clock, [0.0, 25.0]))
    for _ in range(5):
        await asyncio.sleep(0)
    clock.advance(29.0)  # the first write has waited 29 s: not yet
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(1.0)
    with pytest.raises(CallerNotReadingError):
        await task
    assert context.written == []
    assert task.cancelling() == 0  # the watchdog's own cancellation was taken back


async def test_a_write_let_through_in_time_resets_the_bound() -> None:
    clock = FakeClock()
    context = Context()
    writer = Writer(clock, 30.0, logging.getLogger("test"))
    context.gate = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(stream(writer, context, clock, [0.0, 0.0]))
    for _ in range(5):
        await asyncio.sleep(0)
    clock.advance(29.0)
    context.gate.set_result(None)  # the caller read: both writes go through
    await task
    assert context.written == [0, 1]
    assert clock.pending() == 0


async def test_the_callers_own_cancellation_stays_a_cancellation() -> None:
    clock = FakeClock()
    context = Context()
    writer = Writer(clock, 30.0, logging.getLogger("test"))
    context.gate = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(stream(writer, context, clock, [0.0]))
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()  # gRPC cancels the handler when the caller goes
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.pending() == 0


async def test_without_a_bound_there_is_no_timer() -> None:
    clock = FakeClock()
    writer = Writer(clock, None, logging.getLogger("test"))
    assert writer.watch() is None
    context = Context()
    await writer(context, "x", None)  # type: ignore[arg-type]
    assert context.written == ["x"] and clock.pending() == 0
