"""Time, injected: every reading of the time and every timer of the sidecar goes through a Clock.

Production uses SystemClock (asyncio's own timers); tests use FakeClock, whose time moves only
when a test advances it, or, with `auto_advance`, jumps to the next timer whenever nothing else
in the event loop can run, so deadline, hedge, backoff and flush tests never sleep for real.
This module is the only one in sidecar/ that may use asyncio's timers (tests/unit guard it).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

F = TypeVar("F", bound="asyncio.Future[Any]")
FIRST_COMPLETED = asyncio.FIRST_COMPLETED
# A timer that fires this close to a call's deadline is the deadline's: asyncio runs timers up to its
# clock resolution early, and an upstream timeout bounded by the time left fires at the deadline.
DEADLINE_MARGIN = 0.02
ALL_COMPLETED = asyncio.ALL_COMPLETED


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic time for durations and deadlines; wall time for records; the timers built on them."""

    def monotonic(self) -> float: ...

    def wall(self) -> float: ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` (<= 0: just yield to the loop)."""

    def timeout(self, seconds: float | None) -> AbstractAsyncContextManager[object]:
        """Like `asyncio.timeout`: the body is cancelled after `seconds` and TimeoutError raised;
        None never times out."""

    async def wait(
        self,
        aws: Iterable[F],
        *,
        within: float | None = None,
        return_when: str = FIRST_COMPLETED,
    ) -> tuple[set[F], set[F]]:
        """Like `asyncio.wait(aws, timeout=within)`: (done, pending); never cancels what it waits on."""

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Cancellable:
        """Run `callback` on the event loop after `seconds`, unless the handle is cancelled first: one
        timer for a watchdog that checks progress, instead of a timeout around every step."""


class SystemClock:
    """The real clocks and timers of the process."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def timeout(self, seconds: float | None) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout(seconds)

    async def wait(
        self,
        aws: Iterable[F],
        *,
        within: float | None = None,
        return_when: str = FIRST_COMPLETED,
    ) -> tuple[set[F], set[F]]:
        return await asyncio.wait(set(aws), timeout=within, return_when=return_when)

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Cancellable:
        return asyncio.get_running_loop().call_later(max(0.0, seconds), callback)


@dataclass(order=True)
class _Timer:
    when: float
    seq: int
    fire: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """Virtual time for tests: `advance()` moves it and fires the timers that fall due on the way.

    With `auto_advance=True`, a driver task jumps to the next timer whenever the event loop has
    nothing else ready to run (every task is waiting on the clock). Use it only where nothing waits
    on real I/O under a clock timer, or the timer fires early.
    """

    def __init__(self, start: float = 1000.0, *, auto_advance: bool = False) -> None:
        self.now = start
        self.auto_advance = auto_advance
        self._timers: list[_Timer] = []
        self._seq = itertools.count()
        self._driver: asyncio.Task[None] | None = None
        self.sleeps: list[float] = []  # every sleep asked for, in order (tests assert backoffs)

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_763_700_000.0 + self.now

    def advance(self, seconds: float) -> None:
        """Move time forward, firing due timers in order (the woken tasks run at the next await)."""
        target = self.now + max(0.0, seconds)
        while self._timers and self._timers[0].when <= target:
            timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self.now = max(self.now, timer.when)
            timer.fire()
        self.now = target

    def pending(self) -> int:
        """Timers not yet fired or cancelled."""
        return sum(1 for t in self._timers if not t.cancelled)

    def next_timer(self) -> float | None:
        """When the next live timer falls due, or None."""
        live = [t.when for t in self._timers if not t.cancelled]
        return min(live) if live else None

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not woken.done():
                woken.set_result(None)

        timer = self._schedule(seconds, wake)
        try:
            await woken
        finally:
            timer.cancel()

    def timeout(self, seconds: float | None) -> AbstractAsyncContextManager[object]:
        return self._timeout(seconds)

    @asynccontextmanager
    async def _timeout(self, seconds: float | None) -> AsyncIterator[None]:
        if seconds is None:
            yield
            return
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(None) as scope:

            def expire() -> None:
                if not scope.expired():
                    scope.reschedule(loop.time())

            timer = self._schedule(seconds, expire)
            try:
                yield
            finally:
                timer.cancel()

    async def wait(
        self,
        aws: Iterable[F],
        *,
        within: float | None = None,
        return_when: str = FIRST_COMPLETED,
    ) -> tuple[set[F], set[F]]:
        futures = set(aws)
        try:
            async with self.timeout(within):
                return await asyncio.wait(futures, return_when=return_when)
        except TimeoutError:
            done = {f for f in futures if f.done()}
            return done, futures - done

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Cancellable:
        return self._schedule(seconds, callback)

    def _schedule(self, seconds: float, fire: Callable[[], None]) -> _Timer:
        timer = _Timer(self.now + max(0.0, seconds), next(self._seq), fire)
        if seconds <= 0:
            fire()
            timer.cancel()
            return timer
        heapq.heappush(self._timers, timer)
        if self.auto_advance and (self._driver is None or self._driver.done()):
            self._driver = asyncio.get_running_loop().create_task(self._drive(), name="fake-clock")
        return timer

    async def _drive(self) -> None:
        """Advance to the next timer each time the loop is idle, until no timer is left."""
        loop = asyncio.get_running_loop()
        idle = 0
        while (due := self.next_timer()) is not None:
            await asyncio.sleep(0)
            idle = idle + 1 if _loop_idle(loop) else 0
            if idle >= 3:  # nothing became runnable for a few turns: everyone waits on the clock
                idle = 0
                self.advance(due - self.now)


def _loop_idle(loop: asyncio.AbstractEventLoop) -> bool:
    """No callback is ready and no real timer is due (asyncio's private queues; FakeClock only)."""
    ready = getattr(loop, "_ready", None)
    scheduled = getattr(loop, "_scheduled", None)
    if ready is None or scheduled is None:
        return True
    return not ready and not (scheduled and scheduled[0].when() <= loop.time())


@dataclass(frozen=True, slots=True)
class Deadline:
    """When a call must be finished, on the clock's monotonic scale; None means no deadline."""

    expires_at: float | None
    clock: Clock

    @classmethod
    def after(cls, seconds: float | None, clock: Clock) -> Deadline:
        if seconds is None:
            return cls(None, clock)
        return cls(clock.monotonic() + seconds, clock)

    def remaining(self) -> float | None:
        """Seconds left (never negative), or None without a deadline."""
        if self.expires_at is None:
            return None
        return max(0.0, self.expires_at - self.clock.monotonic())

    def expired(self, margin: float = 0.0) -> bool:
        """Past the deadline, or within `margin` seconds of it."""
        remaining = self.remaining()
        return remaining is not None and remaining <= margin

    def bound(self, seconds: float | None) -> float | None:
        """`seconds` capped by the time left: a per-attempt timer never outlives the call."""
        remaining = self.remaining()
        if remaining is None:
            return seconds
        return remaining if seconds is None else min(seconds, remaining)
