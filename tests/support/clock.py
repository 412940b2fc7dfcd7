"""A clock whose sleeps only record and yield: for background loops whose waits a test counts."""

from __future__ import annotations

import asyncio

from sidecar.core.clock import FakeClock


class StepClock(FakeClock):
    """`sleep` records the wait and yields to the loop once (time does not move); `waited(n)`
    resolves after n sleeps. Timeouts and waits are FakeClock's."""

    def __init__(self, start: float = 1000.0) -> None:
        super().__init__(start)
        self._changed = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._changed.set()
        await asyncio.sleep(0)

    async def waited(self, n: int) -> None:
        while len(self.sleeps) < n:
            self._changed.clear()
            await self._changed.wait()
