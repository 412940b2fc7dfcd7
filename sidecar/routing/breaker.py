"""Per-deployment circuit breakers: gates fed by call outcomes, read before each attempt.

Pure and synchronous: no I/O, no tasks, no locks (one event loop drives them). Time is the injected
Clock's monotonic scale; the failure window is a SlidingCounter (see there for its granularity).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from sidecar.core.clock import Clock
from sidecar.routing.window import SlidingCounter

_log = logging.getLogger("sidecar.routing")
QUIET_PAUSE_SECONDS = 1.0  # a Retry-After pause shorter than this is not logged (nor its end)


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class _Outcome(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a breaker opens and how it comes back (see CircuitBreaker)."""

    window_seconds: float = 30.0  # sliding window over which the failure ratio is measured
    min_requests: int = 10  # below this many outcomes in the window the ratio never trips
    failure_ratio: float = 0.5  # trips when failures / outcomes >= this (with min_requests reached)
    cooldown_seconds: float = 30.0  # OPEN for this long after a trip, then HALF_OPEN
    half_open_trials: int = 3  # trial calls admitted at once in HALF_OPEN; that many successes close it

    def __post_init__(self) -> None:
        checks = {
            "window_seconds must be > 0": self.window_seconds > 0,
            "min_requests must be >= 1": self.min_requests >= 1,
            "failure_ratio must be in (0, 1]": 0 < self.failure_ratio <= 1,
            "cooldown_seconds must be >= 0": self.cooldown_seconds >= 0,
            "half_open_trials must be >= 1": self.half_open_trials >= 1,
        }
        if errors := [message for message, ok in checks.items() if not ok]:
            raise ValueError(f"invalid {self!r}: {'; '.join(errors)}")


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """A breaker as it is now. opened_at/open_until are monotonic times of the last opening while OPEN
    or HALF_OPEN, None while CLOSED; trips counts every CLOSED/HALF_OPEN -> OPEN transition."""

    state: BreakerState
    failures: int
    successes: int
    opened_at: float | None
    open_until: float | None
    trips: int


class CircuitBreaker:
    """The gate in front of one deployment::

        CLOSED --(failure ratio trips | failure with retry_after)--> OPEN
        OPEN --(open period over, noticed lazily by the next method call)--> HALF_OPEN
        OPEN, paused by a retry_after alone --(its period over)--> CLOSED, window kept
        HALF_OPEN --(half_open_trials successes in a row)--> CLOSED, window cleared
        HALF_OPEN --(any failure)--> OPEN for cooldown_seconds

    CLOSED admits every call and counts outcomes in the window; after each, it trips once the window
    holds >= min_requests outcomes with failures / outcomes >= failure_ratio (a success can be the one).
    A failure with ``retry_after`` (upstream 429 + Retry-After) opens it at once for max(retry_after, 0)
    seconds whatever the ratio or state; while OPEN it only ever extends the period. Opened that way
    from CLOSED without the ratio tripping, it is a pause, not a trip: the upstream said when to come
    back, so the period over it is CLOSED again, every call admitted (half-open's few trial permits
    turned most calls away with CIRCUIT_OPEN after a `Retry-After: 0`), with the failures before the
    pause still in the window (forgetting them, a deployment failing every call with a short
    Retry-After never reached min_requests and never tripped). OPEN rejects every
    call and ignores plain outcomes (late replies to calls admitted before the trip). HALF_OPEN admits
    at most half_open_trials calls at once: allow() takes a permit; record_success() or release()
    gives it back. Only trial calls decide HALF_OPEN: an outcome reported with `admitted` (the
    `epoch` read when its call was admitted) from before the last opening (a long stream started
    while CLOSED) neither closes nor reopens it, nor gives back a permit it never took.
    """

    def __init__(self, policy: BreakerPolicy, clock: Clock, name: str = "") -> None:
        """`name`: the deployment, which names it in the log lines of its state changes ("": none)."""
        self._policy, self._clock, self.name = policy, clock, name
        self._window = SlidingCounter(_Outcome, window_seconds=policy.window_seconds, clock=clock)
        self._state = BreakerState.CLOSED
        self._opened_at: float | None = None
        self._open_until: float | None = None
        self._permits = 0
        self._trial_successes = 0
        self._trips = 0
        self._paused = False  # OPEN only because a retry_after said wait, with nothing failing
        self._told = True  # the last opening was logged, so its end is too

    def state(self) -> BreakerState:
        """The current state; an OPEN breaker whose open period is over turns HALF_OPEN here."""
        until = self._open_until
        if self._state is BreakerState.OPEN and until is not None and self._clock.monotonic() >= until:
            if self._paused:
                self._close(forget=False)  # a pause is no recovery: the failures before it count on
            else:
                self._state = BreakerState.HALF_OPEN
                self._permits = self._policy.half_open_trials
                self._trial_successes = 0
                self._said(logging.INFO, "breaker half-open", state="half_open", trials=self._permits)
        return self._state

    def allow(self) -> bool:
        """May a call go to this deployment now? In HALF_OPEN a True takes a trial permit, which the
        caller must give back through record_success(), record_failure() or release()."""
        state = self.state()
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and self._permits > 0:
            self._permits -= 1
            return True
        return False

    def admits(self) -> bool:
        """Would allow() say yes now? Takes nothing: asked before a deployment's slot is taken, so
        a deployment its breaker refuses holds no slot, and one whose breaker admits it holds no
        trial permit it did not use (allow() follows once the slot is got)."""
        state = self.state()
        return state is BreakerState.CLOSED or (state is BreakerState.HALF_OPEN and self._permits > 0)

    @property
    def epoch(self) -> int:
        """The openings so far: read when a call is admitted, passed back as its outcome's `admitted`."""
        return self._trips

    def record_success(self, *, admitted: int | None = None) -> None:
        state = self.state()
        if state is BreakerState.HALF_OPEN and self._stale(admitted):
            return  # not a trial: admitted before the breaker last opened
        if state is BreakerState.CLOSED:
            # A success never raises the failure ratio: the ratio is checked when a failure comes in.
            self._window.add(_Outcome.SUCCESS)
        elif state is BreakerState.HALF_OPEN:
            self._trial_successes += 1
            if self._trial_successes >= self._policy.half_open_trials:
                self._close()
            else:
                self.release()

    def record_failure(self, *, retry_after: float | None = None, admitted: int | None = None) -> None:
        """A failure that counts against the deployment (upstream 5xx, 429, unavailable, timeout)."""
        state = self.state()
        if state is BreakerState.CLOSED:
            self._window.add(_Outcome.FAILURE)
        if retry_after is not None:  # the upstream's own word on when to come back, whoever heard it
            pause = state is BreakerState.CLOSED and not self._ratio_reached()
            trial = state is BreakerState.HALF_OPEN and not self._stale(admitted)
            # a trip (the ratio reached, or a trial failed) lasts the cooldown at least: a
            # `Retry-After: 0` on every failure kept a failing deployment's trip to no time at all
            tripped = trial or (state is BreakerState.CLOSED and not pause)
            floor = self._policy.cooldown_seconds if tripped else 0.0
            self._open(max(retry_after, floor), pause=pause, why="retry_after")
        elif state is BreakerState.HALF_OPEN and not self._stale(admitted):
            self._open(self._policy.cooldown_seconds, why="trial_failed")
        elif state is BreakerState.CLOSED:
            self._maybe_trip()

    def release(self, *, admitted: int | None = None) -> None:
        """Give back a HALF_OPEN trial permit whose call ended without an outcome that counts
        (cancelled, or rejected as invalid). Never more permits than half_open_trials; no-op otherwise
        (a call admitted before the last opening took none)."""
        if self.state() is BreakerState.HALF_OPEN and not self._stale(admitted):
            self._permits = min(self._permits + 1, self._policy.half_open_trials)

    def open_for(self) -> float | None:
        """Seconds until an OPEN breaker turns HALF_OPEN; None in any other state."""
        until = self._open_until
        if self.state() is not BreakerState.OPEN or until is None:
            return None
        return max(0.0, until - self._clock.monotonic())

    def snapshot(self) -> BreakerSnapshot:
        state = self.state()
        totals = self._window.totals()
        failures, successes = totals[_Outcome.FAILURE], totals[_Outcome.SUCCESS]
        return BreakerSnapshot(state, failures, successes, self._opened_at, self._open_until, self._trips)

    def _stale(self, admitted: int | None) -> bool:
        """An outcome of a call admitted before the last opening (None: not known, counted)."""
        return admitted is not None and admitted != self._trips

    def _maybe_trip(self) -> None:
        if self._ratio_reached():
            self._open(self._policy.cooldown_seconds, why="failure_ratio")

    def _ratio_reached(self) -> bool:
        totals = self._window.totals()
        failures, outcomes = totals[_Outcome.FAILURE], sum(totals.values())
        # Compared as a quotient: correctly rounded, so 3/10 meets a ratio of 0.3 exactly.
        return outcomes >= self._policy.min_requests and failures / outcomes >= self._policy.failure_ratio

    def _open(self, seconds: float, *, pause: bool = False, why: str = "") -> None:
        now = self._clock.monotonic()
        if self._state is BreakerState.OPEN and self._open_until is not None:
            self._open_until = max(self._open_until, now + seconds)
            return
        totals = self._window.totals()
        # a pause under a second (`Retry-After: 0` on a 503) is not worth two lines each time
        self._told = not pause or seconds >= QUIET_PAUSE_SECONDS
        self._said(
            logging.INFO if pause else logging.WARNING,
            "breaker paused by the upstream's Retry-After" if pause else "breaker opened",
            state="open",
            why=why,
            open_seconds=round(seconds, 3),
            failures=totals[_Outcome.FAILURE],
            outcomes=sum(totals.values()),
        )
        self._paused = pause
        self._state = BreakerState.OPEN
        self._opened_at, self._open_until = now, now + seconds
        self._permits = self._trial_successes = 0
        self._trips += 1

    def _said(self, level: int, message: str, **fields: object) -> None:
        """A state change, logged once as it happens (a metric scraped every 30 s misses an opening
        shorter than that); at most one line per opening and one per recovery."""
        if self.name and self._told:
            _log.log(level, message, extra={"deployment": self.name, **fields})

    def _close(self, *, forget: bool = True) -> None:
        self._said(
            logging.INFO, "breaker closed", state="closed", after="pause" if self._paused else "trials"
        )
        self._state, self._paused = BreakerState.CLOSED, False
        self._opened_at = self._open_until = None
        self._permits = self._trial_successes = 0
        if forget:
            self._window.clear()


class Breakers:
    """One CircuitBreaker per deployment name, created on first use, all with the same policy."""

    def __init__(self, policy: BreakerPolicy, clock: Clock) -> None:
        self._policy, self._clock = policy, clock
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, deployment: str) -> CircuitBreaker:
        breaker = self._breakers.get(deployment)
        if breaker is None:
            breaker = self._breakers[deployment] = CircuitBreaker(self._policy, self._clock, deployment)
        return breaker
