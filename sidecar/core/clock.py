"""Time, injected: production uses SystemClock, tests a FakeClock that never sleeps."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    """Monotonic time for durations and deadlines; wall time for records."""

    def monotonic(self) -> float: ...

    def wall(self) -> float: ...


class SystemClock:
    """The real clocks of the process."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


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

    def expired(self) -> bool:
        remaining = self.remaining()
        return remaining is not None and remaining <= 0.0
