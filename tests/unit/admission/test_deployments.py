"""The slots one call holds of per-deployment capacities: taken, waited for, given back once."""

from __future__ import annotations

import pytest

from sidecar.admission.deployments import DeploymentSlots, HeldSlots
from sidecar.admission.queue import AdmissionQueue, OverloadedError
from sidecar.core.clock import Deadline, FakeClock
from sidecar.core.priority import Priority


def slots(clock: FakeClock, **capacity: int) -> DeploymentSlots:
    return DeploymentSlots(
        {
            n: AdmissionQueue(capacity=c, queue_size=0, retry_after=1.0, clock=clock, deployment=n)
            for n, c in capacity.items()
        }
    )


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
        await s.holder().wait("a", Priority.CRITICAL, Deadline.after(5, clock))
    assert shed.value.metadata["deployment"] == "a" and "deployment 'a' is overloaded" in shed.value.message
    first.release_all()
    waited = s.holder()
    await waited.wait("a", Priority.LOW, Deadline.after(5, clock))
    assert running(s, "a") == 1


async def test_no_slots_configured_is_unlimited() -> None:
    held = HeldSlots(None)
    assert held.take("a")
    await held.wait("a", Priority.LOW, Deadline.after(1, FakeClock()))
    held.release_all()
