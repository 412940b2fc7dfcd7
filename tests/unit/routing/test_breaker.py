from __future__ import annotations

import pytest

from sidecar.routing.breaker import BreakerPolicy, Breakers, BreakerState, CircuitBreaker
from tests.conftest import FakeClock

POLICY = BreakerPolicy(
    window_seconds=30.0, min_requests=10, failure_ratio=0.5, cooldown_seconds=30.0, half_open_trials=3
)


def breaker(clock: FakeClock, policy: BreakerPolicy = POLICY) -> CircuitBreaker:
    return CircuitBreaker(policy, clock)


def record(b: CircuitBreaker, *, successes: int = 0, failures: int = 0) -> None:
    for _ in range(successes):
        b.record_success()
    for _ in range(failures):
        b.record_failure()


def tripped(clock: FakeClock) -> CircuitBreaker:
    b = breaker(clock)
    record(b, failures=10)
    assert b.state() is BreakerState.OPEN
    return b


def half_open(clock: FakeClock) -> CircuitBreaker:
    b = tripped(clock)
    clock.advance(POLICY.cooldown_seconds)
    assert b.state() is BreakerState.HALF_OPEN
    return b


def test_min_requests_gate(clock: FakeClock) -> None:
    b = breaker(clock)
    record(b, failures=9)  # 100 % failures, but only 9 outcomes
    assert b.state() is BreakerState.CLOSED
    assert b.allow()
    b.record_failure()
    assert b.state() is BreakerState.OPEN


def test_trips_at_exactly_the_ratio(clock: FakeClock) -> None:
    b = breaker(clock)
    record(b, successes=5, failures=4)
    assert b.state() is BreakerState.CLOSED
    b.record_failure()  # 5 / 10 == 0.5
    assert b.state() is BreakerState.OPEN
    assert b.snapshot().trips == 1


def test_below_the_ratio_stays_closed(clock: FakeClock) -> None:
    b = breaker(clock)
    record(b, successes=6, failures=5)  # 5 / 11 < 0.5
    assert b.state() is BreakerState.CLOSED


@pytest.mark.parametrize(
    ("ratio", "failures", "outcomes"), [(0.3, 3, 10), (0.1, 1, 10), (0.07, 7, 100), (0.14, 7, 50)]
)
def test_ratio_threshold_has_no_rounding_slack(
    clock: FakeClock, ratio: float, failures: int, outcomes: int
) -> None:
    # 0.07 * 100 and 0.14 * 50 are 7.000000000000001 in floats: a product would miss the threshold
    b = breaker(clock, BreakerPolicy(min_requests=outcomes, failure_ratio=ratio))
    record(b, successes=outcomes - failures, failures=failures - 1)
    assert b.state() is BreakerState.CLOSED
    b.record_failure()
    assert b.state() is BreakerState.OPEN


def test_old_failures_leave_the_window(clock: FakeClock) -> None:
    b = breaker(clock)
    record(b, failures=9)
    clock.advance(POLICY.window_seconds)
    assert b.snapshot().failures == 0
    record(b, successes=9, failures=1)  # only 1 / 10 in the window now
    assert b.state() is BreakerState.CLOSED
    assert (b.snapshot().failures, b.snapshot().successes) == (1, 9)


def test_recent_failures_still_count(clock: FakeClock) -> None:
    b = breaker(clock)
    record(b, failures=9)
    clock.advance(POLICY.window_seconds / 2)
    b.record_failure()
    assert b.state() is BreakerState.OPEN


def test_open_rejects(clock: FakeClock) -> None:
    b = tripped(clock)
    assert not any(b.allow() for _ in range(5))
    clock.advance(POLICY.cooldown_seconds - 0.001)
    assert not b.allow()


def test_cooldown_turns_half_open(clock: FakeClock) -> None:
    b = tripped(clock)
    clock.advance(POLICY.cooldown_seconds - 0.001)
    assert b.state() is BreakerState.OPEN
    clock.advance(0.001)
    assert b.state() is BreakerState.HALF_OPEN


def test_half_open_permits_are_consumed_and_released(clock: FakeClock) -> None:
    b = half_open(clock)
    assert [b.allow() for _ in range(4)] == [True, True, True, False]
    b.release()
    assert b.allow()
    assert not b.allow()
    for _ in range(5):  # more releases than permits never raise the cap
        b.release()
    assert [b.allow() for _ in range(4)] == [True, True, True, False]


def test_admits_answers_as_allow_would_and_takes_no_permit(clock: FakeClock) -> None:
    assert breaker(clock).admits()
    b = tripped(clock)
    assert not b.admits()
    clock.advance(POLICY.cooldown_seconds)
    assert [b.admits() for _ in range(5)] == [True] * 5  # asking takes no trial permit
    assert [b.allow() for _ in range(3)] == [True, True, True]
    assert not b.admits() and not b.allow()


def test_release_is_a_noop_unless_half_open(clock: FakeClock) -> None:
    b = breaker(clock)
    b.release()
    assert b.state() is BreakerState.CLOSED
    b = tripped(clock)
    b.release()
    assert not b.allow()


def test_trial_failure_reopens_for_the_cooldown(clock: FakeClock) -> None:
    b = half_open(clock)
    assert b.allow()
    b.record_failure()
    assert b.state() is BreakerState.OPEN
    assert b.open_for() == POLICY.cooldown_seconds
    assert b.snapshot().trips == 2
    assert not b.allow()


def test_trial_failure_after_some_successes_reopens(clock: FakeClock) -> None:
    b = half_open(clock)
    for _ in range(2):
        assert b.allow()
        b.record_success()
    assert b.allow()
    b.record_failure()
    assert b.state() is BreakerState.OPEN


def test_trial_successes_close_and_clear_the_window(clock: FakeClock) -> None:
    b = half_open(clock)
    for _ in range(3):
        assert b.allow()
    for _ in range(3):
        b.record_success()
    snap = b.snapshot()
    assert snap.state is BreakerState.CLOSED
    assert (snap.failures, snap.successes, snap.opened_at, snap.open_until) == (0, 0, None, None)
    assert snap.trips == 1
    record(b, failures=9)  # the 10 failures that tripped it are gone
    assert b.state() is BreakerState.CLOSED


def test_trial_success_returns_its_permit(clock: FakeClock) -> None:
    b = half_open(clock)
    assert [b.allow() for _ in range(3)] == [True, True, True]
    b.record_success()
    assert b.allow()
    assert not b.allow()


def test_retry_after_opens_at_once_for_that_long(clock: FakeClock) -> None:
    b = breaker(clock)
    b.record_failure(retry_after=7.0)  # one request, far below min_requests
    assert b.state() is BreakerState.OPEN
    assert b.open_for() == 7.0
    snap = b.snapshot()
    assert (snap.opened_at, snap.open_until, snap.trips) == (1000.0, 1007.0, 1)
    clock.advance(6.999)
    assert not b.allow()
    clock.advance(0.001)
    assert b.state() is BreakerState.CLOSED  # a pause the upstream asked for, not a trip


def test_a_pause_over_admits_every_call_not_a_few_trials(clock: FakeClock) -> None:
    """A 429 with `Retry-After: 0` (or 10 ms) paused the deployment and then left it half-open: 7 of
    10 concurrent calls were turned away with CIRCUIT_OPEN without reaching the upstream."""
    b = breaker(clock)
    b.record_failure(retry_after=0.01)
    clock.advance(0.01)
    assert [b.allow() for _ in range(10)] == [True] * 10


def test_a_retry_after_that_comes_with_the_ratio_tripping_is_a_trip(clock: FakeClock) -> None:
    b = breaker(clock)
    record(b, failures=POLICY.min_requests - 1)
    b.record_failure(retry_after=2.0)  # the ratio trips with it: failing, not only rate limited
    clock.advance(2.0)
    assert b.state() is BreakerState.OPEN  # a trip lasts the cooldown at least, whatever the upstream says
    clock.advance(POLICY.cooldown_seconds - 2.0)
    assert b.state() is BreakerState.HALF_OPEN


def test_negative_retry_after_is_zero(clock: FakeClock) -> None:
    b = breaker(clock)
    b.record_failure(retry_after=-3.0)
    assert b.snapshot().trips == 1
    assert b.state() is BreakerState.CLOSED


def test_a_failed_trial_reopens_for_the_cooldown_or_a_longer_retry_after(clock: FakeClock) -> None:
    b = half_open(clock)
    assert b.allow()
    b.record_failure(retry_after=2.0)
    assert b.open_for() == POLICY.cooldown_seconds  # a shorter Retry-After does not cut the cooldown
    clock.advance(POLICY.cooldown_seconds)
    assert b.state() is BreakerState.HALF_OPEN  # a trial failed: trials again, not a pause
    assert b.allow()
    b.record_failure(retry_after=60.0)
    assert b.open_for() == 60.0  # a longer one is the upstream's word: kept


def test_retry_after_while_open_only_extends(clock: FakeClock) -> None:
    b = tripped(clock)
    b.record_failure(retry_after=5.0)
    assert b.open_for() == POLICY.cooldown_seconds
    b.record_failure(retry_after=60.0)
    assert b.open_for() == 60.0
    assert b.snapshot().trips == 1


def test_late_outcomes_while_open_are_ignored(clock: FakeClock) -> None:
    b = tripped(clock)
    record(b, successes=3, failures=3)
    assert b.open_for() == POLICY.cooldown_seconds
    assert b.snapshot().trips == 1


def test_half_open_is_decided_by_trial_calls_only(clock: FakeClock) -> None:
    """Outcomes of calls admitted before the last opening (their `admitted` epoch is older) neither
    close nor reopen a half-open breaker, nor give back permits they never took."""
    b = breaker(clock)
    before = b.epoch  # a long call admitted while closed
    record(b, failures=10)
    clock.advance(POLICY.cooldown_seconds)
    trial = b.epoch
    assert b.allow() and trial != before
    for _ in range(POLICY.half_open_trials):
        b.record_success(admitted=before)
    b.record_failure(admitted=before)
    b.release(admitted=before)
    assert b.state() is BreakerState.HALF_OPEN
    assert [b.allow() for _ in range(POLICY.half_open_trials)] == [True, True, False]  # one was taken
    for _ in range(POLICY.half_open_trials):
        b.record_success(admitted=trial)
    assert b.state() is BreakerState.CLOSED
    b.record_failure(retry_after=5.0, admitted=before)  # the upstream's own Retry-After counts always
    assert b.open_for() == 5.0


def test_open_for(clock: FakeClock) -> None:
    b = breaker(clock)
    assert b.open_for() is None
    record(b, failures=10)
    assert b.open_for() == 30.0
    clock.advance(12.5)
    assert b.open_for() == 17.5
    clock.advance(17.5)
    assert b.open_for() is None
    assert b.state() is BreakerState.HALF_OPEN


def test_snapshot_counts_the_window(clock: FakeClock) -> None:
    b = breaker(clock)
    record(b, successes=4, failures=2)
    snap = b.snapshot()
    assert (snap.state, snap.failures, snap.successes, snap.opened_at, snap.open_until, snap.trips) == (
        BreakerState.CLOSED,
        2,
        4,
        None,
        None,
        0,
    )


def test_registry_one_breaker_per_deployment(clock: FakeClock) -> None:
    breakers = Breakers(POLICY, clock)
    a = breakers.get("a")
    assert breakers.get("a") is a
    record(a, failures=10)
    assert a.state() is BreakerState.OPEN
    assert breakers.get("b").state() is BreakerState.CLOSED


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window_seconds": 0.0},
        {"min_requests": 0},
        {"failure_ratio": 0.0},
        {"failure_ratio": 1.5},
        {"cooldown_seconds": -1.0},
        {"half_open_trials": 0},
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BreakerPolicy(**kwargs)  # type: ignore[arg-type]


def test_a_pause_keeps_the_failures_before_it(clock: FakeClock) -> None:
    """A Retry-After pause is not a recovery: the failures in the window before it still count once it
    is over. Clearing them let a deployment that failed every call, now and then with a 429 or a 503
    carrying a short Retry-After, never reach min_requests, and its breaker never trip."""
    b = breaker(clock)
    record(b, failures=5)
    b.record_failure(retry_after=1.0)  # 6 outcomes: below min_requests, a pause
    clock.advance(1.0)
    assert b.state() is BreakerState.CLOSED
    record(b, failures=4)  # 10 failures within the window
    assert b.state() is BreakerState.OPEN
    assert b.snapshot().trips == 2


def test_short_retry_afters_on_every_failure_still_trip_the_ratio(clock: FakeClock) -> None:
    b = breaker(clock)
    for _ in range(POLICY.min_requests - 1):
        b.record_failure(retry_after=0.0)  # `Retry-After: 0` on every 503
        assert b.allow()
    b.record_failure(retry_after=0.0)
    assert b.snapshot().failures == POLICY.min_requests
    assert b.state() is BreakerState.OPEN  # tripped, for the cooldown: `Retry-After: 0` does not end it
    assert not b.allow()


def test_state_changes_are_logged_once_each_naming_the_deployment(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A breaker open for less than a scrape interval never shows in sidecar_breaker_state: the log
    is where an operator finds it opened, why, and when it closed again."""
    b = CircuitBreaker(POLICY, clock, "gpt4o")
    with caplog.at_level("INFO", logger="sidecar.routing"):
        record(b, failures=POLICY.min_requests)
        assert not b.allow() and not b.allow()  # more calls turned away: no more lines
        clock.advance(POLICY.cooldown_seconds)
        for _ in range(POLICY.half_open_trials):
            assert b.allow()
            b.record_success()
    said = [(r.levelname, r.getMessage(), r.deployment, getattr(r, "why", "")) for r in caplog.records]
    assert said == [
        ("WARNING", "breaker opened", "gpt4o", "failure_ratio"),
        ("INFO", "breaker half-open", "gpt4o", ""),
        ("INFO", "breaker closed", "gpt4o", ""),
    ]
    opened = caplog.records[0]
    assert (opened.failures, opened.outcomes, opened.open_seconds) == (10, 10, POLICY.cooldown_seconds)


def test_a_pause_is_logged_only_when_it_is_worth_a_line(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """`Retry-After: 0` on every 503 of a busy deployment would log two lines a call."""
    b = CircuitBreaker(POLICY, clock, "gpt4o")
    with caplog.at_level("INFO", logger="sidecar.routing"):
        b.record_failure(retry_after=0.0)
        assert b.allow()
        assert caplog.records == []
        b.record_failure(retry_after=5.0)
        clock.advance(5.0)
        assert b.allow()
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert said == [("INFO", "breaker paused by the upstream's Retry-After"), ("INFO", "breaker closed")]
