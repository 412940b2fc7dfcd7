"""Per-user ordering: the short steps of one user's Switches and generations run one at a time, FIFO.

A Generate holds its turn only while it reads its snapshot (active persona and history), never
during the upstream call, so one user's generations still run concurrently. A Switch holds its
turn while it applies. A step that is cancelled or gives up while waiting still releases its turn
only after the step before it, so the order of the steps behind it is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sidecar.core.clock import Clock

Owner = tuple[str, str]


class Abandoned(Exception):
    """The `abandon` future completed before the turn came (a newer Switch superseded this one)."""


class UserSequencer:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._tails: dict[Owner, asyncio.Future[None]] = {}

    def __len__(self) -> int:
        """Users with a step queued or running (for tests: the map never grows without bound)."""
        return len(self._tails)

    @asynccontextmanager
    async def turn(self, owner: Owner, *, abandon: asyncio.Future[None] | None = None) -> AsyncIterator[None]:
        """Wait for every earlier step of `owner`, then run the body; raises Abandoned if told to."""
        prev = self._tails.get(owner)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tails[owner] = mine
        try:
            if prev is not None and not prev.done():
                waits: set[asyncio.Future[None]] = {prev} if abandon is None else {prev, abandon}
                await self._clock.wait(waits)
            if abandon is not None and abandon.done():
                raise Abandoned
            yield
        finally:
            self._release(owner, prev, mine)

    def _release(self, owner: Owner, prev: asyncio.Future[None] | None, mine: asyncio.Future[None]) -> None:
        def done(_: object = None) -> None:
            if not mine.done():
                mine.set_result(None)
            if self._tails.get(owner) is mine:
                del self._tails[owner]

        if prev is None or prev.done():
            done()
        else:
            prev.add_done_callback(done)
