"""RouteLayer around a scripted inner handler: each deployment yields N chunks, then raises X."""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

import pytest

from sidecar.config.schema import Policy
from sidecar.core.errors import (
    DeadlineExceededError,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProvidersUnavailableError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RouteNotFoundError,
    StreamInterruptedError,
)
from sidecar.core.types import Call, Chunk, FinishReason, Usage
from sidecar.pipeline.route import RouteLayer
from sidecar.routing.breaker import BreakerPolicy, Breakers
from sidecar.routing.plan import Routing
from sidecar.routing.retry import BudgetPolicy, RetryBudgets
from sidecar.routing.stats import Stats
from sidecar.routing.table import RouteTable
from tests.conftest import FakeClock
from tests.support.calls import make_call


def policy(**route: object) -> Policy:
    return Policy.model_validate(
        {
            "default_route": "main",
            "deployments": {
                name: {"provider": "echo", "model": f"m-{name}", "price": {"input_per_million": 1}}
                for name in ("a", "b", "c")
            },
            "routes": {"main": {"deployments": ["a", "b", "c"], "retry": {"max_attempts": 1}, **route}},
        }
    )


POLICY = policy()
FINAL = Chunk(finish_reason=FinishReason.STOP, usage=Usage(3, 2))


@dataclass
class Script:
    """What each deployment does: chunks to yield, then an optional error; and who was called."""

    plans: dict[str, tuple[list[Chunk], ProviderError | None]]
    clock: FakeClock
    called: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    slept: list[float] = field(default_factory=list)

    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        assert call.target is not None
        name = call.target.deployment
        self.called.append(name)
        chunks, error = self.plans.get(name, ([FINAL], None))
        try:
            for chunk in chunks:
                self.clock.advance(0.01)
                yield chunk
            if error is not None:
                raise error
        finally:
            self.closed.append(name)


def routing(clock: FakeClock, p: Policy = POLICY, breaker: BreakerPolicy | None = None) -> Routing:
    return Routing(
        table=RouteTable.from_policy(p),
        breakers=Breakers(breaker or BreakerPolicy(), clock),
        budgets=RetryBudgets(BudgetPolicy(), clock),
        stats=Stats(),
        rng=random.Random(7),
    )


def layer(script: Script, clock: FakeClock, r: Routing | None = None) -> RouteLayer:
    async def sleep(seconds: float) -> None:
        script.slept.append(seconds)
        clock.advance(seconds)

    return RouteLayer(script, routing=r or routing(clock), clock=clock, sleep=sleep)


async def run(handler: RouteLayer, call: Call) -> list[Chunk]:
    return [c async for c in handler(call)]


async def test_first_deployment_serves(clock: FakeClock) -> None:
    script = Script({}, clock)
    call = make_call(clock)
    assert await run(layer(script, clock), call) == [FINAL]
    assert script.called == ["a"]
    assert [(a.deployment, a.outcome) for a in call.record.attempts] == [("a", "OK")]
    assert call.record.target is not None and call.record.target.deployment == "a"


@pytest.mark.parametrize(
    "error",
    [
        ProviderUnavailableError("503"),
        ProviderRateLimitedError("429", retry_after=2),
        ProviderTimeoutError("slow"),
        ProviderAuthError("401"),
    ],
)
async def test_retryable_failure_before_first_chunk_fails_over(
    clock: FakeClock, error: ProviderError
) -> None:
    script = Script({"a": ([], error)}, clock)
    call = make_call(clock)
    assert await run(layer(script, clock), call) == [FINAL]
    assert script.called == ["a", "b"]
    assert [a.outcome for a in call.record.attempts] == [error.reason, "OK"]


async def test_rejected_request_does_not_fail_over(clock: FakeClock) -> None:
    script = Script({"a": ([], ProviderRejectedError("400"))}, clock)
    with pytest.raises(ProviderRejectedError):
        await run(layer(script, clock), make_call(clock))
    assert script.called == ["a"]


async def test_failure_after_first_chunk_interrupts_with_partial_usage(clock: FakeClock) -> None:
    script = Script(
        {"a": ([Chunk(text="Hello there, "), Chunk(text="friend")], ProviderUnavailableError("reset"))}, clock
    )
    call = make_call(clock, text="one two three")
    out: list[Chunk] = []
    with pytest.raises(StreamInterruptedError) as info:
        async for chunk in layer(script, clock)(call):
            out.append(chunk)
    assert [c.text for c in out] == ["Hello there, ", "friend"]
    assert script.called == ["a"]  # never a second deployment after the first chunk
    meta = info.value.metadata
    assert meta["cause"] == "PROVIDER_UNAVAILABLE"
    assert meta["completionTokens"] == "5" and meta["promptTokens"] == "10"
    assert call.record.usage == Usage(10, 5)


async def test_every_deployment_failing_is_unavailable_with_the_shortest_retry(clock: FakeClock) -> None:
    script = Script(
        {
            "a": ([], ProviderRateLimitedError("429", retry_after=9)),
            "b": ([], ProviderUnavailableError("503", retry_after=4)),
            "c": ([], ProviderRateLimitedError("429")),
        },
        clock,
    )
    call = make_call(clock)
    with pytest.raises(ProvidersUnavailableError) as info:
        await run(layer(script, clock), call)
    assert info.value.retry_after == 4
    assert info.value.metadata["attempts"] == "3"
    assert [a.seconds for a in call.record.attempts] == [0.0, 0.0, 0.0]


async def test_every_deployment_refusing_credentials_is_auth_failed(clock: FakeClock) -> None:
    script = Script({n: ([], ProviderAuthError("401")) for n in "abc"}, clock)
    with pytest.raises(ProviderAuthError):
        await run(layer(script, clock), make_call(clock))


async def test_unknown_route(clock: FakeClock) -> None:
    with pytest.raises(RouteNotFoundError) as info:
        await run(layer(Script({}, clock), clock), make_call(clock, model="nope"))
    assert info.value.metadata == {"model": "nope"}


async def test_expired_deadline_stops_failover(clock: FakeClock) -> None:
    script = Script({"a": ([], ProviderUnavailableError("503"))}, clock)
    call = make_call(clock, timeout=1.0)
    clock.advance(2.0)
    with pytest.raises(DeadlineExceededError):
        await run(layer(script, clock), call)
    assert script.called == []


async def test_caller_closing_mid_stream_closes_the_attempt(clock: FakeClock) -> None:
    script = Script({"a": ([Chunk(text="x"), Chunk(text="y"), FINAL], None)}, clock)
    call = make_call(clock)
    stream = layer(script, clock)(call)
    assert (await anext(stream)).text == "x"
    await stream.aclose()
    assert script.closed == ["a"]
    assert [(a.deployment, a.outcome) for a in call.record.attempts] == [("a", "CANCELLED")]
