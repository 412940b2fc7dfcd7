"""plan(): a route's deployments for one call, in the order its strategy gives."""

from __future__ import annotations

import dataclasses

from sidecar.config.schema import Policy
from sidecar.core.types import GenerationParams
from sidecar.routing.breaker import BreakerPolicy, Breakers
from sidecar.routing.plan import Routing, plan
from sidecar.routing.retry import BudgetPolicy, RetryBudgets
from sidecar.routing.stats import Stats
from sidecar.routing.table import RouteTable
from tests.conftest import FakeClock
from tests.support.calls import make_call

# "dear-out": cheaper prompt, far dearer answer; "even": a little dearer prompt, cheap answer
PRICES = {"dear-out": (1.0, 100.0), "even": (2.0, 2.0)}


def routing(clock: FakeClock, **deployment: object) -> tuple[Routing, RouteTable]:
    policy = Policy.model_validate(
        {
            "default_route": "main",
            "deployments": {
                name: {
                    "provider": "echo",
                    "model": name,
                    "price": {"input_per_million": i, "output_per_million": o},
                    **deployment,
                }
                for name, (i, o) in PRICES.items()
            },
            "routes": {"main": {"deployments": list(PRICES), "strategy": "cost"}},
        }
    )
    table = RouteTable.from_policy(policy)
    return (
        Routing(table, Breakers(BreakerPolicy(), clock), RetryBudgets(BudgetPolicy(), clock), Stats()),
        table,
    )


def test_cost_without_max_tokens_prices_the_answer_at_the_deployments_default() -> None:
    """A call that sets no max_tokens is answered with up to each deployment's default_max_tokens:
    the cost order prices that answer, not a free one (which ranked by the prompt's price alone)."""
    clock = FakeClock()
    r, table = routing(clock, default_max_tokens=500)
    call = make_call(clock, text="word " * 2000)  # about 2,500 prompt tokens
    assert [t.deployment for t in plan(r, table.resolve(""), call)] == ["even", "dear-out"]

    short = dataclasses.replace(call, params=GenerationParams(max_tokens=1))  # the prompt dominates
    assert [t.deployment for t in plan(r, table.resolve(""), short)] == ["dear-out", "even"]
