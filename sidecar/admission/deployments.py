"""Per-deployment capacity: how many calls a deployment serves at once (policy.admission.deployments).

The route layer takes a deployment's slot before its first attempt and skips a full deployment for
the next one of the plan; when every remaining candidate was full it waits for the first full one
in that deployment's priority queue (bounded by `admission.queue_size`, the call's deadline and
`max_wait_seconds`), shed lowest priority first exactly like the sidecar-wide capacity
(UNAVAILABLE/OVERLOADED with a RetryInfo, metadata `deployment`). A slot is held until the
call's stream ends, however it ends; slots of deployments that failed are given back at once.
"""

from __future__ import annotations

from collections.abc import Mapping

from sidecar.admission.queue import AdmissionQueue
from sidecar.core.clock import Deadline
from sidecar.core.priority import Priority


class DeploymentSlots:
    """One admission queue per deployment with a capacity; the others are unlimited."""

    def __init__(self, queues: Mapping[str, AdmissionQueue]) -> None:
        self._queues = dict(queues)

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
        queue = self._slots.queue(deployment) if self._slots is not None else None
        if queue is None:
            return True
        if not queue.try_acquire():
            return False
        self._held.append((deployment, queue))
        return True

    async def wait(self, deployment: str, priority: Priority, deadline: Deadline) -> None:
        """Wait in the deployment's queue for a slot, or raise OverloadedError / DeadlineExceededError."""
        queue = self._slots.queue(deployment) if self._slots is not None else None
        if queue is None:
            return
        await queue.acquire(priority, deadline)
        self._held.append((deployment, queue))

    def release_except(self, keep: str | None) -> None:
        """Give back every slot but the serving deployment's."""
        kept: list[tuple[str, AdmissionQueue]] = []
        for deployment, queue in self._held:
            if not kept and deployment == keep:
                kept.append((deployment, queue))
            else:
                queue.release()
        self._held = kept

    def release_all(self) -> None:
        self.release_except(None)
