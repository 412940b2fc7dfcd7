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
        self.tenants: dict[Priority, int] = {}

    def observer(self) -> AdmissionObserver:
        return AdmissionObserver(
            on_depth=lambda p, d: self.depth.__setitem__(p, d),
            on_waited=lambda p, s: self.waited.append((p, s)),
            on_shed=self.shed.append,
            on_in_flight=self.running.append,
            on_tenants=lambda p, n: self.tenants.__setitem__(p, n),
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
    q: AdmissionQueue,
    p: Priority,
    clock: FakeClock,
    order: list[str],
    name: str,
    within: float = 60,
    tenant: str = "",
) -> asyncio.Task[None]:
    async def run() -> None:
        await q.acquire(p, Deadline.after(within, clock), tenant)
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


async def serve_all(q: AdmissionQueue) -> None:
    while q.depth():
        q.release()
        await settle()


async def test_the_tenants_waiting_at_one_priority_are_served_in_turn() -> None:
    """First come, first served within a priority let one tenant's burst of 4 hold back another
    tenant's call that came a moment later until the whole burst was served."""
    clock, order = FakeClock(), []
    q = make(clock, capacity=1, queue_size=10)
    await q.acquire(P.NORMAL, Deadline.after(60, clock), "burst")
    tasks = [waiter(q, P.NORMAL, clock, order, f"burst{i}", tenant="burst") for i in range(4)]
    await settle()
    tasks += [waiter(q, P.NORMAL, clock, order, "quiet", tenant="quiet")]
    tasks += [waiter(q, P.NORMAL, clock, order, "third", tenant="third")]
    tasks += [waiter(q, P.HIGH, clock, order, "high", tenant="burst")]  # priority still comes first
    await settle()
    await serve_all(q)
    assert order == ["high", "burst0", "quiet", "third", "burst1", "burst2", "burst3"]
    await asyncio.gather(*tasks)


async def test_a_tenant_that_comes_back_waits_for_its_turn_behind_the_others() -> None:
    clock, order = FakeClock(), []
    q = make(clock, capacity=1, queue_size=10)
    await q.acquire(P.LOW, Deadline.after(60, clock), "a")
    tasks = [waiter(q, P.LOW, clock, order, n, tenant=n[0]) for n in ("a1", "b1", "b2")]
    await settle()
    q.release()  # a1 runs: tenant a has none left waiting
    await settle()
    tasks += [waiter(q, P.LOW, clock, order, n, tenant=n[0]) for n in ("a2", "c1")]
    await settle()
    await serve_all(q)
    assert order == ["a1", "b1", "a2", "c1", "b2"]
    await asyncio.gather(*tasks)


async def test_a_full_queue_sheds_the_tenant_holding_the_most_of_it_not_another_tenants_newcomer() -> None:
    """A tenant's burst filled the queue and every other tenant's call of the same priority was
    shed at once while the burst waited."""
    clock, seen, order = FakeClock(), Seen(), []
    q = make(clock, capacity=1, queue_size=3, seen=seen)
    await q.acquire(P.NORMAL, Deadline.after(60, clock), "burst")
    burst = [waiter(q, P.NORMAL, clock, order, f"burst{i}", tenant="burst") for i in range(3)]
    await settle()
    assert seen.tenants[P.NORMAL] == 1
    quiet = waiter(q, P.NORMAL, clock, order, "quiet", tenant="quiet")
    await settle()
    with pytest.raises(OverloadedError, match="another tenant's call") as shed:
        await burst[2]  # the burst's latest
    assert shed.value.code is Code.UNAVAILABLE and shed.value.retry_after == 2.0
    assert seen.shed == [P.NORMAL] and q.depth() == 3 and seen.tenants[P.NORMAL] == 2
    other = waiter(q, P.NORMAL, clock, order, "other", tenant="other")
    await settle()
    with pytest.raises(OverloadedError):
        await burst[1]  # burst held 2, "other" none: the burst gives way again
    with pytest.raises(OverloadedError, match="admission queue is full"):  # now one each: no swap
        await q.acquire(P.NORMAL, Deadline.after(60, clock), "fourth")
    with pytest.raises(OverloadedError, match="admission queue is full"):  # its own tenant's turn
        await q.acquire(P.NORMAL, Deadline.after(60, clock), "burst")
    assert seen.shed == [P.NORMAL] * 4
    await serve_all(q)
    assert order == ["burst0", "quiet", "other"]
    await asyncio.gather(burst[0], quiet, other)


async def test_the_swap_never_leaves_the_newcomers_tenant_holding_the_most() -> None:
    clock, seen = FakeClock(), Seen()
    q = make(clock, capacity=1, queue_size=4, seen=seen)
    await q.acquire(P.LOW, Deadline.after(60, clock))
    queued = [("a", 0), ("a", 1), ("b", 0), ("a", 2)]
    tasks = [waiter(q, P.LOW, clock, [], f"{t}{i}", tenant=t) for t, i in queued]
    await settle()  # a holds 3, b 1: a newcomer of b takes one of a's places
    tasks.append(waiter(q, P.LOW, clock, [], "b1", tenant="b"))
    await settle()
    assert tasks[3].done() and q.depth() == 4
    with pytest.raises(OverloadedError):  # a holds 2, b 2: b's next is shed itself
        await q.acquire(P.LOW, Deadline.after(60, clock), "b")
    await serve_all(q)
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_higher_newcomer_displaces_the_heaviest_tenant_of_the_lowest_priority() -> None:
    clock, seen, order = FakeClock(), Seen(), []
    q = make(clock, capacity=1, queue_size=3, seen=seen)
    await q.acquire(P.NORMAL, Deadline.after(60, clock))
    lows = [waiter(q, P.LOW, clock, order, n, tenant=n[0]) for n in ("x1", "y1", "y2")]
    await settle()
    crit = waiter(q, P.CRITICAL, clock, order, "critical", tenant="x")
    await settle()
    with pytest.raises(OverloadedError, match="higher-priority call"):
        await lows[2]  # y held the most of LOW: its latest, not x's only one
    await serve_all(q)
    assert order == ["critical", "x1", "y1"]
    await asyncio.gather(crit, lows[0], lows[1])


async def test_deadlines_and_cancellation_stay_exact_among_tenants() -> None:
    clock, seen, order = FakeClock(), Seen(), []
    q = make(clock, capacity=1, queue_size=10, seen=seen)
    await q.acquire(P.NORMAL, Deadline.after(60, clock), "a")
    a = [waiter(q, P.NORMAL, clock, order, f"a{i}", tenant="a", within=5 if i == 1 else 60) for i in range(3)]
    b = [waiter(q, P.NORMAL, clock, order, f"b{i}", tenant="b") for i in range(2)]
    await settle()
    b[0].cancel()
    clock.advance(5)
    await settle()
    with pytest.raises(DeadlineExceededError):
        await a[1]
    with pytest.raises(asyncio.CancelledError):
        await b[0]
    assert q.depth() == 3 and seen.depth[P.NORMAL] == 3 and seen.tenants[P.NORMAL] == 2
    await serve_all(q)
    assert order == ["a0", "b1", "a2"]
    assert seen.tenants[P.NORMAL] == 0
    q.release()
    assert q.running == 0
    await asyncio.gather(a[0], a[2], b[1])


async def test_many_tenants_coming_and_going_cost_a_bounded_time_per_call() -> None:
    """Every tenant's FIFO, the ring of tenants and the count of the heaviest are kept in O(1) per
    step: 12,000 calls of 4,000 tenants arrive, a third cancel, the queue is full and newcomers of
    new tenants displace the heaviest, the rest are served."""
    clock, seen = FakeClock(), Seen()
    n = 12_000
    q = make(clock, capacity=1, queue_size=n, seen=seen)
    await q.acquire(P.NORMAL, Deadline.after(600, clock))
    gc.disable()
    try:
        started = time.process_time()
        tasks = [
            asyncio.ensure_future(q.acquire(P(i % 2), Deadline.after(600, clock), f"t{i % 4000}"))
            for i in range(n)
        ]
        await asyncio.sleep(0)
        for task in tasks[::3]:
            task.cancel()
        await asyncio.sleep(0)
        tasks += [
            asyncio.ensure_future(q.acquire(P(0), Deadline.after(600, clock), f"new{i}"))
            for i in range(len(tasks[::3]) + 1000)
        ]
        await asyncio.sleep(0)
        assert q.depth() == n
        for _ in range(q.depth()):
            q.release()
        await asyncio.gather(*tasks, return_exceptions=True)
        spent = time.process_time() - started
    finally:
        gc.enable()
    assert spent < 6.0
    assert q.depth() == 0 and q.running == 1 and seen.tenants[P(0)] == 0 and seen.tenants[P(1)] == 0
