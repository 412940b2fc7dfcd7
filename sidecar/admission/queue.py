"""Admission control: a concurrency capacity and a bounded priority queue in front of it.

A call that finds a free slot runs at once. Otherwise it waits in the queue, ordered by priority
(highest first), then the tenants waiting at that priority in turn (round-robin: one tenant's burst
does not hold back another tenant's call), then arrival, until a slot is handed to it, its deadline
passes (DEADLINE_EXCEEDED, nothing charged: admission comes before the quota layer), or it is
cancelled (it leaves the queue). A full queue sheds the lowest priority first, and within a priority
the tenant holding the most of it: a newcomer of a higher priority evicts the latest call of the
tenant holding the most of the lowest priority queued; a newcomer of the lowest priority queued
evicts the latest call of the tenant holding the most of it when that tenant holds at least two more
than the newcomer's own (so the swap leaves no tenant holding more), else it is shed itself, as is a
newcomer lower than everyone queued (UNAVAILABLE/OVERLOADED with a RetryInfo, never the caller's
RESOURCE_EXHAUSTED). A running call is never interrupted.
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
    on_tenants: Callable[[Priority, int], None] = lambda p, tenants: None


@dataclass(eq=False)
class _Waiter:
    priority: Priority
    tenant: str
    granted: asyncio.Future[None]
    queued: bool = True  # False once it left the queue (served, displaced, gone)


class _Tenant:
    """One tenant's calls queued at one priority, by arrival."""

    __slots__ = ("depth", "fifo", "name")

    def __init__(self, name: str) -> None:
        self.name, self.fifo, self.depth = name, deque[_Waiter](), 0


class _Level:
    """The calls queued at one priority: a FIFO per tenant, the tenants served in turn (round-robin:
    a tenant that has waiting calls goes to the back of the ring once one of them is served, a tenant
    arriving joins at the back). `heaviest` is the most calls one tenant has queued here, kept by
    counting how many tenants hold each count (counts change by one, so each step is O(1)). A call
    that leaves from the middle is only marked and dropped when met; a tenant left with none is
    forgotten at once and its entry in the ring dropped when met; both are compacted when mostly
    made of such entries."""

    def __init__(self) -> None:
        self.tenants: dict[str, _Tenant] = {}
        self.ring: deque[_Tenant] = deque()
        self.holding: dict[int, dict[str, None]] = {}  # n -> the tenants holding n calls, by when
        self.heaviest = 0
        self.depth = 0

    def held(self, tenant: str) -> int:
        t = self.tenants.get(tenant)
        return 0 if t is None else t.depth

    def add(self, waiter: _Waiter) -> None:
        t = self.tenants.get(waiter.tenant)
        if t is None:
            t = self.tenants[waiter.tenant] = _Tenant(waiter.tenant)
            self.ring.append(t)
        t.fifo.append(waiter)
        self._count(t, t.depth + 1)
        self.depth += 1

    def first(self) -> _Waiter:
        """The next tenant's first call (still queued: the caller makes it leave); depth > 0."""
        while True:
            t = self.ring.popleft()
            if t.depth:
                break  # else the tenant has no call left: its entry is dropped
        while not t.fifo[0].queued:
            t.fifo.popleft()
        self.ring.append(t)
        return t.fifo.popleft()

    def latest_of_heaviest(self) -> _Waiter:
        """The latest call of the tenant holding the most here (the first to reach that many)."""
        t = self.tenants[next(iter(self.holding[self.heaviest]))]
        while not t.fifo[-1].queued:
            t.fifo.pop()
        return t.fifo[-1]

    def leave(self, waiter: _Waiter) -> None:
        t = self.tenants[waiter.tenant]
        self._count(t, t.depth - 1)
        self.depth -= 1
        if t.depth == 0:
            del self.tenants[t.name]
            t.fifo.clear()
            if len(self.ring) > 2 * len(self.tenants) + 64:  # amortized: entries of the gone
                self.ring = deque(r for r in self.ring if r.depth)
        elif len(t.fifo) > 2 * t.depth + 64:  # amortized: entries of calls gone
            t.fifo = deque(w for w in t.fifo if w.queued)

    def _count(self, t: _Tenant, n: int) -> None:
        was, t.depth = t.depth, n
        if was:
            holders = self.holding[was]
            del holders[t.name]
            if not holders:
                del self.holding[was]
                if self.heaviest == was:
                    self.heaviest = n  # it was the only one this heavy (n = was - 1 here)
        if n:
            self.holding.setdefault(n, {})[t.name] = None
            self.heaviest = max(self.heaviest, n)


_SERVED_FIRST = tuple(sorted(Priority, reverse=True))
_SHED_FIRST = tuple(sorted(Priority))


class _Waiting:
    """The queued calls, one `_Level` per priority, so arriving, being served and being displaced
    cost O(1) whatever the length (queue_size may be 1,000,000) or the number of tenants."""

    def __init__(self) -> None:
        self._levels: dict[Priority, _Level] = {p: _Level() for p in Priority}
        self.size = 0

    def depth(self, priority: Priority | None = None) -> int:
        return self.size if priority is None else self._levels[priority].depth

    def tenants(self, priority: Priority) -> int:
        return len(self._levels[priority].tenants)

    def add(self, waiter: _Waiter) -> None:
        self._levels[waiter.priority].add(waiter)
        self.size += 1

    def first(self) -> _Waiter | None:
        """The call served next (highest priority, then the tenants in turn, then arrival), taken
        out of the queue."""
        if not self.size:
            return None
        level = next(self._levels[p] for p in _SERVED_FIRST if self._levels[p].depth)
        waiter = level.first()
        self.leave(waiter)
        return waiter

    def displaced_by(self, priority: Priority, tenant: str) -> _Waiter | None:
        """The call a newcomer displaces from the full queue (left in it), or None when the newcomer
        is shed itself: the lowest priority queued goes first; at the newcomer's own priority, the
        latest call of the tenant holding the most, when that tenant would still hold more than
        the newcomer's after the swap."""
        level_priority = next((p for p in _SHED_FIRST if self._levels[p].depth), None)
        if level_priority is None or level_priority > priority:
            return None
        level = self._levels[level_priority]
        if level_priority == priority and level.heaviest <= level.held(tenant) + 1:
            return None
        return level.latest_of_heaviest()

    def leave(self, waiter: _Waiter) -> None:
        """The call is no longer queued (its entry is dropped when met, or at a compaction)."""
        if not waiter.queued:
            return
        waiter.queued = False
        self._levels[waiter.priority].leave(waiter)
        self.size -= 1


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

    async def acquire(self, priority: Priority, deadline: Deadline, tenant: str = "") -> None:
        """Return once the call holds a slot (then `release()` it exactly once), or raise. `tenant`:
        whose call it is, for the turns among the tenants waiting at one priority."""
        if self.try_acquire():
            return
        waiter = self._enqueue(priority, tenant)
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
            self._report(waiter.priority)
            if not waiter.granted.done():
                waiter.granted.set_result(None)  # the slot passes on: running stays the same
                return
        self._set_running(self._running - 1)

    def _enqueue(self, priority: Priority, tenant: str) -> _Waiter:
        if self._waiting.size >= self._queue_size:
            displaced = self._waiting.displaced_by(priority, tenant)
            if displaced is None:
                self._shed(priority)
            assert displaced is not None
            self._remove(displaced)
            self._observer.on_shed(displaced.priority)
            by_priority = displaced.priority < priority
            error = self._overloaded(displaced.priority, evicted="priority" if by_priority else "tenant")
            displaced.granted.set_exception(error)
        waiter = _Waiter(priority, tenant, self._future())
        self._waiting.add(waiter)
        self._report(priority)
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
            raise self._overloaded(waiter.priority, waited=True)
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
        self._report(waiter.priority)

    def _report(self, priority: Priority) -> None:
        self._observer.on_depth(priority, self._waiting.depth(priority))
        self._observer.on_tenants(priority, self._waiting.tenants(priority))

    def _shed(self, priority: Priority) -> None:
        self._observer.on_shed(priority)
        raise self._overloaded(priority)

    def _overloaded(self, priority: Priority, *, evicted: str = "", waited: bool = False) -> OverloadedError:
        """`evicted`: "priority" or "tenant" when a queued call is displaced (for a higher-priority
        call, or for another tenant's call while its own tenant held the most of the queue)."""
        why = (
            "displaced from the admission queue by a higher-priority call"
            if evicted == "priority"
            else "displaced from the admission queue by another tenant's call: its tenant held the most of it"
            if evicted == "tenant"
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
