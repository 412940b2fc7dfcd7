from __future__ import annotations

import random
import statistics

import pytest

from sidecar.routing.retry import BudgetPolicy, RetryBudget, RetryBudgets, RetryPolicy
from tests.conftest import FakeClock


def spend_all(budget: RetryBudget, limit: int = 10_000) -> int:
    spent = 0
    while spent < limit and budget.try_spend():
        spent += 1
    return spent


@pytest.mark.parametrize("seed", range(200))
def test_backoff_stays_within_zero_and_the_cap(seed: int) -> None:
    policy = RetryPolicy(base_delay_seconds=0.1, max_delay_seconds=2.0)
    rng = random.Random(seed)
    for retry in range(1, 12):
        cap = min(2.0, 0.1 * 2 ** (retry - 1))
        assert 0.0 <= policy.backoff(retry, rng) <= cap


def test_backoff_grows_until_the_cap() -> None:
    policy = RetryPolicy(base_delay_seconds=0.1, max_delay_seconds=2.0)
    rng = random.Random(7)
    means = [statistics.fmean(policy.backoff(retry, rng) for _ in range(4000)) for retry in range(1, 8)]
    # full jitter: the mean is half the cap (0.05, 0.1, 0.2, 0.4, 0.8, then 1.0 once capped at 2.0)
    for mean, cap in zip(means, [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0], strict=True):
        assert mean == pytest.approx(cap / 2, rel=0.05)
    assert means[:5] == sorted(means[:5])


def test_backoff_is_reproducible_and_survives_huge_retry_numbers() -> None:
    policy = RetryPolicy()
    assert policy.backoff(3, random.Random(1)) == policy.backoff(3, random.Random(1))
    assert 0.0 <= policy.backoff(100_000, random.Random(1)) <= policy.max_delay_seconds


def test_backoff_counts_retries_from_one() -> None:
    with pytest.raises(ValueError):
        RetryPolicy().backoff(0, random.Random(0))


def test_ratio_allows_exactly_its_share(clock: FakeClock) -> None:
    budget = RetryBudget(BudgetPolicy(ratio=0.2, min_retries_per_second=0.0, window_seconds=10.0), clock)
    for _ in range(100):
        budget.record_request()
    assert spend_all(budget) == 20
    snap = budget.snapshot()
    assert (snap.requests, snap.retries, snap.limit) == (100, 20, 20.0)


def test_no_requests_no_retries_without_a_floor(clock: FakeClock) -> None:
    budget = RetryBudget(BudgetPolicy(ratio=0.2, min_retries_per_second=0.0), clock)
    assert not budget.try_spend()


def test_floor_lets_low_traffic_retry(clock: FakeClock) -> None:
    budget = RetryBudget(BudgetPolicy(ratio=0.2, min_retries_per_second=1.0, window_seconds=10.0), clock)
    for _ in range(5):  # 0.2 * 5 = 1 retry by ratio; the floor gives 1/s * 10 s
        budget.record_request()
    assert spend_all(budget) == 10
    assert budget.snapshot().limit == 10.0


def test_floor_has_no_rounding_slack(clock: FakeClock) -> None:
    budget = RetryBudget(BudgetPolicy(ratio=0.0, min_retries_per_second=0.14, window_seconds=50.0), clock)
    assert spend_all(budget) == 7  # 0.14 * 50 is 7.000000000000001 in floats; still 7 retries


def test_ratio_has_no_rounding_slack(clock: FakeClock) -> None:
    budget = RetryBudget(BudgetPolicy(ratio=0.07, min_retries_per_second=0.0), clock)
    for _ in range(100):
        budget.record_request()
    assert spend_all(budget) == 7  # 0.07 * 100 is 7.000000000000001 in floats


def test_window_expiry_restores_the_budget(clock: FakeClock) -> None:
    budget = RetryBudget(BudgetPolicy(ratio=0.2, min_retries_per_second=0.0, window_seconds=10.0), clock)
    for _ in range(50):
        budget.record_request()
    assert spend_all(budget) == 10
    clock.advance(10.0)
    assert not budget.try_spend()  # the requests left the window with the retries
    for _ in range(50):
        budget.record_request()
    assert spend_all(budget) == 10


def test_floor_budget_comes_back_after_the_window(clock: FakeClock) -> None:
    budget = RetryBudget(BudgetPolicy(ratio=0.2, min_retries_per_second=1.0, window_seconds=10.0), clock)
    assert spend_all(budget) == 10
    clock.advance(5.0)
    assert not budget.try_spend()
    clock.advance(5.0)
    assert spend_all(budget) == 10


def test_full_outage_never_exceeds_the_budget(clock: FakeClock) -> None:
    policy = BudgetPolicy(ratio=0.2, min_retries_per_second=1.0, window_seconds=10.0)
    budget = RetryBudget(policy, clock)
    retry = RetryPolicy(max_attempts=4)
    requests = retries = 0
    for _ in range(600):  # 60 s at 10 ticks/s, 10 requests per tick, every attempt fails
        for _ in range(10):
            budget.record_request()
            requests += 1
            for _ in range(retry.max_attempts - 1):
                if not budget.try_spend():
                    break
                retries += 1
        snap = budget.snapshot()
        assert snap.retries <= snap.limit
        clock.advance(0.1)
    # at most the ratio of all traffic, plus at most one window's worth of floor
    assert retries <= policy.ratio * requests + policy.min_retries_per_second * policy.window_seconds
    assert retries >= policy.ratio * requests * 0.9  # and the budget is actually used


def test_registry_one_budget_per_deployment(clock: FakeClock) -> None:
    budgets = RetryBudgets(BudgetPolicy(min_retries_per_second=0.0), clock)
    a = budgets.get("a")
    assert budgets.get("a") is a
    for _ in range(10):
        a.record_request()
    assert a.try_spend()
    assert not budgets.get("b").try_spend()


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": 0}, {"base_delay_seconds": -0.1}, {"max_delay_seconds": -1.0}]
)
def test_retry_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs", [{"ratio": -0.1}, {"min_retries_per_second": -1.0}, {"window_seconds": 0.0}]
)
def test_budget_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BudgetPolicy(**kwargs)
