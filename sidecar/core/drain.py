"""Graceful shutdown of generation calls: refuse new ones, let running ones finish, then cut the rest
with an explicit status.

The server keeps serving during the drain (so a health Check is answered NOT_SERVING instead of
refused, and short RPCs still work); only generation calls are tracked. When the grace runs out,
every call still running is cancelled with `CUT` as the message: its handler recognises that
cancellation (`Drain.cut_now`) and ends the call with STREAM_INTERRUPTED and the partial usage
instead of a bare CANCELLED.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from sidecar.core.clock import Clock
from sidecar.core.errors import SidecarDrainingError

CUT = "sidecar shutdown: grace period over"


def is_cut(exc: BaseException) -> bool:
    """Whether `exc` is the cancellation the drain sent a call whose grace ran out (the message
    travels with it through every layer), not a caller that went away."""
    return isinstance(exc, asyncio.CancelledError) and exc.args[:1] == (CUT,)


class Drain:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._running: set[asyncio.Task[object]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.draining = False
        self._cut: set[asyncio.Task[object]] = set()

    @contextmanager
    def call(self) -> Iterator[None]:
        """Track the current task as a generation call; refused (UNAVAILABLE) once draining."""
        if self.draining:
            raise SidecarDrainingError("this sidecar is shutting down; retry the call on another one")
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        self._idle.clear()
        try:
            yield
        finally:
            self._running.discard(task)
            if not self._running:
                self._idle.set()

    def cut_now(self) -> bool:
        """Whether the current task was cut by the drain (its cancellation is not the caller's)."""
        return asyncio.current_task() in self._cut

    @property
    def running(self) -> int:
        return len(self._running)

    async def drain(self, grace: float, cut_wait: float) -> int:
        """Refuse new calls, wait up to `grace` for the running ones, then cut what is left and give
        the cut handlers up to `cut_wait` to send their status. Returns how many calls were cut."""
        self.draining = True
        if await self._wait_idle(grace):
            return 0
        self._cut = set(self._running)
        for task in self._cut:
            task.cancel(CUT)
        await self._wait_idle(cut_wait)
        return len(self._cut)

    async def _wait_idle(self, seconds: float) -> bool:
        waiter = asyncio.ensure_future(self._idle.wait())
        try:
            done, _ = await self._clock.wait({waiter}, within=max(0.0, seconds))
            return bool(done)
        finally:
            waiter.cancel()
