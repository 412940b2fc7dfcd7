"""Retry policy (attempts and backoff) and the per-deployment retry budget that bounds retries.

Pure and synchronous: no I/O, no sleeping. The caller waits for backoff() itself (and only while the
call deadline allows); randomness and time are injected.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from sidecar.core.clock import Clock
from sidecar.routing.window import SlidingCounter

# Beyond this the exponential term is far above any sane max_delay_seconds; capping it avoids overflow.
_MAX_DOUBLINGS = 62


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often to retry one deployment, and how long to wait in between.

    max_attempts: attempts per deployment, the first included (1 = never retry the same deployment).
    base_delay_seconds, max_delay_seconds: the backoff before retry n is drawn uniformly from
    [0, min(max_delay_seconds, base_delay_seconds * 2 ** (n - 1))] ("full jitter"), so concurrent
    callers spread out instead of retrying in lockstep.
    """

    max_attempts: int = 2
    base_delay_seconds: float = 0.1
    max_delay_seconds: float = 2.0

    def __post_init__(self) -> None:
        checks = {
            "max_attempts must be >= 1": self.max_attempts >= 1,
            "base_delay_seconds must be >= 0": self.base_delay_seconds >= 0,
            "max_delay_seconds must be >= 0": self.max_delay_seconds >= 0,
        }
        if errors := [message for message, ok in checks.items() if not ok]:
            raise ValueError(f"invalid {self!r}: {'; '.join(errors)}")

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry), in [0, cap]."""
        if retry < 1:
            raise ValueError(f"retry counts from 1, got {retry}")
        cap = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** min(retry - 1, _MAX_DOUBLINGS))
        return rng.uniform(0.0, cap)


@dataclass(frozen=True, slots=True)
class BudgetPolicy:
    """How many retries a deployment may take over a sliding window.

    A retry is allowed while retries in the window stay below
    max(ratio * requests in the window, min_retries_per_second * window_seconds): retries are at most
    ``ratio`` of the traffic, yet low traffic can still retry a little. The budget is what keeps a
    full outage from multiplying the load by max_attempts.
    """

    ratio: float = 0.2
    min_retries_per_second: float = 1.0
    window_seconds: float = 10.0

    def __post_init__(self) -> None:
        checks = {
            "ratio must be >= 0": self.ratio >= 0,
            "min_retries_per_second must be >= 0": self.min_retries_per_second >= 0,
            "window_seconds must be > 0": self.window_seconds > 0,
        }
        if errors := [message for message, ok in checks.items() if not ok]:
            raise ValueError(f"invalid {self!r}: {'; '.join(errors)}")


@dataclass(frozen=True, slots=True)
class BudgetSnapshot:
    """A budget as it is now: requests and retries in the window, and the retry limit they give."""

    requests: int
    retries: int
    limit: float


class _Event(enum.Enum):
    REQUEST = "request"
    RETRY = "retry"


class RetryBudget:
    """The retry budget of one deployment, over a SlidingCounter (see there for its granularity).

    Requests and retries expire from the window together, bucket by bucket.
    """

    def __init__(self, policy: BudgetPolicy, clock: Clock) -> None:
        self._policy = policy
        self._window = SlidingCounter(_Event, window_seconds=policy.window_seconds, clock=clock)

    def record_request(self) -> None:
        """Count a first attempt (retries are counted by try_spend, not here)."""
        self._window.add(_Event.REQUEST)

    def try_spend(self) -> bool:
        """Take one retry from the budget if there is one left; False means do not retry."""
        totals = self._window.totals()
        requests, retries = totals[_Event.REQUEST], totals[_Event.RETRY]
        p = self._policy
        # retries < ratio * requests and retries < rate * window, compared as quotients: these are
        # correctly rounded, so 20 retries for 100 requests meet a ratio of 0.2 exactly.
        allowed = (requests > 0 and retries / requests < p.ratio) or (
            retries / p.window_seconds < p.min_retries_per_second
        )
        if allowed:
            self._window.add(_Event.RETRY)
        return allowed

    def snapshot(self) -> BudgetSnapshot:
        totals = self._window.totals()
        requests = totals[_Event.REQUEST]
        p = self._policy
        limit = max(p.ratio * requests, p.min_retries_per_second * p.window_seconds)
        return BudgetSnapshot(requests=requests, retries=totals[_Event.RETRY], limit=limit)


class RetryBudgets:
    """One RetryBudget per deployment name, created on first use, all with the same policy."""

    def __init__(self, policy: BudgetPolicy, clock: Clock) -> None:
        self._policy, self._clock = policy, clock
        self._budgets: dict[str, RetryBudget] = {}

    def get(self, deployment: str) -> RetryBudget:
        budget = self._budgets.get(deployment)
        if budget is None:
            budget = self._budgets[deployment] = RetryBudget(self._policy, self._clock)
        return budget
