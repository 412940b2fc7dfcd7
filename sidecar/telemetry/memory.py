"""Keeping RSS near what the process uses: fewer glibc arenas, and freed heap given back after large
requests.

Measured (bench/soak.py and the notes in docs/memory.md): after requests near the 8 MiB receive
limit the Python heap is back to its baseline (tracemalloc: no objects retained), but RSS stays
60 to 190 MB above it. That is glibc's allocator keeping freed memory in its arenas (one per thread
that allocated, up to 8 per core: gRPC's and the executors' threads), not a leak: `malloc_trim(0)`
returns most of it. So:

- `limit_arenas(n)` caps the arenas at start (`mallopt(M_ARENA_MAX)`), before the gRPC threads exist;
- `AllocatorTrimmer` runs `malloc_trim(0)` (on a worker thread) a short delay after a request of
  at least `threshold_bytes` arrived, once more if others came meanwhile: a burst costs one or two
  trims, a quiet process gives its high-water memory back.

Both do nothing where the C library is not glibc.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from typing import Any

from sidecar.core.clock import Clock, SystemClock
from sidecar.core.tasks import cancel_and_wait

_log = logging.getLogger("sidecar.memory")
_M_ARENA_MAX = -8  # glibc's mallopt parameter number


def glibc() -> Any | None:
    """The C library when it is glibc (it has malloc_trim), else None."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def limit_arenas(count: int, libc: Any | None = None) -> bool:
    """At most `count` malloc arenas (0 leaves glibc's default, or MALLOC_ARENA_MAX from the
    environment); True when applied. Call before threads start allocating."""
    libc = libc if libc is not None else glibc()
    if count <= 0 or libc is None:
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, count))


class AllocatorTrimmer:
    """Gives freed heap back to the OS a little after large requests (see the module doc)."""

    def __init__(
        self,
        *,
        threshold_bytes: int,
        delay_seconds: float,
        clock: Clock | None = None,
        libc: Any | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._libc: Any = libc if libc is not None else glibc()
        self._threshold, self._delay = threshold_bytes, delay_seconds
        self._pending: asyncio.Task[None] | None = None
        self._again = False
        self.trims = 0

    @property
    def enabled(self) -> bool:
        return self._libc is not None and self._threshold > 0

    def note(self, size: int) -> None:
        """A request of `size` bytes arrived; schedule a trim if it was a large one."""
        if not self.enabled or size < self._threshold:
            return
        if self._pending is not None and not self._pending.done():
            self._again = True  # trim once more after this one's buffers are freed too
            return
        self._pending = asyncio.get_running_loop().create_task(self._trim_later())

    async def _trim_later(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._again = False
            await self._clock.sleep(self._delay)  # let the call finish and gRPC free its buffers
            await loop.run_in_executor(None, self._libc.malloc_trim, 0)
            self.trims += 1
            if not self._again:
                return

    async def aclose(self) -> None:
        if self._pending is not None and not self._pending.done():
            await cancel_and_wait(self._pending)
