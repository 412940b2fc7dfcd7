"""RouteLayer around a scripted inner handler: each deployment yields N chunks, then raises X."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sidecar.config.schema import Policy
from sidecar.core.errors import (
    ContextTooLongError,
    DeadlineExceededError,
    ModelOutputError,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProvidersUnavailableError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RouteNotFoundError,
    StreamInterruptedError,
    UserKeyRateLimitedError,
)
from sidecar.core.types import Call, Chunk, FinishReason, GenerationParams, Reasoning, ToolCallDelta, Usage
from sidecar.pipeline.route import RouteLayer
from sidecar.pipeline.upstream import UpstreamCall
from sidecar.routing.breaker import BreakerPolicy, Breakers, BreakerState
from sidecar.routing.plan import Routing
from sidecar.routing.retry import BudgetPolicy, RetryBudgets
from sidecar.routing.stats import Stats
from sidecar.routing.table import RouteTable
from tests.conftest import FakeClock
from tests.support.calls import make_call


@pytest.fixture
def clock() -> FakeClock:
    """Backoffs, first-token timeouts and hedge delays pass on virtual time."""
    return FakeClock(auto_advance=True)


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

    plans: dict[str, tuple[list[Chunk], Exception | None]]
    clock: FakeClock
    called: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)

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
    return RouteLayer(script, routing=r or routing(clock), clock=clock)


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


async def test_retry_on_the_same_deployment_after_a_jittered_backoff(clock: FakeClock) -> None:
    p = policy(retry={"max_attempts": 3, "base_delay_seconds": 0.1, "max_delay_seconds": 1.0})
    script = Script({"a": ([], ProviderUnavailableError("503"))}, clock)
    call = make_call(clock)
    r = routing(clock, p)
    assert await run(layer(script, clock, r), call) == [FINAL]
    assert script.called == ["a", "a", "a", "b"]
    assert len(clock.sleeps) == 2 and 0 <= clock.sleeps[0] <= 0.1 and 0 <= clock.sleeps[1] <= 0.2
    assert [a.outcome for a in call.record.attempts] == ["PROVIDER_UNAVAILABLE"] * 3 + ["OK"]


async def test_rate_limited_is_not_retried_and_opens_the_breaker(clock: FakeClock) -> None:
    p = policy(retry={"max_attempts": 3})
    script = Script({"a": ([], ProviderRateLimitedError("429", retry_after=20))}, clock)
    r = routing(clock, p)
    assert await run(layer(script, clock, r), make_call(clock)) == [FINAL]
    assert script.called == ["a", "b"]
    assert r.breakers.get("a").open_for() == pytest.approx(20 - 0.01)  # b took 0.01 s
    script.called.clear()
    clock.advance(5)
    assert await run(layer(script, clock, r), make_call(clock)) == [FINAL]
    assert script.called == ["b"]  # a is cooling down: not even tried


async def test_retries_stop_when_the_budget_is_spent(clock: FakeClock) -> None:
    p = policy(retry={"max_attempts": 5, "base_delay_seconds": 0.0})
    script = Script({n: ([], ProviderUnavailableError("503")) for n in "abc"}, clock)
    r = Routing(
        table=RouteTable.from_policy(p),
        breakers=Breakers(BreakerPolicy(min_requests=1000), clock),
        budgets=RetryBudgets(BudgetPolicy(ratio=0.5, min_retries_per_second=0), clock),
        stats=Stats(),
        rng=random.Random(1),
    )
    for _ in range(10):
        with pytest.raises(ProvidersUnavailableError):
            await run(layer(script, clock, r), make_call(clock))
    per_deployment = {n: script.called.count(n) for n in "abc"}
    assert all(count <= 10 + 5 for count in per_deployment.values()), (
        per_deployment
    )  # 10 requests, 50% retries


@pytest.mark.parametrize("ends", ["ok", "broken"])
async def test_a_call_admitted_before_the_trip_does_not_decide_the_half_open_breaker(
    clock: FakeClock, ends: str
) -> None:
    """A long stream started while the breaker was closed; other calls' failures trip it; it turns
    half-open; then the long stream ends. Its outcome is not a trial's: the breaker stays half-open
    for its trial calls (a success closed it with no trial, a failure reopened it)."""
    chunks = [Chunk(text="one "), Chunk(text="two"), FINAL]
    error = ProviderUnavailableError("reset") if ends == "broken" else None
    script = Script({"a": (chunks, error)}, clock)
    policy = BreakerPolicy(min_requests=2, failure_ratio=0.5, cooldown_seconds=30, half_open_trials=1)
    r = routing(clock, breaker=policy)
    stream = layer(script, clock, r)(make_call(clock))
    assert (await anext(stream)).text == "one "
    breaker = r.breakers.get("a")
    breaker.record_failure()  # two other calls fail: it trips
    breaker.record_failure()
    clock.advance(31)
    assert breaker.state() is BreakerState.HALF_OPEN
    with contextlib.suppress(StreamInterruptedError):
        async for _ in stream:
            pass
    assert breaker.state() is BreakerState.HALF_OPEN
    assert breaker.allow()  # its one trial permit is still there


async def test_open_breaker_is_skipped_and_reported_with_its_cooldown(clock: FakeClock) -> None:
    r = routing(clock, breaker=BreakerPolicy(min_requests=1, failure_ratio=0.5, cooldown_seconds=30))
    for name in "abc":
        r.breakers.get(name).record_failure()
    script = Script({}, clock)
    with pytest.raises(ProvidersUnavailableError) as info:
        await run(layer(script, clock, r), make_call(clock))
    assert script.called == []
    assert info.value.retry_after == 30
    clock.advance(31)  # half-open: a trial call goes through and closes it again after enough successes
    assert await run(layer(script, clock, r), make_call(clock)) == [FINAL]
    assert script.called == ["a"]


async def test_first_token_timeout_falls_back(clock: FakeClock) -> None:
    class Slow(Script):
        async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
            assert call.target is not None
            if call.target.deployment == "a":
                await self.clock.sleep(10)  # cancelled by the first-token timeout (virtual time)
            async for chunk in super().__call__(call):
                yield chunk

    script = Slow({}, clock)
    call = make_call(clock)
    out = await run(layer(script, clock, routing(clock, policy(first_token_timeout_seconds=0.05))), call)
    assert out == [FINAL]
    assert [(a.deployment, a.outcome) for a in call.record.attempts] == [
        ("a", "PROVIDER_TIMEOUT"),
        ("b", "OK"),
    ]


async def test_strategy_orders_the_attempts(clock: FakeClock) -> None:
    p = Policy.model_validate(
        {
            "default_route": "main",
            "deployments": {
                "dear": {"provider": "echo", "model": "x", "price": {"input_per_million": 9}},
                "cheap": {"provider": "echo", "model": "y", "price": {"input_per_million": 1}},
            },
            "routes": {"main": {"deployments": ["dear", "cheap"], "strategy": "cost"}},
        }
    )
    script = Script({}, clock)
    await run(layer(script, clock, routing(clock, p)), make_call(clock))
    assert script.called == ["cheap"]


async def test_prompt_too_long_for_every_window(clock: FakeClock) -> None:
    p = Policy.model_validate(
        {
            "default_route": "main",
            "deployments": {"small": {"provider": "echo", "model": "x", "context_window": 5}},
            "routes": {"main": {"deployments": ["small"]}},
        }
    )
    with pytest.raises(ContextTooLongError) as info:
        await run(
            layer(Script({}, clock), clock, routing(clock, p)), make_call(clock, text="a b c d e f g h")
        )
    assert info.value.violations[0].field == "messages"


async def test_a_request_the_upstream_refused_is_not_the_deployments_last_error(clock: FakeClock) -> None:
    """ListModels shows a deployment's last error; a caller's request the upstream rightly refused
    (HTTP 400, e.g. a prompt too long for it) says nothing about the deployment's health."""
    script = Script({"a": ([], ProviderRejectedError("400: context too long"))}, clock)
    r = routing(clock)
    with pytest.raises(ProviderRejectedError):
        await run(layer(script, clock, r), make_call(clock))
    assert r.stats.get("a").snapshot().last_error is None


@pytest.mark.parametrize("first", [False, True], ids=["before-first-chunk", "after-first-chunk"])
async def test_output_the_model_wrote_wrong_is_not_the_deployments_failure(
    clock: FakeClock, first: bool
) -> None:
    """A malformed function call is the call's failed answer: the route falls back to the next
    deployment without a retry on this one (STREAM_INTERRUPTED once a chunk went out), and neither
    the breaker nor the deployment's last error counts it: one tenant's prompt does not take a
    shared deployment out of service. A half-open breaker's trial permit is given back."""
    chunks = [Chunk(text="I'll")] if first else []
    script = Script({"a": (chunks, ModelOutputError("MALFORMED_FUNCTION_CALL"))}, clock)
    r = routing(clock, policy(retry={"max_attempts": 2}), BreakerPolicy(min_requests=1, half_open_trials=1))
    for _ in range(5):
        if first:
            with pytest.raises(StreamInterruptedError) as info:
                await run(layer(script, clock, r), make_call(clock))
            assert info.value.metadata["cause"] == "MODEL_OUTPUT_UNUSABLE"
        else:
            assert await run(layer(script, clock, r), make_call(clock)) == [FINAL]
    assert script.called == (["a"] * 5 if first else ["a", "b"] * 5)  # never retried on "a"
    breaker = r.breakers.get("a")
    assert breaker.state() is BreakerState.CLOSED and breaker.snapshot().failures == 0
    assert r.stats.get("a").snapshot().last_error is None
    breaker.record_failure()  # the deployment's own failure trips it; its cooldown passes
    clock.advance(31)
    assert breaker.allow() and breaker.state() is BreakerState.HALF_OPEN
    breaker.release()
    with contextlib.suppress(StreamInterruptedError):
        await run(layer(script, clock, r), make_call(clock))
    assert breaker.state() is BreakerState.HALF_OPEN and breaker.allow()  # the trial permit is back


async def test_deployment_stats_follow_attempts(clock: FakeClock) -> None:
    script = Script({"a": ([], ProviderTimeoutError("slow"))}, clock)
    r = routing(clock)
    await run(layer(script, clock, r), make_call(clock))
    a, b = r.stats.get("a").snapshot(), r.stats.get("b").snapshot()
    assert a.last_error == "PROVIDER_TIMEOUT" and a.in_flight == 0
    assert b.ewma_total is not None and b.ewma_ttft is not None and b.last_error is None


@dataclass
class Delayed(Script):
    """Deployments listed in `delays` wait that long (virtual time) before their first chunk."""

    delays: dict[str, float] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        assert call.target is not None
        name = call.target.deployment
        self.started.append(name)
        try:
            await self.clock.sleep(self.delays.get(name, 0.0))
        except asyncio.CancelledError:
            self.cancelled.append(name)
            raise
        async for chunk in super().__call__(call):
            yield chunk


def hedged(**hedging: object) -> Policy:
    return policy(
        hedging={"enabled": True, "min_delay_seconds": 0.01, "default_delay_seconds": 0.02, **hedging}
    )


async def test_a_slow_first_deployment_is_hedged_and_the_loser_cancelled(clock: FakeClock) -> None:
    script = Delayed({}, clock, delays={"a": 5.0})
    call = make_call(clock)
    assert await run(layer(script, clock, routing(clock, hedged())), call) == [FINAL]
    assert script.started == ["a", "b"]
    assert script.cancelled == ["a"]  # the loser's upstream call was cancelled
    assert sorted((a.deployment, a.outcome) for a in call.record.attempts) == [
        ("a", "HEDGE_LOST"),
        ("b", "OK"),
    ]
    assert call.record.target is not None and call.record.target.deployment == "b"


async def test_no_hedge_when_the_first_answers_in_time(clock: FakeClock) -> None:
    chunks = [Chunk(text="one "), Chunk(text="two"), FINAL]
    script = Delayed({"a": (chunks, None)}, clock)
    call = make_call(clock)
    assert await run(layer(script, clock, routing(clock, hedged(default_delay_seconds=5.0))), call) == chunks
    assert script.started == ["a"]
    assert [(a.deployment, a.outcome) for a in call.record.attempts] == [("a", "OK")]


async def test_both_hedged_deployments_failing_moves_to_the_third(clock: FakeClock) -> None:
    script = Delayed(
        {"a": ([], ProviderUnavailableError("503")), "b": ([], ProviderTimeoutError("slow"))}, clock
    )
    script.delays = {"a": 0.05}
    call = make_call(clock)
    assert await run(layer(script, clock, routing(clock, hedged())), call) == [FINAL]
    assert sorted(script.called) == ["a", "b", "c"]
    assert call.record.target is not None and call.record.target.deployment == "c"


@pytest.mark.parametrize("rejects", ["a", "b"])
async def test_a_request_rejected_during_a_hedge_race_is_not_tried_further(
    clock: FakeClock, rejects: str
) -> None:
    """A 400 from either racer ends the call as it does unhedged: the other racer is cancelled and
    no further deployment gets the request (which went on to c, or became PROVIDERS_UNAVAILABLE)."""
    other = "b" if rejects == "a" else "a"
    script = Delayed(
        {rejects: ([], ProviderRejectedError("400")), other: ([], ProviderUnavailableError("503"))},
        clock,
        delays={rejects: 0.05, other: 0.1},
    )
    call = make_call(clock)
    with pytest.raises(ProviderRejectedError):
        await run(layer(script, clock, routing(clock, hedged())), call)
    assert sorted(script.started) == ["a", "b"] and "c" not in script.called
    assert script.cancelled == [other]
    assert sorted((a.deployment, a.outcome) for a in call.record.attempts) == sorted(
        [(rejects, "PROVIDER_REJECTED"), (other, "CANCELLED")]
    )


async def test_a_hedge_whose_user_key_is_paused_there_does_not_end_the_primary(clock: FakeClock) -> None:
    """A hedge to a deployment where the user's own key is rate limited (its Retry-After pause:
    USER_KEY_RATE_LIMITED at once, the upstream not asked) is that key's matter on that deployment,
    not the request's: the primary still racing answers the call. It ended the call with
    USER_KEY_RATE_LIMITED and cancelled a primary that went on to answer."""
    paused = UserKeyRateLimitedError("the user's own echo key is rate limited", retry_after=30.0)
    script = Delayed({"b": ([], paused)}, clock, delays={"a": 0.5})
    call = make_call(clock)
    assert await run(layer(script, clock, routing(clock, hedged())), call) == [FINAL]
    assert script.started == ["a", "b"] and script.cancelled == []
    assert call.record.target is not None and call.record.target.deployment == "a"


async def test_a_paused_user_key_ends_a_hedged_call_when_no_racer_answers(clock: FakeClock) -> None:
    """Deferred, not dropped: when the primary fails too, the call ends as it would unhedged, the
    route moving on from the failed primary to the deployment where the key is paused."""
    paused = UserKeyRateLimitedError("the user's own echo key is rate limited", retry_after=30.0)
    script = Delayed(
        {"a": ([], ProviderUnavailableError("503")), "b": ([], paused)}, clock, delays={"a": 0.5}
    )
    call = make_call(clock)
    with pytest.raises(UserKeyRateLimitedError):
        await run(layer(script, clock, routing(clock, hedged())), call)
    assert "c" not in script.called


@dataclass
class Answering:
    """A provider answering a unary call whole after `delay` (virtual time): one final chunk."""

    clock: FakeClock
    delay: float
    usage: Usage

    async def generate(self, req: object, *, deadline: object) -> AsyncGenerator[Chunk, None]:
        await self.clock.sleep(self.delay)
        yield Chunk(text=f"{self.usage.prompt_tokens}", finish_reason=FinishReason.STOP, usage=self.usage)


async def test_a_hedge_race_both_answer_at_once_reports_the_winners_usage(clock: FakeClock) -> None:
    """Both racers' unary answers (one final chunk each) arrive together: the call's usage, finish
    reason and cost are the served attempt's, never the loser's (which finished too, unseen)."""
    providers = {
        "a": Answering(clock, 0.05, Usage(3, 2)),  # the hedge starts at 0.02 s; b answers at 0.05 s too
        "b": Answering(clock, 0.03, Usage(300, 200)),
    }
    for _ in range(6):
        call = make_call(clock, stream=False)
        route = RouteLayer(UpstreamCall(providers), routing=routing(clock, hedged()), clock=clock)  # type: ignore[arg-type]
        [chunk] = await run(route, call)
        assert call.record.target is not None
        winner = providers[call.record.target.deployment].usage
        assert chunk.usage == winner
        assert call.record.usage == winner
        assert sorted(a.outcome for a in call.record.attempts) == ["HEDGE_LOST", "OK"]


async def test_the_hedge_waits_for_the_observed_p95(clock: FakeClock) -> None:
    r = routing(clock, hedged(default_delay_seconds=0.01))
    for _ in range(20):
        r.stats.get("a").first_token(5.0)  # a is usually slow to start: hedge only after 5 s
    script = Delayed({}, clock, delays={"a": 0.05})
    await run(layer(script, clock, r), make_call(clock))
    assert script.started == ["a"]


async def test_an_interrupted_stream_estimates_the_prompt_as_its_deployment_counts_it(
    clock: FakeClock, encodings_dir: Path
) -> None:
    """The deployment's own tokenizer and chat framing, not the generic estimate (issue 20)."""
    from sidecar.config.schema import DeploymentConfig
    from sidecar.context.tokenizer import Tokenizers

    tokens = Tokenizers.build(
        {"a": DeploymentConfig.model_validate({"provider": "openai", "model": "gpt-4"})}, encodings_dir
    )
    r = dataclasses.replace(routing(clock), tokens=tokens)
    script = Script(
        {"a": ([Chunk(text="Hello there, "), Chunk(text="friend")], ProviderUnavailableError("reset"))}, clock
    )
    call = make_call(clock, text="one two three")
    with pytest.raises(StreamInterruptedError) as info:
        await run(layer(script, clock, r), call)
    expected = tokens.prompt("a", call.messages)
    assert expected == 3 + 3 + 1 + 3  # priming, framing, "user", the three words
    assert info.value.metadata["promptTokens"] == str(expected)
    assert call.record.usage == Usage(
        expected, tokens.text("a", "Hello there, ") + tokens.text("a", "friend")
    )


async def test_providers_unavailable_names_deployments_and_reasons_never_upstream_text(
    clock: FakeClock,
) -> None:
    """Defect 12: the upstream's words (which can echo anything) stay in the sidecar's log."""
    canary = "upstream says: sk-canary-0123456789 internal host db-7"
    script = Script(
        {
            "a": ([], ProviderUnavailableError(f"upstream HTTP 503: {canary}")),
            "b": ([], ProviderTimeoutError(canary)),
            "c": ([], ProviderUnavailableError(canary)),
        },
        clock,
    )
    with pytest.raises(ProvidersUnavailableError) as info:
        await run(layer(script, clock), make_call(clock))
    assert "canary" not in info.value.message and "db-7" not in info.value.message
    assert "a: PROVIDER_UNAVAILABLE, b: PROVIDER_TIMEOUT, c: PROVIDER_UNAVAILABLE" in info.value.message


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "unary"])
async def test_an_answer_without_usage_is_charged_the_sidecars_count(clock: FakeClock, stream: bool) -> None:
    """An upstream that reports no usage (an OpenAI-compatible server ignoring include_usage) is
    counted by the sidecar, as a stream cut short is: never a free answer."""
    unreported = Chunk(finish_reason=FinishReason.STOP)
    chunks = [Chunk(text="Hello there, "), Chunk(text="friend"), unreported]
    if not stream:
        chunks = [Chunk(text="Hello there, friend", finish_reason=FinishReason.STOP)]
    script = Script({"a": (chunks, None)}, clock)
    call = make_call(clock, text="one two three")
    out = await run(layer(script, clock), call)
    counted = Usage(10, 5 if stream else 4)  # the estimate counts each delivered piece
    assert out[-1].usage == counted
    assert call.record.usage == counted
    assert [a.outcome for a in call.record.attempts] == ["OK"]


async def test_reported_usage_is_passed_on_as_reported(clock: FakeClock) -> None:
    script = Script({"a": ([Chunk(text="Hello there, friend"), FINAL], None)}, clock)
    call = make_call(clock, text="one two three")
    out = await run(layer(script, clock), call)
    assert out[-1] is FINAL


async def test_a_deadline_cutting_a_started_stream_records_what_was_delivered(clock: FakeClock) -> None:
    """The ledger and metrics read the call's usage: a stream the caller's deadline cut after text
    went out used its prompt and that text (as the quota layer charges it), not nothing."""
    cut = DeadlineExceededError("the call's deadline passed while waiting upstream")
    script = Script({"a": ([Chunk(text="Hello there, "), Chunk(text="friend")], cut)}, clock)
    call = make_call(clock, text="one two three")
    with pytest.raises(DeadlineExceededError):
        await run(layer(script, clock), call)
    assert call.record.usage == Usage(10, 5)
    assert [a.outcome for a in call.record.attempts] == ["DEADLINE_EXCEEDED"]


async def test_a_cancelled_started_stream_records_what_was_delivered(clock: FakeClock) -> None:
    waiting = asyncio.Event()

    async def inner(call: Call) -> AsyncGenerator[Chunk, None]:
        yield Chunk(text="Hello there, ")
        waiting.set()
        await asyncio.Event().wait()  # the upstream says nothing more; the caller cancels
        yield FINAL

    call = make_call(clock, text="one two three")
    consumer = asyncio.ensure_future(run(RouteLayer(inner, routing=routing(clock), clock=clock), call))
    await waiting.wait()
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert call.record.usage == Usage(10, 4)  # 'Hello there, ' in the test tokenizer
    assert [a.outcome for a in call.record.attempts] == ["CANCELLED"]


async def test_closing_after_the_final_chunk_keeps_the_reported_usage(clock: FakeClock) -> None:
    script = Script({"a": ([Chunk(text="x"), FINAL, Chunk(text="after the end")], None)}, clock)
    call = make_call(clock)
    stream = layer(script, clock)(call)
    assert [(await anext(stream)).text, (await anext(stream)).finish_reason] == ["x", FinishReason.STOP]
    call.record.upstream_finished(FinishReason.STOP, FINAL.usage)  # as the terminal handler reports it
    await stream.aclose()
    assert call.record.usage == FINAL.usage


@pytest.mark.parametrize("raced", [False, True], ids=["before-the-hedge", "mid-race"])
async def test_a_caller_cancelling_a_hedged_call_is_not_a_hedge_lost(raced: bool) -> None:
    """HEDGE_LOST (and sidecar_hedges_total) means another attempt won the race; a caller that
    went away ended its attempts as CANCELLED, whether the backup had started or not."""
    clock = FakeClock()  # moved by hand: the cancel lands while the attempts wait
    script = Delayed({}, clock, delays={"a": 5.0, "b": 5.0})
    call = make_call(clock)
    r = routing(clock, hedged(default_delay_seconds=0.02, min_delay_seconds=0.02))
    consumer = asyncio.ensure_future(run(layer(script, clock, r), call))
    expected = ["a", "b"] if raced else ["a"]
    if raced:
        while not script.started:  # noqa: ASYNC110 - the attempts start in tasks the layer owns
            await asyncio.sleep(0)
        clock.advance(0.02)
    while script.started != expected:  # noqa: ASYNC110 - as above
        await asyncio.sleep(0)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert sorted((a.deployment, a.outcome) for a in call.record.attempts) == [
        (name, "CANCELLED") for name in expected
    ]


async def test_a_first_token_timeout_falls_back_without_retrying_the_slow_one(clock: FakeClock) -> None:
    """With retries allowed, the deployment that missed its first-token deadline was tried again
    first (twice the timeout before the fallback the route's setting promises)."""

    class Slow(Script):
        async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
            assert call.target is not None
            if call.target.deployment == "a":
                await self.clock.sleep(10)
            async for chunk in super().__call__(call):
                yield chunk

    script = Slow({}, clock)
    call = make_call(clock)
    route = policy(first_token_timeout_seconds=0.05, retry={"max_attempts": 3, "base_delay_seconds": 0.001})
    out = await run(layer(script, clock, routing(clock, route)), call)
    assert out == [FINAL]
    assert [(a.deployment, a.outcome) for a in call.record.attempts] == [
        ("a", "PROVIDER_TIMEOUT"),
        ("b", "OK"),
    ]


# a tool call streamed in pieces, and the model's thinking: output the upstream bills like text
CALL_PIECES = [
    Chunk(thinking="Let me think about the weather."),
    Chunk(tool_calls=(ToolCallDelta(0, id="call_1", name="get_weather"),)),
    Chunk(tool_calls=(ToolCallDelta(0, arguments='{"city": "Paris"}'),)),
]
CALL_TOKENS = 7 + 2 + 9  # thinking, the name, the arguments (the test tokenizer)


async def test_an_interrupted_tool_call_counts_its_arguments_and_thinking(clock: FakeClock) -> None:
    """A stream that broke after the model had thought and written a tool call's arguments used
    those tokens: the partial usage counted only text, so the caller was charged 0 completion
    tokens for them (and for hundreds of argument tokens cut short just the same)."""
    script = Script({"a": (CALL_PIECES, ProviderUnavailableError("reset"))}, clock)
    call = make_call(clock, text="one two three")
    with pytest.raises(StreamInterruptedError) as info:
        await run(layer(script, clock), call)
    assert info.value.metadata["completionTokens"] == str(CALL_TOKENS)
    assert call.record.usage == Usage(10, CALL_TOKENS)


async def test_a_tool_call_answer_without_usage_is_charged_its_arguments(clock: FakeClock) -> None:
    unreported = Chunk(finish_reason=FinishReason.TOOL_CALLS)
    script = Script({"a": ([*CALL_PIECES, unreported], None)}, clock)
    call = make_call(clock, text="one two three")
    out = await run(layer(script, clock), call)
    assert out[-1].usage == call.record.usage == Usage(10, CALL_TOKENS)


def reasoning_call(clock: FakeClock, *, include_thinking: bool) -> Call:
    thinking = Reasoning(budget_tokens=1024, include_thinking=include_thinking)
    call = make_call(clock, text="one two three")
    return dataclasses.replace(call, params=GenerationParams(reasoning=thinking))


THOUGHT = Chunk(thinking="Let me think about the weather.")  # 7 tokens in the test tokenizer


async def test_a_stream_broken_in_thinking_the_caller_does_not_see_falls_back(clock: FakeClock) -> None:
    """Nothing reached the caller (it did not ask for thinking): the route may still fall back. The
    first thinking chunk committed the call to its deployment, and the caller, who had received
    nothing, got STREAM_INTERRUPTED while the next deployment was never asked. The thought the
    broken attempt produced stays charged, as a held answer that broke does."""
    broken = ([THOUGHT, THOUGHT], ProviderUnavailableError("reset"))
    script = Script({"a": broken, "b": ([Chunk(text="hi"), FINAL], None)}, clock)
    call = reasoning_call(clock, include_thinking=False)
    out = await run(layer(script, clock), call)
    assert script.called == ["a", "b"]
    assert [c.text for c in out] == ["hi", ""]
    assert [a.outcome for a in call.record.attempts] == ["PROVIDER_UNAVAILABLE", "OK"]
    assert call.record.usage == Usage(10 + FINAL.usage.prompt_tokens, 14 + FINAL.usage.completion_tokens)


async def test_hidden_thinking_goes_on_with_the_answer_it_preceded(clock: FakeClock) -> None:
    script = Script({"a": ([THOUGHT, Chunk(text="hi"), FINAL], None)}, clock)
    call = reasoning_call(clock, include_thinking=False)
    assert await run(layer(script, clock), call) == [THOUGHT, Chunk(text="hi"), FINAL]


async def test_thinking_the_caller_sees_commits_the_stream(clock: FakeClock) -> None:
    script = Script({"a": ([THOUGHT], ProviderUnavailableError("reset"))}, clock)
    call = reasoning_call(clock, include_thinking=True)
    with pytest.raises(StreamInterruptedError) as info:
        await run(layer(script, clock), call)
    assert script.called == ["a"]
    assert info.value.metadata["completionTokens"] == "7"


async def test_a_caller_leaving_during_hidden_thinking_is_charged_the_thought(clock: FakeClock) -> None:
    waiting = asyncio.Event()

    async def inner(call: Call) -> AsyncGenerator[Chunk, None]:
        yield THOUGHT
        waiting.set()
        await asyncio.Event().wait()  # the model thinks on; the caller cancels
        yield FINAL

    call = reasoning_call(clock, include_thinking=False)
    consumer = asyncio.ensure_future(run(RouteLayer(inner, routing=routing(clock), clock=clock), call))
    await waiting.wait()
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert call.record.usage == Usage(10, 7)
    assert [a.outcome for a in call.record.attempts] == ["CANCELLED"]


async def test_latency_routing_sends_few_calls_to_a_deployment_that_never_answers(clock: FakeClock) -> None:
    """`latency` counted a deployment with no time yet as the fastest: one failing every call never
    got a time, so it was tried first whenever drawn (about two calls in three of three deployments),
    each such call paying a failed attempt before the fallback."""
    script = Script({"a": ([], ProviderUnavailableError("503"))}, clock)
    r = routing(clock, policy(strategy="latency"), BreakerPolicy(min_requests=10_000))
    handler = layer(script, clock, r)
    for _ in range(200):
        assert await run(handler, make_call(clock)) == [FINAL]
    tried = script.called.count("a")
    assert 1 <= tried <= 25, tried  # the explore share (5 %), not two in three


async def test_latency_routing_learns_that_a_fast_deployment_now_times_out(clock: FakeClock) -> None:
    """A first-token timeout gave the deployment no time at all: its EWMA stayed as fast as it once
    was, so `latency` went on trying it first, each call waiting out first_token_timeout_seconds
    before its fallback (until the breaker tripped, if it did)."""
    script = Delayed({}, clock, delays={"a": 5.0})
    route = policy(strategy="latency", first_token_timeout_seconds=1.0)
    r = routing(clock, route, BreakerPolicy(min_requests=10_000))
    r.stats.get("a").first_token(0.1)  # once fast
    r.stats.get("b").first_token(0.5)
    r.stats.get("c").first_token(0.5)
    handler = layer(script, clock, r)
    for _ in range(20):
        assert await run(handler, make_call(clock)) == [FINAL]
    assert script.started.count("a") <= 3, script.started.count("a")
