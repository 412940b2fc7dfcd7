"""Admission control: a concurrency capacity and a bounded priority queue in front of it.

A call that finds a free slot runs at once. Otherwise it waits in the queue, ordered by priority
(highest first) then arrival, until a slot is handed to it, its deadline passes (DEADLINE_EXCEEDED,
nothing charged: admission comes before the quota layer), or it is cancelled (it leaves the queue).
A full queue sheds the lowest priority: a newcomer of a higher priority evicts the lowest, latest
queued call (UNAVAILABLE/OVERLOADED with a RetryInfo, never the caller's RESOURCE_EXHAUSTED); a
newcomer no higher than everyone queued is shed itself. So CRITICAL calls overtake and, when the
queue is full, displace queued lower ones; a running call is never interrupted.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sidecar.core.clock import DEADLINE_MARGIN, Clock, Deadline
from sidecar.core.errors import Code, DeadlineExceededError, SidecarError
from sidecar.core.priority import Priority


class OverloadedError(SidecarError):
    """The sidecar is at capacity and its queue holds only calls of the same or higher priority."""

    code = Code.UNAVAILABLE
    reason = "OVERLOADED"
    retryable = True


@dataclass
class AdmissionObserver:
    """Callbacks the metrics hang on (telemetry/metrics.py); each defaults to nothing."""

    on_depth: Callable[[Priority, int], None] = lambda p, depth: None
    on_waited: Callable[[Priority, float], None] = lambda p, seconds: None
    on_shed: Callable[[Priority], None] = lambda p: None
    on_in_flight: Callable[[int], None] = lambda n: None


@dataclass(eq=False)
class _Waiter:
    priority: Priority
    granted: asyncio.Future[None]
    queued: bool = True  # False once it left the queue (served, displaced, gone)


class _Waiting:
    """The queued calls: one FIFO per priority, so arriving, being served and being displaced cost
    O(1) whatever the length (queue_size may be 1,000,000). A call that leaves from the middle is
    only marked, and dropped when met at either end; a FIFO mostly made of such is compacted."""

    def __init__(self) -> None:
        self._fifos: dict[Priority, deque[_Waiter]] = {p: deque() for p in Priority}
        self._depth: dict[Priority, int] = dict.fromkeys(Priority, 0)
        self.size = 0

    def depth(self, priority: Priority | None = None) -> int:
        return self.size if priority is None else self._depth[priority]

    def add(self, waiter: _Waiter) -> None:
        self._fifos[waiter.priority].append(waiter)
        self._depth[waiter.priority] += 1
        self.size += 1

    def first(self) -> _Waiter | None:
        """The call served next (highest priority, then arrival), taken out of the queue."""
        for priority in sorted(Priority, reverse=True):
            fifo = self._fifos[priority]
            while fifo:
                waiter = fifo.popleft()
                if waiter.queued:
                    self.leave(waiter)
                    return waiter
        return None

    def last(self) -> _Waiter | None:
        """The call displaced first (lowest priority, latest arrival), left in the queue."""
        for priority in sorted(Priority):
            fifo = self._fifos[priority]
            while fifo and not fifo[-1].queued:
                fifo.pop()
            if fifo:
                return fifo[-1]
        return None

    def leave(self, waiter: _Waiter) -> None:
        """The call is no longer queued (its entry is dropped when met, or at a compaction)."""
        if not waiter.queued:
            return
        waiter.queued = False
        self._depth[waiter.priority] -= 1
        self.size -= 1
        fifo = self._fifos[waiter.priority]
        if len(fifo) > 2 * self._depth[waiter.priority] + 64:  # amortized: entries of the gone
            self._fifos[waiter.priority] = deque(w for w in fifo if w.queued)


class AdmissionQueue:
    def __init__(
        self,
        *,
        capacity: int,
        queue_size: int,
        retry_after: float,
        clock: Clock,
        max_wait: float | None = None,
        observer: AdmissionObserver | None = None,
        deployment: str = "",
    ) -> None:
        """`deployment`: the deployment whose capacity this is ("" = the sidecar's)."""
        self._capacity, self._queue_size, self._retry_after = capacity, queue_size, retry_after
        self._deployment = deployment
        self._clock, self._max_wait = clock, max_wait
        self._observer = observer or AdmissionObserver()
        self._running = 0
        self._waiting = _Waiting()

    @property
    def running(self) -> int:
        return self._running

    def depth(self, priority: Priority | None = None) -> int:
        return self._waiting.depth(priority)

    async def acquire(self, priority: Priority, deadline: Deadline) -> None:
        """Return once the call holds a slot (then `release()` it exactly once), or raise."""
        if self.try_acquire():
            return
        waiter = self._enqueue(priority)
        started = self._clock.monotonic()
        try:
            await self._wait(waiter, deadline)
        finally:
            self._observer.on_waited(priority, self._clock.monotonic() - started)

    def try_acquire(self) -> bool:
        """Take a free slot now if there is one and nobody waits for it (then `release()` it)."""
        if self._running < self._capacity and not self._waiting.size:
            self._set_running(self._running + 1)
            return True
        return False

    def release(self) -> None:
        """A running call ended: its slot goes to the first waiter, or is freed."""
        while (waiter := self._waiting.first()) is not None:
            self._observer.on_depth(waiter.priority, self.depth(waiter.priority))
            if not waiter.granted.done():
                waiter.granted.set_result(None)  # the slot passes on: running stays the same
                return
        self._set_running(self._running - 1)

    def _enqueue(self, priority: Priority) -> _Waiter:
        if self._waiting.size >= self._queue_size:
            lowest = self._waiting.last()
            if lowest is None or lowest.priority >= priority:
                self._shed(priority)
            assert lowest is not None
            self._remove(lowest)
            self._observer.on_shed(lowest.priority)
            lowest.granted.set_exception(self._overloaded(lowest.priority, evicted=True))
        waiter = _Waiter(priority, self._future())
        self._waiting.add(waiter)
        self._observer.on_depth(priority, self.depth(priority))
        return waiter

    async def _wait(self, waiter: _Waiter, deadline: Deadline) -> None:
        within = deadline.bound(self._max_wait)
        try:
            done, _ = await self._clock.wait({waiter.granted}, within=within)
        except BaseException:  # cancelled while waiting: leave the queue, or give back a slot got
            self._abandon(waiter)
            raise
        if not done:
            self._abandon(waiter)
            if deadline.expired(DEADLINE_MARGIN):
                raise DeadlineExceededError("the deadline passed while the call waited for admission")
            self._observer.on_shed(waiter.priority)  # refused OVERLOADED: shed, as a displaced call is
            raise self._overloaded(waiter.priority, evicted=False, waited=True)
        waiter.granted.result()  # raises OverloadedError when it was evicted

    def _abandon(self, waiter: _Waiter) -> None:
        if waiter.granted.done() and not waiter.granted.cancelled() and waiter.granted.exception() is None:
            self.release()  # the slot was handed over just as the wait ended
            return
        if waiter.queued:
            self._remove(waiter)
        if not waiter.granted.done():
            waiter.granted.cancel()

    def _remove(self, waiter: _Waiter) -> None:
        self._waiting.leave(waiter)
        self._observer.on_depth(waiter.priority, self.depth(waiter.priority))

    def _shed(self, priority: Priority) -> None:
        self._observer.on_shed(priority)
        raise self._overloaded(priority, evicted=False)

    def _overloaded(self, priority: Priority, *, evicted: bool, waited: bool = False) -> OverloadedError:
        why = (
            "displaced from the admission queue by a higher-priority call"
            if evicted
            else "waited the longest allowed for a slot"
            if waited
            else "at capacity and the admission queue is full"
        )
        what = f"deployment {self._deployment!r}" if self._deployment else "the sidecar"
        metadata = {"priority": priority.name}
        if self._deployment:
            metadata["deployment"] = self._deployment
        return OverloadedError(
            f"{what} is overloaded: {why}", metadata=metadata, retry_after=self._retry_after
        )

    def _set_running(self, n: int) -> None:
        self._running = n
        self._observer.on_in_flight(n)

    def _future(self) -> asyncio.Future[None]:
        return asyncio.get_running_loop().create_future()
