"""Per-deployment capacity: how many calls a deployment serves at once (policy.admission.deployments).

The route layer takes a deployment's slot before its first attempt and skips a full deployment for
the next one of the plan. When no deployment served and some were full, the call waits in the
priority queue of every full one at once (each bounded by `admission.queue_size`, the call's
deadline and `max_wait_seconds`): the first slot granted is kept and the other waits are withdrawn,
so the call takes whichever deployment frees first, in priority order (then the tenants in turn)
like the sidecar-wide queue.
Shed from every queue (lowest priority first), it fails with UNAVAILABLE/OVERLOADED and a RetryInfo
(metadata `deployment`). A slot is held until the call's stream ends, however it ends; slots of
deployments that failed are given back at once. A wait and a shed call are reported once each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sidecar.admission.queue import AdmissionQueue
from sidecar.core.clock import Clock, Deadline
from sidecar.core.errors import DeadlineExceededError
from sidecar.core.priority import Priority


@dataclass
class SlotsObserver:
    """Metrics hooks (telemetry/metrics.py), each called once per waiting call."""

    on_waited: Callable[[Priority, float], None] = lambda p, seconds: None
    on_shed: Callable[[Priority], None] = lambda p: None


class DeploymentSlots:
    """One admission queue per deployment with a capacity; the others are unlimited. The queues'
    own observers should report nothing of waits and sheds: a call waits in several at once."""

    def __init__(
        self, queues: Mapping[str, AdmissionQueue], *, clock: Clock, observer: SlotsObserver | None = None
    ) -> None:
        self._queues, self.clock = dict(queues), clock
        self.observer = observer or SlotsObserver()

    def queue(self, deployment: str) -> AdmissionQueue | None:
        return self._queues.get(deployment)

    def holder(self) -> HeldSlots:
        return HeldSlots(self)

    def __bool__(self) -> bool:
        return bool(self._queues)


class HeldSlots:
    """The slots one call holds; each given back exactly once."""

    def __init__(self, slots: DeploymentSlots | None) -> None:
        self._slots = slots
        self._held: list[tuple[str, AdmissionQueue]] = []

    def take(self, deployment: str) -> bool:
        """A free slot of the deployment now (True for a deployment without a capacity), or False."""
        queue = self._queue(deployment)
        if queue is None:
            return True
        if not queue.try_acquire():
            return False
        self._held.append((deployment, queue))
        return True

    async def wait(
        self, deployments: Sequence[str], priority: Priority, deadline: Deadline, tenant: str = ""
    ) -> str:
        """Wait in every listed deployment's queue (taking the tenant's turn among the tenants waiting
        at its priority); the deployment whose slot came first (the first listed, when several came
        at once). OverloadedError when every queue shed the call,
        DeadlineExceededError when its deadline passed."""
        slots = self._slots
        queues = [(d, q) for d in deployments if (q := self._queue(d)) is not None]
        if slots is None or len(queues) < len(deployments):
            return next(d for d in deployments if self._queue(d) is None)  # an unlimited one
        started = slots.clock.monotonic()
        try:
            deployment, queue = await _first_granted(queues, priority, deadline, tenant, slots.clock)
        except DeadlineExceededError:
            raise
        except Exception:
            slots.observer.on_shed(priority)
            raise
        finally:
            slots.observer.on_waited(priority, slots.clock.monotonic() - started)
        self._held.append((deployment, queue))
        return deployment

    def release_except(self, keep: str | None) -> None:
        """Give back every slot but (one of) the serving deployment's."""
        kept: list[tuple[str, AdmissionQueue]] = []
        for deployment, queue in self._held:
            if not kept and deployment == keep:
                kept.append((deployment, queue))
            else:
                queue.release()
        self._held = kept

    def release_all(self) -> None:
        self.release_except(None)

    def _queue(self, deployment: str) -> AdmissionQueue | None:
        return self._slots.queue(deployment) if self._slots is not None else None


async def _first_granted(
    queues: list[tuple[str, AdmissionQueue]],
    priority: Priority,
    deadline: Deadline,
    tenant: str,
    clock: Clock,
) -> tuple[str, AdmissionQueue]:
    """Acquire from every queue at once; keep the first slot (in list order among simultaneous
    ones), give back any other granted, withdraw the rest. Raise the deadline's error if any queue
    saw it pass, else the first queue's error, once every queue has failed."""
    waits = {
        asyncio.ensure_future(q.acquire(priority, deadline, tenant)): i for i, (_, q) in enumerate(queues)
    }
    errors: list[BaseException] = []
    try:
        pending: set[asyncio.Task[None]] = set(waits)
        granted = False
        while pending and not granted:
            done, pending = await clock.wait(pending)
            for task in sorted(done, key=waits.__getitem__):
                if (error := task.exception()) is None:
                    granted = True
                else:
                    errors.append(error)
        holding = await _withdraw(waits)
    except BaseException:  # the caller went away, the withdrawal included: no await may follow
        for task, i in waits.items():
            _give_back(task, queues[i][1])
        raise
    for i in holding[1:]:
        queues[i][1].release()
    if holding:
        return queues[holding[0]]
    raise next((e for e in errors if isinstance(e, DeadlineExceededError)), errors[0])


def _give_back(task: asyncio.Task[None], queue: AdmissionQueue) -> None:
    """The wait withdrawn without awaiting it (its caller is being cancelled): a slot it holds, now
    or when it ends (granted at the instant it was cancelled), goes back to the queue."""

    def ended(t: asyncio.Task[None]) -> None:
        if not t.cancelled() and t.exception() is None:
            queue.release()

    if task.done():
        ended(task)
    else:
        task.cancel()
        task.add_done_callback(ended)


async def _withdraw(waits: dict[asyncio.Task[None], int]) -> list[int]:
    """Cancel the waits still pending (a cancelled wait leaves its queue, or gives back a slot
    granted at that instant itself); the indexes, in order, of the waits that hold a slot."""
    for task in waits:
        if not task.done():
            task.cancel()
    outcomes = await asyncio.gather(*waits, return_exceptions=True)
    return sorted(i for i, outcome in zip(waits.values(), outcomes, strict=True) if outcome is None)
