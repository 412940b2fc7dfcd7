"""The routing layer's own cost per call, in process: `make bench` runs it after the load benchmark.

A RouteLayer over three deployments and a terminal handler that answers at once, driven by one
coroutine; it reports microseconds of CPU per call for each strategy, with hedging on and off.
The load benchmark (bench.py) measures the whole sidecar; this isolates plan + breaker gate +
bookkeeping, the part health-aware routing adds.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import AsyncGenerator

import uvloop
from calls import CLOCK, bench_call

from sidecar.config.routing import RoutingPolicy
from sidecar.config.schema import Policy
from sidecar.core.types import (
    Call,
    Chunk,
    FinishReason,
    Usage,
)
from sidecar.pipeline.route import RouteLayer
from sidecar.routing.breaker import BreakerPolicy, Breakers
from sidecar.routing.plan import Routing
from sidecar.routing.retry import BudgetPolicy, RetryBudgets
from sidecar.routing.stats import Stats
from sidecar.routing.table import RouteTable

STRATEGIES = ("priority", "weighted", "latency", "cost", "least_busy", "complexity")
FINAL = Chunk(text="ok", finish_reason=FinishReason.STOP, usage=Usage(10, 1))


async def terminal(call: Call) -> AsyncGenerator[Chunk, None]:
    yield FINAL


def layer(strategy: str, hedging: bool) -> RouteLayer:
    route = {"deployments": ["a", "b", "c"], "strategy": strategy, "hedging": {"enabled": hedging}}
    policy = Policy.model_validate(
        {
            "default_route": "r",
            "deployments": {
                n: {"provider": "echo", "model": n, "tags": ["cheap"] if n == "c" else []} for n in "abc"
            },
            "routes": {"r": route},
        }
    )
    defaults = RoutingPolicy()
    routing = Routing(
        table=RouteTable.from_policy(policy),
        breakers=Breakers(BreakerPolicy(**defaults.breaker.model_dump()), CLOCK),
        budgets=RetryBudgets(BudgetPolicy(**defaults.retry_budget.model_dump()), CLOCK),
        stats=Stats(),
        rng=random.Random(1),
    )
    return RouteLayer(terminal, routing=routing, clock=CLOCK)


def call() -> Call:
    return bench_call()


async def measure(handler: RouteLayer, calls: int) -> float:
    """CPU microseconds per call."""
    for _ in range(min(1000, calls)):  # warm-up
        async for _chunk in handler(call()):
            pass
    started = time.process_time()
    for _ in range(calls):
        async for _chunk in handler(call()):
            pass
    return (time.process_time() - started) / calls * 1e6


async def main(calls: int) -> None:
    rows = ["| strategy | hedging off µs/call | hedging on µs/call |", "|---|---|---|"]
    for strategy in STRATEGIES:
        off = await measure(layer(strategy, hedging=False), calls)
        on = await measure(layer(strategy, hedging=True), calls)
        rows.append(f"| {strategy} | {off:.1f} | {on:.1f} |")
    sys.stdout.write(f"Routing layer alone, {calls} calls per cell, 3 deployments, instant terminal:\n\n")
    sys.stdout.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    uvloop.run(main(parser.parse_args().calls))
