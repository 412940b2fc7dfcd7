"""The slots one call holds of per-deployment capacities: taken, waited for, given back once."""

from __future__ import annotations

import asyncio

import pytest

from sidecar.admission.deployments import DeploymentSlots, HeldSlots, SlotsObserver
from sidecar.admission.queue import AdmissionQueue, OverloadedError
from sidecar.core.clock import Deadline, FakeClock
from sidecar.core.priority import Priority


def slots(
    clock: FakeClock, queue_size: int = 0, seen: list[str] | None = None, **capacity: int
) -> DeploymentSlots:
    log = seen if seen is not None else []
    observer = SlotsObserver(
        on_waited=lambda p, s: log.append(f"waited {p.name}"), on_shed=lambda p: log.append(f"shed {p.name}")
    )
    queues = {
        n: AdmissionQueue(capacity=c, queue_size=queue_size, retry_after=1.0, clock=clock, deployment=n)
        for n, c in capacity.items()
    }
    return DeploymentSlots(queues, clock=clock, observer=observer)


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def running(s: DeploymentSlots, name: str) -> int:
    queue = s.queue(name)
    assert queue is not None
    return queue.running


async def test_take_release_except_and_release_all() -> None:
    s = slots(FakeClock(), a=1, b=2)
    held = s.holder()
    assert held.take("a") and held.take("b") and held.take("unlimited")
    assert not s.holder().take("a")  # full
    held.release_except("b")
    assert (running(s, "a"), running(s, "b")) == (0, 1)
    held.release_all()
    held.release_all()  # each slot is given back once
    assert (running(s, "a"), running(s, "b")) == (0, 0)


async def test_a_wait_on_a_full_deployment_without_a_queue_is_shed() -> None:
    clock = FakeClock()
    s = slots(clock, a=1)
    first = s.holder()
    assert first.take("a")
    with pytest.raises(OverloadedError) as shed:
        await s.holder().wait(["a"], Priority.CRITICAL, Deadline.after(5, clock))
    assert shed.value.metadata["deployment"] == "a" and "deployment 'a' is overloaded" in shed.value.message
    first.release_all()
    waited = s.holder()
    assert await waited.wait(["a"], Priority.LOW, Deadline.after(5, clock)) == "a"
    assert running(s, "a") == 1


async def test_no_slots_configured_is_unlimited() -> None:
    held = HeldSlots(None)
    assert held.take("a")
    assert await held.wait(["a"], Priority.LOW, Deadline.after(1, FakeClock())) == "a"
    held.release_all()


async def test_a_wait_takes_whichever_deployment_frees_first_and_leaves_the_other_queues() -> None:
    clock, seen = FakeClock(), []
    s = slots(clock, queue_size=4, seen=seen, a=1, b=1)
    first, second = s.holder(), s.holder()
    assert first.take("a") and second.take("b")
    waiting = s.holder()
    task = asyncio.ensure_future(waiting.wait(["a", "b"], Priority.NORMAL, Deadline.after(60, clock)))
    await settle()
    assert (s.queue("a").depth(), s.queue("b").depth()) == (1, 1)  # type: ignore[union-attr]
    second.release_all()  # b frees first
    assert await task == "b"
    assert (s.queue("a").depth(), running(s, "a"), running(s, "b")) == (0, 1, 1)  # type: ignore[union-attr]
    first.release_all()
    assert running(s, "a") == 0  # a's slot was not handed to the withdrawn wait
    assert seen == ["waited NORMAL"]


async def test_a_call_shed_by_every_queue_is_shed_once() -> None:
    clock, seen = FakeClock(), []
    s = slots(clock, queue_size=1, seen=seen, a=1, b=1)
    assert s.holder().take("a") and s.holder().take("b")
    low = asyncio.ensure_future(s.holder().wait(["a", "b"], Priority.LOW, Deadline.after(60, clock)))
    await settle()
    critical = asyncio.ensure_future(
        s.holder().wait(["a", "b"], Priority.CRITICAL, Deadline.after(60, clock))
    )
    with pytest.raises(OverloadedError):
        await low
    assert seen == ["shed LOW", "waited LOW"]
    assert (s.queue("a").depth(), s.queue("b").depth()) == (1, 1)  # type: ignore[union-attr]
    critical.cancel()
    with pytest.raises(asyncio.CancelledError):
        await critical
    assert (s.queue("a").depth(), s.queue("b").depth()) == (0, 0)  # type: ignore[union-attr]


async def test_a_cancelled_wait_gives_back_a_slot_granted_meanwhile() -> None:
    clock = FakeClock()
    s = slots(clock, queue_size=2, a=1, b=1)
    holders = [s.holder(), s.holder()]
    assert holders[0].take("a") and holders[1].take("b")
    task = asyncio.ensure_future(s.holder().wait(["a", "b"], Priority.HIGH, Deadline.after(60, clock)))
    await settle()
    holders[0].release_all()  # a's slot passes to the wait ...
    task.cancel()  # ... which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (running(s, "a"), s.queue("b").depth()) == (0, 0)  # type: ignore[union-attr]


@pytest.mark.parametrize("turns", range(8))
@pytest.mark.parametrize("names", [("a",), ("a", "b")])
async def test_a_call_cancelled_just_as_its_slot_came_gives_the_slot_back(
    turns: int, names: tuple[str, ...]
) -> None:
    # the caller goes away (its deadline, a client cancel) at every loop turn after the slot was
    # handed to it, however many queues it waited in: the slot is given back, never kept by nobody
    clock = FakeClock()
    s = slots(clock, queue_size=4, **{n: 1 for n in names})
    first = s.holder()
    assert all(first.take(n) for n in names)
    waiting = s.holder()
    task = asyncio.get_running_loop().create_task(
        waiting.wait(list(names), Priority.NORMAL, Deadline.after(60, clock))
    )
    await settle()
    first.release_all()
    for _ in range(turns):
        await asyncio.sleep(0)
    task.cancel()
    try:
        got = await task
    except asyncio.CancelledError:
        got = None
    if got is not None:  # it was served before the cancel reached it: it holds one slot
        waiting.release_all()
    await settle()
    assert [running(s, n) for n in names] == [0] * len(names)


async def test_a_deployments_queue_sheds_and_serves_by_tenant_too() -> None:
    """The route's wait passes the caller's tenant: a tenant's burst that filled a deployment's
    queue gives way to another tenant's call of its priority, which is then served in its turn."""
    clock, seen = FakeClock(), []
    s = slots(clock, queue_size=2, seen=seen, a=1)
    first = s.holder()
    assert first.take("a")
    burst = [
        asyncio.ensure_future(s.holder().wait(["a"], Priority.NORMAL, Deadline.after(60, clock), "burst"))
        for _ in range(2)
    ]
    await settle()
    quiet = asyncio.ensure_future(s.holder().wait(["a"], Priority.NORMAL, Deadline.after(60, clock), "quiet"))
    await settle()
    with pytest.raises(OverloadedError):
        await burst[1]
    assert seen == ["shed NORMAL", "waited NORMAL"]
    first.release_all()
    await settle()
    assert burst[0].done() and not quiet.done()  # the burst's first came first
    queue = s.queue("a")
    assert queue is not None
    queue.release()
    assert await quiet == "a"
