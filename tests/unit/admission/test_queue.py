"""The admission queue on virtual time: capacity, priority order, shedding, deadlines, cancellation."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest

from sidecar.admission.queue import AdmissionObserver, AdmissionQueue, OverloadedError
from sidecar.core.clock import Deadline, FakeClock
from sidecar.core.errors import Code, DeadlineExceededError
from sidecar.core.priority import Priority

P = Priority


class Seen:
    def __init__(self) -> None:
        self.shed: list[Priority] = []
        self.waited: list[tuple[Priority, float]] = []
        self.depth: dict[Priority, int] = {}
        self.running: list[int] = []

    def observer(self) -> AdmissionObserver:
        return AdmissionObserver(
            on_depth=lambda p, d: self.depth.__setitem__(p, d),
            on_waited=lambda p, s: self.waited.append((p, s)),
            on_shed=self.shed.append,
            on_in_flight=self.running.append,
        )


def make(
    clock: FakeClock, capacity: int = 1, queue_size: int = 2, seen: Seen | None = None
) -> AdmissionQueue:
    return AdmissionQueue(
        capacity=capacity,
        queue_size=queue_size,
        retry_after=2.0,
        clock=clock,
        observer=(seen or Seen()).observer(),
    )


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def waiter(
    q: AdmissionQueue, p: Priority, clock: FakeClock, order: list[str], name: str, within: float = 60
) -> asyncio.Task[None]:
    async def run() -> None:
        await q.acquire(p, Deadline.after(within, clock))
        order.append(name)

    return asyncio.get_running_loop().create_task(run())


async def test_runs_at_once_below_capacity_and_frees_the_slot() -> None:
    clock, seen = FakeClock(), Seen()
    q = make(clock, capacity=2, seen=seen)
    await q.acquire(P.LOW, Deadline.after(1, clock))
    await q.acquire(P.LOW, Deadline.after(1, clock))
    assert q.running == 2
    q.release()
    q.release()
    assert q.running == 0
    assert seen.running == [1, 2, 1, 0]


async def test_waiters_are_served_by_priority_then_arrival() -> None:
    clock, order = FakeClock(), []
    q = make(clock, capacity=1, queue_size=10)
    await q.acquire(P.NORMAL, Deadline.after(60, clock))
    tasks = [
        waiter(q, P.LOW, clock, order, "low"),
        waiter(q, P.HIGH, clock, order, "high1"),
        waiter(q, P.CRITICAL, clock, order, "critical"),
        waiter(q, P.HIGH, clock, order, "high2"),
    ]
    await settle()
    assert q.depth() == 4 and order == []
    for _ in range(4):
        q.release()  # the running call ends; the slot goes to the first waiter
        await settle()
    assert order == ["critical", "high1", "high2", "low"]
    assert q.running == 1  # the last one still holds its slot
    await asyncio.gather(*tasks)


async def test_full_queue_evicts_the_lowest_for_a_higher_newcomer() -> None:
    clock, seen, order = FakeClock(), Seen(), []
    q = make(clock, capacity=1, queue_size=2, seen=seen)
    await q.acquire(P.NORMAL, Deadline.after(60, clock))
    low1 = waiter(q, P.LOW, clock, order, "low1")
    low2 = waiter(q, P.LOW, clock, order, "low2")
    await settle()
    crit = waiter(q, P.CRITICAL, clock, order, "critical")
    await settle()
    with pytest.raises(OverloadedError) as shed:
        await low2  # the latest of the lowest goes first
    assert shed.value.code is Code.UNAVAILABLE and shed.value.reason == "OVERLOADED"
    assert shed.value.retry_after == 2.0
    assert seen.shed == [P.LOW]
    assert q.running == 1  # the running call was never touched
    q.release()
    await settle()
    assert order == ["critical"]
    q.release()
    await settle()
    assert order == ["critical", "low1"]
    await asyncio.gather(low1, crit)


async def test_full_queue_sheds_a_newcomer_no_higher_than_everyone_queued() -> None:
    clock, seen = FakeClock(), Seen()
    q = make(clock, capacity=1, queue_size=1, seen=seen)
    await q.acquire(P.NORMAL, Deadline.after(60, clock))
    queued = waiter(q, P.HIGH, clock, [], "high")
    await settle()
    with pytest.raises(OverloadedError):
        await q.acquire(P.HIGH, Deadline.after(60, clock))
    with pytest.raises(OverloadedError):
        await q.acquire(P.LOW, Deadline.after(60, clock))
    assert seen.shed == [P.HIGH, P.LOW]
    q.release()
    await queued


async def test_no_queue_sheds_at_once_when_full() -> None:
    clock = FakeClock()
    q = make(clock, capacity=1, queue_size=0)
    await q.acquire(P.LOW, Deadline.after(60, clock))
    with pytest.raises(OverloadedError):
        await q.acquire(P.CRITICAL, Deadline.after(60, clock))  # never preempts a running call
    assert q.running == 1


async def test_a_waiter_whose_deadline_passes_gets_deadline_exceeded_and_leaves() -> None:
    clock, seen = FakeClock(), Seen()
    q = make(clock, capacity=1, queue_size=4, seen=seen)
    await q.acquire(P.NORMAL, Deadline.after(60, clock))
    task = asyncio.get_running_loop().create_task(q.acquire(P.HIGH, Deadline.after(3, clock)))
    await settle()
    assert q.depth(P.HIGH) == 1
    clock.advance(2.9)
    await settle()
    assert not task.done()
    clock.advance(0.2)
    with pytest.raises(DeadlineExceededError):
        await task
    assert q.depth() == 0 and seen.depth[P.HIGH] == 0
    assert seen.waited == [(P.HIGH, pytest.approx(3.1))]  # woken when the clock moved past it
    q.release()
    assert q.running == 0  # nobody is left to hand the slot to


async def test_max_wait_sheds_with_overloaded_before_the_deadline() -> None:
    clock = FakeClock()
    q = AdmissionQueue(capacity=1, queue_size=4, retry_after=1.0, clock=clock, max_wait=0.5)
    await q.acquire(P.NORMAL, Deadline.after(60, clock))
    task = asyncio.get_running_loop().create_task(q.acquire(P.LOW, Deadline.after(30, clock)))
    await settle()
    clock.advance(0.5)
    with pytest.raises(OverloadedError):
        await task


async def test_a_call_refused_after_max_wait_is_counted_as_shed() -> None:
    # it is refused UNAVAILABLE / OVERLOADED like a call displaced from a full queue, and a
    # deployment's queue counts it as shed (sidecar/admission/deployments.py): the sidecar-wide
    # sidecar_admission_shed_total must say so too, or OVERLOADED answers have no shed behind them
    clock, seen = FakeClock(), Seen()
    q = AdmissionQueue(
        capacity=1, queue_size=4, retry_after=1.0, clock=clock, max_wait=0.5, observer=seen.observer()
    )
    await q.acquire(P.NORMAL, Deadline.after(60, clock))
    task = asyncio.get_running_loop().create_task(q.acquire(P.LOW, Deadline.after(30, clock)))
    await settle()
    clock.advance(0.5)
    with pytest.raises(OverloadedError):
        await task
    assert seen.shed == [P.LOW]
    assert q.depth() == 0 and q.running == 1


async def test_a_call_past_its_deadline_in_the_queue_is_not_counted_as_shed() -> None:
    clock, seen = FakeClock(), Seen()
    q = AdmissionQueue(
        capacity=1, queue_size=4, retry_after=1.0, clock=clock, max_wait=5.0, observer=seen.observer()
    )
    await q.acquire(P.NORMAL, Deadline.after(60, clock))
    task = asyncio.get_running_loop().create_task(q.acquire(P.LOW, Deadline.after(1, clock)))
    await settle()
    clock.advance(1)
    with pytest.raises(DeadlineExceededError):
        await task
    assert seen.shed == []


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    clock, order = FakeClock(), []
    q = make(clock, capacity=1, queue_size=4)
    await q.acquire(P.NORMAL, Deadline.after(60, clock))
    gone = waiter(q, P.CRITICAL, clock, order, "gone")
    stays = waiter(q, P.LOW, clock, order, "stays")
    await settle()
    gone.cancel()
    await settle()
    assert q.depth() == 1
    q.release()
    await settle()
    assert order == ["stays"]
    await stays
    q.release()
    assert q.running == 0


async def test_a_slot_handed_to_a_waiter_cancelled_at_that_moment_is_given_back() -> None:
    clock = FakeClock()
    q = make(clock, capacity=1, queue_size=4)
    await q.acquire(P.NORMAL, Deadline.after(60, clock))
    task = asyncio.get_running_loop().create_task(q.acquire(P.LOW, Deadline.after(60, clock)))
    await settle()
    q.release()  # granted, but the waiter has not run yet
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert q.running == 0 and q.depth() == 0


async def test_a_long_queue_costs_the_event_loop_a_bounded_time_per_call() -> None:
    """queue_size may be up to 1,000,000. Every enqueue, hand-over and departure counted the depth by
    walking the whole queue (and a departure searched it by comparing waiters): 16,000 queued calls
    held the event loop for 10 s, 30,000 for over a minute, the sidecar frozen under the burst.
    Here 30,000 arrive, a third leave, the rest are served: about a second, bounded at 6."""
    clock, seen = FakeClock(), Seen()
    n = 30_000
    q = make(clock, capacity=1, queue_size=n, seen=seen)
    await q.acquire(P.NORMAL, Deadline.after(600, clock))
    gc.disable()  # the collector's passes over 30,000 tasks are not the queue's cost
    try:
        started = time.process_time()
        tasks = [asyncio.ensure_future(q.acquire(P(i % 5), Deadline.after(600, clock))) for i in range(n)]
        await asyncio.sleep(0)
        assert q.depth() == n and q.depth(P.CRITICAL) == n // 5
        for task in tasks[::3]:
            task.cancel()
        await asyncio.sleep(0)
        assert q.depth() == n - len(tasks[::3])
        for _ in range(q.depth()):
            q.release()
        await asyncio.gather(*tasks, return_exceptions=True)
        spent = time.process_time() - started
    finally:
        gc.enable()
    assert spent < 6.0
    assert q.depth() == 0 and q.running == 1 and seen.depth[P.LOW] == 0
