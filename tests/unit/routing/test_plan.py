"""plan(): a route's deployments for one call, in the order its strategy gives."""

from __future__ import annotations

import dataclasses

import pytest

from sidecar.config.schema import CapabilityOverrides, Config, Policy
from sidecar.core.errors import ContextTooLongError
from sidecar.core.types import GenerationParams, Reasoning, ResponseFormat
from sidecar.deps import build_routing
from sidecar.routing.breaker import BreakerPolicy, Breakers
from sidecar.routing.plan import AlwaysHealthy, NoCapableDeploymentError, Routing, plan
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


def test_a_budget_deployment_lacking_what_the_call_needs_is_no_capable_deployment() -> None:
    """The quota's budget deployment cannot do JSON Schema: the call is refused as needing what
    no deployment it may use has, not as a prompt too long for a 128k window."""
    clock = FakeClock()
    r, table = routing(clock)
    route = table.resolve("")
    limited = dataclasses.replace(
        route,
        deployments=tuple(
            d.model_copy(update={"capabilities": CapabilityOverrides(json_schema=name == "dear-out")})
            for name, d in zip(PRICES, route.deployments, strict=True)
        ),
    )
    schema = ResponseFormat(kind="json_schema", name="n", schema_json='{"type": "object"}')
    call = dataclasses.replace(
        make_call(clock), params=GenerationParams(response_format=schema), budget_deployment="even"
    )
    with pytest.raises(NoCapableDeploymentError) as info:
        plan(r, limited, call)
    assert info.value.metadata["needs"] == "json_schema"
    assert info.value.metadata["missing"] == "even lacks json_schema"  # not dear-out: the budget's only
    assert [t.deployment for t in plan(r, limited, dataclasses.replace(call, budget_deployment=""))] == [
        "dear-out"
    ]


def test_too_long_names_the_largest_window_the_call_may_use() -> None:
    """The budget's deployment has a 1,000-token window and the prompt is longer: the error names that
    window, not a larger one of a deployment the call may not use."""
    clock = FakeClock()
    r, table = routing(clock)
    route = table.resolve("")
    small = dataclasses.replace(
        route,
        deployments=tuple(
            d.model_copy(update={"context_window": 1000 if name == "even" else 128_000})
            for name, d in zip(PRICES, route.deployments, strict=True)
        ),
    )
    call = dataclasses.replace(make_call(clock, text="word " * 2000), budget_deployment="even")
    with pytest.raises(ContextTooLongError) as info:
        plan(r, small, call)
    assert info.value.metadata["maxContextTokens"] == "1000"


def windows(clock: FakeClock, **small: object) -> tuple[Routing, RouteTable]:
    """Deployments "small" (8,000 tokens, tried first) and "large" (32,000)."""
    policy = Policy.model_validate(
        {
            "default_route": "main",
            "deployments": {
                "small": {"provider": "echo", "model": "s", "context_window": 8_000, **small},
                "large": {"provider": "echo", "model": "l", "context_window": 32_000},
            },
            "routes": {"main": {"deployments": ["small", "large"]}},
        }
    )
    table = RouteTable.from_policy(policy)
    breakers, budgets = Breakers(BreakerPolicy(), clock), RetryBudgets(BudgetPolicy(), clock)
    return Routing(table, breakers, budgets, Stats()), table


DENSE = "{}" * 3_000  # 6,000 characters, about a token each (JSON, code, base64 count like this)


def test_a_short_but_dense_prompt_and_its_answer_go_where_they_fit() -> None:
    """Fewer characters than the smallest window, yet with its max_tokens more tokens than it holds:
    it went to the 8,000-token deployment (counted by characters / 4), whose upstream refuses it
    (context length exceeded: INVALID_ARGUMENT), while the 32,000-token one could answer it."""
    clock = FakeClock()
    r, table = windows(clock)
    call = dataclasses.replace(make_call(clock, text=DENSE), params=GenerationParams(max_tokens=4_000))
    assert r.tokens.prompt_max(call.messages) + 4_000 > 8_000
    assert [t.deployment for t in plan(r, table.resolve(""), call)] == ["large"]


def test_a_call_without_max_tokens_fits_with_each_deployments_default_answer() -> None:
    """The context layer leaves room for each deployment's default_max_tokens (sent to Anthropic and
    Bedrock as the answer's limit): routing counts the same answer."""
    clock = FakeClock()
    r, table = windows(clock, default_max_tokens=4_000)
    call = make_call(clock, text=DENSE)
    assert [t.deployment for t in plan(r, table.resolve(""), call)] == ["large"]


def test_an_anthropic_thinking_budget_is_part_of_the_answer_the_window_must_hold() -> None:
    """Anthropic's max_tokens carries the thinking budget (providers/base max_tokens_sent): 1,000
    asked with 6,000 of thinking goes out as 7,000, which with a 2,000-token prompt overflows the
    8,000-token window; the route's fit counted the 1,000 asked and sent it there, refused."""
    clock = FakeClock()
    anthropic = {
        "provider": "anthropic",
        "base_url": "http://127.0.0.1:9",
        "capabilities": {"reasoning": True},
    }
    r, table = windows(clock, **anthropic)
    thinking = GenerationParams(max_tokens=1_000, reasoning=Reasoning(budget_tokens=6_000))
    call = dataclasses.replace(make_call(clock, text="{}" * 1_000), params=thinking)
    reasons = CapabilityOverrides(reasoning=True)
    large = table.resolve("").deployments[1].model_copy(update={"capabilities": reasons})
    route = dataclasses.replace(table.resolve(""), deployments=(table.resolve("").deployments[0], large))
    assert [t.deployment for t in plan(r, route, call)] == ["large"]


def test_the_latency_explore_share_is_configured_under_policy_routing_latency() -> None:
    raw = {
        "policy": {
            "default_route": "main",
            "deployments": {n: {"provider": "echo", "model": n} for n in ("new", "timed")},
            "routes": {"main": {"deployments": ["new", "timed"], "strategy": "latency"}},
            "routing": {"latency": {"explore_ratio": 0}, "probes": {"enabled": False}},
        }
    }
    clock = FakeClock()
    r = build_routing(Config.model_validate(raw), clock, AlwaysHealthy())
    r.stats.get("timed").first_token(0.5)
    call = make_call(clock)
    route = r.table.resolve("main")
    assert {plan(r, route, call)[0].deployment for _ in range(200)} == {"timed"}  # never explored
    with pytest.raises(ValueError, match="explore_ratio"):
        Config.model_validate({"policy": {**raw["policy"], "routing": {"latency": {"explore_ratio": 1.5}}}})
