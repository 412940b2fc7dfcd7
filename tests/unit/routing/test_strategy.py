from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import pytest

from sidecar.core.types import Message, Price, Role, Target
from sidecar.routing.strategy import (
    STRATEGY_NAMES,
    CallShape,
    Candidate,
    ComplexityPolicy,
    LatencyPolicy,
    StrategyName,
    complexity_score,
    estimate_cost,
    order,
)

FREE = Price()
SHAPE = CallShape(prompt_tokens=100, max_tokens=100, complexity=0.5, budget_usd=None)


def cand(
    position: int,
    *,
    weight: float = 1.0,
    priority: int = 0,
    tags: Sequence[str] = (),
    window: int = 10_000,
    in_flight: int = 0,
    ttft: float | None = None,
    total: float | None = None,
    price: Price = FREE,
) -> Candidate:
    target = Target("chat", f"d{position}", "echo", f"m{position}", price)
    return Candidate(target, position, weight, priority, frozenset(tags), window, in_flight, ttft, total)


def names(ranked: Sequence[Candidate]) -> list[str]:
    return [c.target.deployment for c in ranked]


def rng(seed: int = 7) -> random.Random:
    return random.Random(seed)


# --- context fit --------------------------------------------------------------------------------------


def test_drops_candidates_that_cannot_hold_prompt_plus_max_tokens() -> None:
    cs = [cand(0, window=150), cand(1, window=200), cand(2, window=4000)]
    assert names(order("priority", cs, SHAPE, rng())) == ["d1", "d2"]


def test_long_request_goes_to_the_larger_window_whatever_the_strategy() -> None:
    cs = [cand(0, window=150, priority=0), cand(1, window=4000, priority=9)]
    for strategy in STRATEGY_NAMES:
        assert names(order(strategy, cs, SHAPE, rng())) == ["d1"], strategy


def test_when_none_hold_prompt_plus_max_tokens_keep_those_that_hold_the_prompt() -> None:
    cs = [cand(0, window=50), cand(1, window=150), cand(2, window=120)]
    assert names(order("priority", cs, SHAPE, rng())) == ["d1", "d2"]


def test_when_none_hold_the_prompt_return_empty() -> None:
    cs = [cand(0, window=50), cand(1, window=99)]
    assert order("priority", cs, SHAPE, rng()) == []
    assert order("weighted", [], SHAPE, rng()) == []


# --- priority, least_busy ------------------------------------------------------------------------------


def test_priority_orders_by_priority_then_position() -> None:
    cs = [cand(0, priority=2), cand(1, priority=1), cand(2, priority=2), cand(3, priority=1)]
    assert names(order("priority", cs, SHAPE, rng())) == ["d1", "d3", "d0", "d2"]


def test_priority_ignores_input_order() -> None:
    cs = [cand(2), cand(0), cand(1)]
    assert names(order("priority", cs, SHAPE, rng())) == ["d0", "d1", "d2"]


def test_least_busy_orders_by_in_flight_then_position() -> None:
    cs = [cand(0, in_flight=3), cand(1, in_flight=1), cand(2, in_flight=0), cand(3, in_flight=1)]
    assert names(order("least_busy", cs, SHAPE, rng())) == ["d2", "d1", "d3", "d0"]


# --- weighted ------------------------------------------------------------------------------------------


def test_weighted_returns_every_candidate_with_zero_weights_last_in_position_order() -> None:
    cs = [cand(0, weight=0), cand(1, weight=1), cand(2, weight=0), cand(3, weight=5)]
    for seed in range(50):
        ranked = names(order("weighted", cs, SHAPE, rng(seed)))
        assert sorted(ranked[:2]) == ["d1", "d3"]
        assert ranked[2:] == ["d0", "d2"]


def test_weighted_first_choice_matches_weights() -> None:
    cs = [cand(0, weight=1), cand(1, weight=3), cand(2, weight=6)]
    r, draws = rng(1234), 20_000
    firsts = Counter(order("weighted", cs, SHAPE, r)[0].position for _ in range(draws))
    for position, share in [(0, 0.1), (1, 0.3), (2, 0.6)]:
        assert firsts[position] / draws == pytest.approx(share, abs=0.02)


def test_weighted_second_choice_is_weighted_among_the_rest() -> None:
    cs = [cand(0, weight=1), cand(1, weight=3), cand(2, weight=6)]
    r, draws = rng(99), 20_000
    ranked = [order("weighted", cs, SHAPE, r) for _ in range(draws)]
    after_2 = Counter(x[1].position for x in ranked if x[0].position == 2)
    n = sum(after_2.values())
    assert after_2[1] / n == pytest.approx(0.75, abs=0.03)  # 3 / (1 + 3)


def test_weighted_all_zero_is_position_order() -> None:
    cs = [cand(1, weight=0), cand(0, weight=0)]
    assert names(order("weighted", cs, SHAPE, rng())) == ["d0", "d1"]


# --- latency (power of two choices) --------------------------------------------------------------------


def test_latency_with_two_candidates_puts_lower_ewma_first() -> None:
    cs = [cand(0, ttft=0.9), cand(1, ttft=0.2)]
    for seed in range(20):
        assert names(order("latency", cs, SHAPE, rng(seed))) == ["d1", "d0"]


def test_latency_prefers_lower_ewma_most_of_the_time() -> None:
    cs = [cand(0, ttft=0.8), cand(1, ttft=0.1), cand(2, ttft=0.5), cand(3, ttft=1.2)]
    r, draws = rng(42), 4000
    firsts = Counter(order("latency", cs, SHAPE, r)[0].position for _ in range(draws))
    # with P2C the fastest wins whenever it is one of the two drawn: 3 of 6 pairs
    assert firsts[1] / draws == pytest.approx(0.5, abs=0.04)
    assert firsts[1] > firsts[2] > firsts[0]
    assert firsts[3] == 0  # the slowest can never win a pair


def test_latency_ttft_wins_over_total_and_total_is_the_fallback() -> None:
    slow_total, fast = cand(0, total=2.0), cand(1, ttft=0.3, total=5.0)
    for seed in range(20):
        assert order("latency", [slow_total, fast], SHAPE, rng(seed))[0] is fast


def test_latency_ranks_a_deployment_never_timed_behind_every_timed_one() -> None:
    """Unknown latency counted as 0 (the best): a deployment that never answered (new, or failing
    every call so it never gets a time) won every pair, ahead of a known-fast one."""
    new, slow, fast = cand(0), cand(1, ttft=2.0), cand(2, ttft=0.3)
    none = LatencyPolicy(explore_ratio=0.0)
    for seed in range(50):
        assert order("latency", [new, slow, fast], SHAPE, rng(seed), latency=none)[-1] is new
        assert order("latency", [new, fast], SHAPE, rng(seed), latency=none)[0] is fast


def test_latency_explores_a_never_timed_deployment_on_a_small_share_of_calls() -> None:
    """So a new deployment gets its first answers (and a time) and a failing one costs few calls."""
    new, fast = cand(0), cand(1, ttft=0.3)
    r, draws = rng(42), 4000
    firsts = Counter(order("latency", [new, fast], SHAPE, r)[0].position for _ in range(draws))
    assert firsts[0] / draws == pytest.approx(LatencyPolicy().explore_ratio, abs=0.015)


def test_latency_with_nothing_timed_yet_has_nothing_to_explore_against() -> None:
    cs = [cand(i) for i in range(4)]
    for seed in range(20):  # all unknown: every pair ties, settled by position, as before
        assert sorted(names(order("latency", cs, SHAPE, rng(seed)))) == sorted(names(cs))


def test_latency_returns_every_candidate_once() -> None:
    cs = [cand(i, ttft=i / 10) for i in range(7)]
    assert sorted(names(order("latency", cs, SHAPE, rng()))) == sorted(names(cs))


# --- cost ----------------------------------------------------------------------------------------------


def test_estimate_cost_uses_prompt_at_input_price_and_max_tokens_at_output_price() -> None:
    c = cand(0, price=Price(input_per_million=2.0, output_per_million=10.0))
    shape = CallShape(prompt_tokens=1000, max_tokens=500, complexity=0.0, budget_usd=None)
    assert estimate_cost(c, shape) == pytest.approx((1000 * 2.0 + 500 * 10.0) / 1_000_000)


def test_cost_orders_cheapest_first_ties_by_position() -> None:
    cs = [
        cand(0, price=Price(5, 15)),
        cand(1, price=Price(1, 2)),
        cand(2, price=Price(0.5, 1)),
        cand(3, price=Price(1, 2)),
    ]
    assert names(order("cost", cs, SHAPE, rng())) == ["d2", "d1", "d3", "d0"]


def test_cost_puts_over_budget_last_without_dropping() -> None:
    cs = [cand(0, price=Price(1, 1)), cand(1, price=Price(1000, 1000)), cand(2, price=Price(10, 10))]
    shape = replace(SHAPE, budget_usd=0.001)  # 200 tokens: d0 costs 0.0002, d2 0.002, d1 0.2
    assert names(order("cost", cs, shape, rng())) == ["d0", "d2", "d1"]
    cs_unaffordable = [cand(0, price=Price(500, 500)), cand(1, price=Price(100, 100))]
    assert names(order("cost", cs_unaffordable, shape, rng())) == ["d1", "d0"]


# --- complexity ----------------------------------------------------------------------------------------

TIERED = [
    cand(0, priority=0, tags=["strong"]),
    cand(1, priority=1, tags=["cheap"]),
    cand(2, priority=2),
    cand(3, priority=0, tags=["cheap", "fast"]),
]


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (0.1, ["d3", "d1", "d0", "d2"]),  # simple: cheap first, priority order within groups
        (0.5, ["d0", "d3", "d1", "d2"]),  # middle: plain priority order
        (0.9, ["d0", "d2", "d3", "d1"]),  # complex: non-cheap first
    ],
)
def test_complexity_strategy_groups_by_cheap_tag(score: float, expected: list[str]) -> None:
    assert names(order("complexity", TIERED, replace(SHAPE, complexity=score), rng())) == expected


def test_complexity_strategy_honours_the_policy() -> None:
    policy = ComplexityPolicy(simple_below=0.6, complex_above=0.8, cheap_tag="fast")
    shape = replace(SHAPE, complexity=0.5)
    assert names(order("complexity", TIERED, shape, rng(), policy)) == ["d3", "d0", "d1", "d2"]


def test_complexity_policy_rejects_inverted_thresholds() -> None:
    with pytest.raises(ValueError):
        ComplexityPolicy(simple_below=0.8, complex_above=0.2)


def user(text: str) -> Message:
    return Message(Role.USER, text)


LONG_MULTIPART = """I'm migrating our billing service from Flask to FastAPI and hit several problems.
Here is the current handler:

```python
@app.route("/invoices/<int:invoice_id>", methods=["POST"])
def update_invoice(invoice_id):
    data = request.get_json()
    invoice = Invoice.query.get_or_404(invoice_id)
    invoice.amount = data["amount"]
    db.session.commit()
    return jsonify(invoice.to_dict())
```

1. How should I convert this to an async FastAPI endpoint with pydantic validation?
2. Why does SQLAlchemy complain about the session being used across threads?
3. What is the best way to keep the old and new services in sync during the migration?
"""


def test_complexity_score_examples() -> None:
    assert complexity_score([user("hi")]) < 0.2
    assert complexity_score([user(LONG_MULTIPART)]) > 0.7
    assert complexity_score([]) == 0.0
    assert 0.2 <= complexity_score([user("What is the capital of France?")]) < 0.35


def test_complexity_score_reads_the_last_user_message() -> None:
    history = [user(LONG_MULTIPART), Message(Role.ASSISTANT, "Here you go."), user("thanks")]
    assert complexity_score(history) < 0.35
    # a trailing assistant turn only adds its tokens to the conversation term
    trailing = complexity_score([*history, Message(Role.ASSISTANT, "ok")])
    assert trailing == pytest.approx(complexity_score(history), abs=0.01)


def test_complexity_score_counts_structure_and_questions() -> None:
    plain = "Tell me about the weather today in the city"
    table = plain + "\n| a | b |\n|---|---|\n"
    as_json = plain + ' {"city": "Oslo"}'
    bullets = plain + "\n- one\n- two\n"
    for structured in (table, as_json, bullets):
        assert complexity_score([user(structured)]) > complexity_score([user(plain)])
    assert complexity_score([user("Why? How? When?")]) > complexity_score([user("Why?")])


def test_complexity_score_is_bounded_and_deterministic() -> None:
    huge = LONG_MULTIPART * 200 + "| a |\n| b |\n" + '{"k": 1}' + "?" * 50
    score = complexity_score([user(huge)] * 3)
    assert 0.0 <= score <= 1.0
    assert complexity_score([user(LONG_MULTIPART)]) == complexity_score([user(LONG_MULTIPART)])


@pytest.mark.timeout(10)
@pytest.mark.parametrize("blank", ["\n", " \n", "\n\t", ". \n"], ids=repr)
def test_complexity_score_of_a_long_whitespace_run_takes_linear_time(blank: str) -> None:
    """The score is computed on the event loop for every call of a complexity route, from the
    caller's own text: its patterns let a whitespace run spanning lines be tried from every line in
    it, so 20,000 newlines took 60 s of CPU (every other call of the sidecar stalled behind it) and
    100,000 would have taken half an hour. They are bounded now: milliseconds for 200,000 lines."""
    run = blank * 200_000
    assert complexity_score([user(run + "what is it?\n- a\n- b\n| x |\n| y |")]) > complexity_score(
        [user(run)]
    )


# --- determinism, errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_same_seed_same_order(strategy: StrategyName) -> None:
    cs = [
        cand(i, weight=i % 3, priority=i % 2, ttft=(i * 7 % 5) / 10 or None, in_flight=i % 4)
        for i in range(8)
    ]
    first = order(strategy, cs, SHAPE, rng(5))
    assert order(strategy, cs, SHAPE, rng(5)) == first
    assert sorted(c.position for c in first) == list(range(8))


def test_random_strategies_vary_with_the_seed() -> None:
    cs = [cand(i) for i in range(6)]
    for strategy in ("weighted", "latency"):
        orders = {tuple(names(order(strategy, cs, SHAPE, rng(seed)))) for seed in range(20)}
        assert len(orders) > 5


def test_unknown_strategy_raises() -> None:
    with pytest.raises(ValueError, match="unknown routing strategy"):
        order("fastest", [cand(0)], SHAPE, rng())  # type: ignore[arg-type]
