"""Health-aware routing end to end: retries, breakers, budgets, first-token timeouts, strategies, fit.

Every test runs the real server against loopback upstreams and checks three things: which
deployments were tried (GenerationSummary.attempts), what the caller got (code and ErrorInfo
reason), and what ListModels shows afterwards (breaker state, last error, health, load).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import models_pb2
from sidecar.core.types import Message, Role
from sidecar.routing.strategy import complexity_score
from tests.conftest import Running, user
from tests.integration.helpers import RichError, rich
from tests.integration.test_lifecycle import eventually
from tests.support.api import generate_request, stream_request, text_of
from tests.support.upstream import Reply, Upstream, fixture, sse_events

pytestmark = pytest.mark.integration

Serve = Callable[..., Awaitable[Running]]
ENV = {"KEY": "sk-routing-test-0123456789"}
HELLO = "Hello! How can I help you today?"
OPEN, CLOSED = models_pb2.BREAKER_STATE_OPEN, models_pb2.BREAKER_STATE_CLOSED
NEVER_TRIPS = {"min_requests": 1_000_000}  # so a test about something else is not cut short by a breaker


def ok() -> Reply:
    return Reply.json("openai/chat_completion.json")


def ok_stream() -> Reply:
    return Reply.sse("openai/stream.sse")


def unavailable(status: int = 503) -> Reply:
    return Reply(status=status, body=b'{"error":{"message":"overloaded"}}')


def deployment(upstream: Upstream, **extra: Any) -> dict[str, Any]:
    return {
        "provider": "openai",
        "model": "m",
        "base_url": f"{upstream.url}/v1",
        "api_key": {"env": "KEY"},
        **extra,
    }


def retry(max_attempts: int) -> dict[str, Any]:
    return {"max_attempts": max_attempts, "base_delay_seconds": 0.001}


def policy(
    deployments: dict[str, dict[str, Any]], *, routing: dict[str, Any] | None = None, **route: Any
) -> dict[str, Any]:
    """One route "r" over the deployments in the given order; probes off so `seen` counts calls only."""
    return {
        "default_route": "r",
        "deployments": deployments,
        "routes": {"r": {"deployments": list(deployments), **route}},
        "routing": {"probes": {"enabled": False}, **(routing or {})},
    }


def pair(
    first: Upstream, second: Upstream, *, routing: dict[str, Any] | None = None, **route: Any
) -> dict[str, Any]:
    """Deployments "first" and "second" on one route, one attempt each unless a test says otherwise."""
    route.setdefault("retry", retry(1))
    return policy({"first": deployment(first), "second": deployment(second)}, routing=routing, **route)


async def generate(s: Running, text: str = "Hi") -> gen.GenerateResponse:
    return await s.stub.Generate(generate_request(messages=[user(text)]))  # type: ignore[no-any-return]


async def stream(s: Running, text: str = "Hi") -> list[gen.StreamGenerateResponse]:
    return [e async for e in s.stub.StreamGenerate(stream_request(messages=[user(text)]))]


def streamed(events: list[gen.StreamGenerateResponse]) -> tuple[str, gen.GenerationSummary]:
    assert events and events[-1].HasField("result")
    return "".join(e.delta.text for e in events[:-1]), events[-1].result.summary


async def fails(call: Awaitable[object]) -> RichError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return await rich(info.value)


def tried(summary: gen.GenerationSummary) -> list[tuple[str, str]]:
    return [(a.deployment, a.outcome) for a in summary.attempts]


async def statuses(s: Running) -> dict[str, models_pb2.DeploymentStatus]:
    reply = await s.stub.ListModels(models_pb2.ListModelsRequest())
    return {d.name: d.status for route in reply.routes for d in route.deployments}


# --- 1. retry on the same deployment, or fall back, or neither -----------------------------------------


async def test_5xx_is_retried_on_the_same_deployment(
    serve: Serve, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.push(unavailable(503), ok())
    s = await serve({"policy": pair(upstream, upstream2, retry=retry(2))}, ENV)
    reply = await generate(s)
    assert text_of(reply) == HELLO
    assert tried(reply.summary) == [("first", "PROVIDER_UNAVAILABLE"), ("first", "OK")]
    assert reply.summary.served_by.deployment == "first"
    assert (len(upstream.seen), len(upstream2.seen)) == (2, 0)
    first = (await statuses(s))["first"]
    assert first.breaker_state == CLOSED
    assert first.last_error == "PROVIDER_UNAVAILABLE" and first.HasField("last_error_time")
    assert first.HasField("ewma_latency") and first.in_flight == 0


async def test_429_falls_back_at_once_and_opens_the_breaker(
    serve: Serve, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.push(Reply.json("openai/error_429.json", 429, headers={"retry-after": "30"}))
    upstream2.default = ok()
    s = await serve({"policy": pair(upstream, upstream2, retry=retry(3))}, ENV)
    reply = await generate(s)
    assert text_of(reply) == HELLO
    assert tried(reply.summary) == [("first", "PROVIDER_RATE_LIMITED"), ("second", "OK")]
    assert len(upstream.seen) == 1  # not retried on the same deployment despite max_attempts 3
    status = await statuses(s)
    assert status["first"].breaker_state == OPEN
    assert status["first"].last_error == "PROVIDER_RATE_LIMITED"
    assert (status["second"].breaker_state, status["second"].last_error) == (CLOSED, "")

    again = await generate(s)  # Retry-After holds the breaker open: the next call skips "first"
    assert tried(again.summary) == [("second", "OK")]
    assert len(upstream.seen) == 1


async def test_400_is_neither_retried_nor_fallen_back(
    serve: Serve, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.push(Reply.json("openai/error_400.json", 400))
    upstream2.default = ok()
    s = await serve({"policy": pair(upstream, upstream2, retry=retry(3))}, ENV)
    err = await fails(generate(s))
    assert (err.code, err.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "PROVIDER_REJECTED")
    assert (len(upstream.seen), len(upstream2.seen)) == (1, 0)
    assert (await statuses(s))["first"].breaker_state == CLOSED  # the request was bad, not the upstream


# --- 2. circuit breaker ----------------------------------------------------------------------------


BREAKER = {"min_requests": 2, "failure_ratio": 0.5, "cooldown_seconds": 60, "window_seconds": 60}


async def test_breaker_opens_and_calls_skip_the_deployment(
    serve: Serve, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.default = unavailable(500)
    upstream2.default = ok()
    s = await serve({"policy": pair(upstream, upstream2, routing={"breaker": BREAKER})}, ENV)
    for _ in range(2):
        reply = await generate(s)
        assert tried(reply.summary) == [("first", "PROVIDER_UNAVAILABLE"), ("second", "OK")]
    assert len(upstream.seen) == 2

    third = await generate(s)
    assert text_of(third) == HELLO
    assert tried(third.summary) == [("second", "OK")]
    assert len(upstream.seen) == 2  # never touched
    status = await statuses(s)
    assert status["first"].breaker_state == OPEN
    assert status["first"].last_error == "PROVIDER_UNAVAILABLE"
    assert status["first"].healthy  # probes are off: the breaker, not health, took it out
    assert status["second"].breaker_state == CLOSED


async def test_every_breaker_open_is_unavailable_with_the_cooldown(
    serve: Serve, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.default = upstream2.default = unavailable(500)
    s = await serve({"policy": pair(upstream, upstream2, routing={"breaker": BREAKER})}, ENV)
    for _ in range(2):
        err = await fails(generate(s))
        assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "PROVIDERS_UNAVAILABLE")
    seen = (len(upstream.seen), len(upstream2.seen))
    assert seen == (2, 2)
    assert {st.breaker_state for st in (await statuses(s)).values()} == {OPEN}

    err = await fails(stream(s))
    assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "PROVIDERS_UNAVAILABLE")
    assert err.retry is not None
    assert 50 < err.retry.retry_delay.ToMilliseconds() / 1000 <= 60  # what is left of the cooldown
    assert float(err.info.metadata["retryAfterSeconds"]) <= 60
    assert (len(upstream.seen), len(upstream2.seen)) == seen  # no upstream was called


# --- 3. retry budget -------------------------------------------------------------------------------


async def test_retry_budget_keeps_a_full_outage_from_amplifying(serve: Serve, upstream: Upstream) -> None:
    upstream.default = unavailable(503)
    routing = {
        "retry_budget": {"ratio": 0.1, "min_retries_per_second": 0, "window_seconds": 60},
        "breaker": NEVER_TRIPS,  # the budget alone must bound the retries here
    }
    s = await serve({"policy": policy({"only": deployment(upstream)}, routing=routing, retry=retry(3))}, ENV)
    calls = 20
    for _ in range(calls):
        err = await fails(generate(s))
        assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "PROVIDERS_UNAVAILABLE")
    # Without a budget: 3 x 20 = 60 requests. With 10 % of 20 calls: at most 2 retries.
    assert calls < len(upstream.seen) <= calls + 2


# --- 4. first-token timeout ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slow", "streaming"),
    [
        (Reply.sse("openai/stream.sse", delay=1.0), True),
        (
            Reply(chunks=[b": warming up\n\n", *sse_events(fixture("openai/stream.sse"))], chunk_delay=1.0),
            True,
        ),
        (Reply.json("openai/chat_completion.json", delay=1.0), False),
    ],
    ids=["stream-headers-late", "stream-events-late", "unary-late"],
)
async def test_no_first_token_in_time_falls_back(
    serve: Serve, upstream: Upstream, upstream2: Upstream, slow: Reply, streaming: bool
) -> None:
    upstream.push(slow)
    upstream2.push(ok_stream() if streaming else ok())
    s = await serve({"policy": pair(upstream, upstream2, first_token_timeout_seconds=0.2)}, ENV)
    started = asyncio.get_running_loop().time()
    if streaming:
        text, summary = streamed(await stream(s))
    else:
        reply = await generate(s)
        text, summary = text_of(reply), reply.summary
    assert asyncio.get_running_loop().time() - started < 0.9  # did not wait for the slow upstream
    assert text == HELLO
    assert tried(summary) == [("first", "PROVIDER_TIMEOUT"), ("second", "OK")]
    assert summary.served_by.deployment == "second"
    await eventually(lambda: upstream.disconnects == 1)  # the abandoned request was cut, not left running
    assert upstream.completed == 0
    assert (await statuses(s))["first"].last_error == "PROVIDER_TIMEOUT"


# --- 5. strategies ---------------------------------------------------------------------------------


async def test_cost_tries_the_cheaper_deployment_first(
    serve: Serve, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.default = upstream2.default = ok()
    dear = deployment(upstream, price={"input_per_million": 10.0, "output_per_million": 30.0})
    cheap = deployment(upstream2, price={"input_per_million": 0.15, "output_per_million": 0.6})
    s = await serve({"policy": policy({"dear": dear, "cheap": cheap}, strategy="cost")}, ENV)
    reply = await generate(s)
    assert tried(reply.summary) == [("cheap", "OK")]
    assert (len(upstream.seen), len(upstream2.seen)) == (0, 1)


COMPLEX_PROMPT = (
    "I am migrating a service and need a careful review of this code.\n"
    "```python\nasync def fetch(session, url):\n"
    "    async with session.get(url) as resp:\n"
    "        return await resp.json()\n```\n"
    "1. Why does it leak connections when the caller cancels?\n"
    "2. How should retries be bounded so that an outage is not amplified?\n"
    "3. What changes if the upstream streams server-sent events instead?\n"
    + "Please explain the trade-offs in detail, with an example for each case. "
    * 10
)


async def test_complexity_sends_simple_calls_to_the_cheap_tag(
    serve: Serve, upstream: Upstream, upstream2: Upstream
) -> None:
    assert complexity_score([Message(Role.USER, "hi")]) < 0.35
    assert complexity_score([Message(Role.USER, COMPLEX_PROMPT)]) > 0.7
    upstream.default = upstream2.default = ok()
    big, small = deployment(upstream), deployment(upstream2, tags=["cheap"])
    s = await serve({"policy": policy({"big": big, "small": small}, strategy="complexity")}, ENV)
    simple = await generate(s, "hi")
    assert tried(simple.summary) == [("small", "OK")]
    hard = await generate(s, COMPLEX_PROMPT)
    assert tried(hard.summary) == [("big", "OK")]
    assert (len(upstream.seen), len(upstream2.seen)) == (1, 1)


async def test_weighted_never_picks_a_zero_weight_while_another_serves(
    serve: Serve, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.default = upstream2.default = ok()
    off, on = deployment(upstream, weight=0), deployment(upstream2, weight=1)
    s = await serve({"policy": policy({"off": off, "on": on}, strategy="weighted")}, ENV)
    for _ in range(10):
        assert tried((await generate(s)).summary) == [("on", "OK")]
    assert upstream.seen == []


@pytest.mark.parametrize("strategy", ["priority", "least_busy", "latency", "weighted"])
async def test_strategy_serves(serve: Serve, upstream: Upstream, upstream2: Upstream, strategy: str) -> None:
    upstream.default = upstream2.default = ok()
    s = await serve({"policy": pair(upstream, upstream2, strategy=strategy)}, ENV)
    for _ in range(3):
        reply = await generate(s)
        assert text_of(reply) == HELLO and [o for _, o in tried(reply.summary)] == ["OK"]
    status = await statuses(s)
    assert all(st.in_flight == 0 and st.last_error == "" for st in status.values())
    served = [d for d in status if status[d].HasField("ewma_latency")]
    assert served and len(upstream.seen) + len(upstream2.seen) == 3


# --- 6. context window -----------------------------------------------------------------------------

LONG_PROMPT = "word " * 100  # about 108 prompt tokens


async def test_prompt_goes_to_the_deployment_whose_window_fits(
    serve: Serve, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.default = upstream2.default = ok()
    small = deployment(upstream, context_window=50, default_max_tokens=10)  # room for the answer too
    large = deployment(upstream2, context_window=100_000)
    s = await serve({"policy": policy({"small": small, "large": large})}, ENV)
    reply = await generate(s, LONG_PROMPT)
    assert tried(reply.summary) == [("large", "OK")]
    assert (len(upstream.seen), len(upstream2.seen)) == (0, 1)
    short = await generate(s, "Hi")  # a short prompt still goes to the first in order
    assert tried(short.summary) == [("small", "OK")]


async def test_prompt_too_long_for_every_deployment(
    serve: Serve, upstream: Upstream, upstream2: Upstream
) -> None:
    small, smaller = deployment(upstream, context_window=100), deployment(upstream2, context_window=50)
    s = await serve({"policy": policy({"small": small, "smaller": smaller})}, ENV)
    for call in (generate(s, LONG_PROMPT), stream(s, LONG_PROMPT)):
        err = await fails(call)
        assert (err.code, err.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "CONTEXT_TOO_LONG")
        assert err.fields == ["input.messages"]  # from the request root, whichever layer found it
        assert err.info.metadata["maxContextTokens"] == "100"
    assert upstream.seen == upstream2.seen == []


# --- 7. failure shapes -----------------------------------------------------------------------------

SMALL_COMPLETION = (
    b'{"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},'
    b'"finish_reason":"stop"}]}'
)
SMALL_STREAM = (
    b'data: {"choices":[{"index":0,"delta":{"content":"Hello!"}}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{"content":" How can I help you today?"}}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "stream"])
async def test_answer_dripped_byte_by_byte_assembles(
    serve: Serve, upstream: Upstream, upstream2: Upstream, streaming: bool
) -> None:
    if streaming:
        upstream.push(Reply(chunks=[SMALL_STREAM], byte_delay=0.002))
    else:
        upstream.push(Reply(body=SMALL_COMPLETION, byte_delay=0.002))
    s = await serve({"policy": pair(upstream, upstream2)}, ENV)
    if streaming:
        text, summary = streamed(await stream(s))
    else:
        reply = await generate(s)
        text, summary = text_of(reply), reply.summary
    assert text == HELLO
    assert tried(summary) == [("first", "OK")]
    assert upstream2.seen == []


async def test_stream_with_the_wrong_content_type_falls_back(
    serve: Serve, upstream: Upstream, upstream2: Upstream
) -> None:
    html = b"<html><body><h1>Welcome to nginx!</h1></body></html>"
    upstream.push(Reply(chunks=[html], headers={"content-type": "text/html"}))
    upstream2.push(ok_stream())
    s = await serve({"policy": pair(upstream, upstream2)}, ENV)
    text, summary = streamed(await stream(s))
    assert text == HELLO
    assert tried(summary) == [("first", "PROVIDER_BAD_RESPONSE"), ("second", "OK")]


async def test_huge_json_body_falls_back(serve: Serve, upstream: Upstream, upstream2: Upstream) -> None:
    padding = b'{"padding":"' + b"x" * (33 * 1024 * 1024) + b'",'
    upstream.push(Reply(body=padding + SMALL_COMPLETION[1:]))  # a valid answer, but over 32 MiB
    upstream2.push(ok())
    s = await serve({"policy": pair(upstream, upstream2)}, ENV)
    reply = await generate(s)
    assert text_of(reply) == HELLO
    assert tried(reply.summary) == [("first", "PROVIDER_BAD_RESPONSE"), ("second", "OK")]


async def test_stream_cut_after_the_first_delta_is_interrupted(
    serve: Serve, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.push(Reply.sse("openai/stream.sse", drop_after=3, chunk_delay=0.01))
    upstream2.default = ok_stream()
    s = await serve({"policy": pair(upstream, upstream2)}, ENV)
    received: list[str] = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for event in s.stub.StreamGenerate(stream_request(messages=[user("Hi")])):
            assert not event.HasField("result")
            received.append(event.delta.text)
    assert "".join(received) == "Hello!"
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "STREAM_INTERRUPTED")
    assert err.info.metadata["deployment"] == "first"
    assert err.info.metadata["cause"] == "PROVIDER_UNAVAILABLE"
    assert upstream2.seen == []  # committed: no fallback after the first chunk


@pytest.mark.parametrize("include_thinking", [False, True], ids=["thinking-hidden", "thinking-shown"])
async def test_a_stream_broken_in_thinking_falls_back_only_when_the_caller_saw_none_of_it(
    serve: Serve, upstream: Upstream, upstream2: Upstream, include_thinking: bool
) -> None:
    """Anthropic extended thinking cut off mid-thought: a caller that did not ask for thinking has
    received nothing, so the route falls back (it got STREAM_INTERRUPTED, the second deployment never
    asked); a caller that was shown the thinking is committed to the first deployment."""

    def thinking(u: Upstream) -> dict[str, Any]:
        return {**deployment(u, provider="anthropic", base_url=u.url), "capabilities": {"reasoning": True}}

    events = sse_events(fixture("anthropic/thinking_stream.sse"))
    upstream.push(Reply(chunks=events, drop_after=4, chunk_delay=0.01))  # after the first thought
    upstream2.push(Reply(chunks=events))
    both = {"first": thinking(upstream), "second": thinking(upstream2)}
    s = await serve({"policy": policy(both, retry=retry(1))}, ENV)
    reasoning = gen.ReasoningConfig(budget_tokens=2048, include_thinking=include_thinking)
    config = gen.GenerationConfig(max_tokens=4096, reasoning=reasoning)
    call = s.stub.StreamGenerate(stream_request(messages=[user("27 * 453?")], config=config))
    if include_thinking:
        err = await fails(_drained(call))
        assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "STREAM_INTERRUPTED")
        assert upstream2.seen == []
        return
    events_out = [e async for e in call]
    text, summary = streamed(events_out)
    assert text == "12,231" and not any(e.delta.thinking for e in events_out)
    assert tried(summary) == [("first", "PROVIDER_UNAVAILABLE"), ("second", "OK")]
    assert summary.usage.completion_tokens > 40  # the second's 40, and the first's thought


async def _drained(call: Any) -> None:
    async for _ in call:
        pass


# --- 8. no leaks -----------------------------------------------------------------------------------


async def test_failing_and_falling_back_leaks_no_tasks_or_connections(
    serve: Serve, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.push(
        unavailable(503),  # -> second
        Reply(reset=True),  # -> second
        Reply(hang=True),  # first-token timeout -> second
        Reply.sse("openai/stream_malformed.sse"),  # -> second
        Reply.sse("openai/stream.sse", drop_after=4),  # interrupted mid-stream
        Reply.sse("openai/stream.sse", chunk_delay=0.1),  # cancelled by the caller
    )  # then the default 500 on both: every deployment failed
    upstream2.push(ok(), ok(), ok_stream(), ok_stream())
    config = {
        "settings": {"http": {"keepalive_seconds": 0.05}},  # idle pooled connections close soon
        "policy": pair(
            upstream, upstream2, routing={"breaker": NEVER_TRIPS}, first_token_timeout_seconds=1.0
        ),
    }
    s = await serve(config, ENV)
    baseline = len(asyncio.all_tasks())

    for outcome in ("PROVIDER_UNAVAILABLE", "PROVIDER_UNAVAILABLE"):  # 503, reset
        assert tried((await generate(s)).summary) == [("first", outcome), ("second", "OK")]
    for outcome in ("PROVIDER_TIMEOUT", "PROVIDER_BAD_RESPONSE"):  # hang, malformed
        assert tried(streamed(await stream(s))[1]) == [("first", outcome), ("second", "OK")]
    assert (await fails(stream(s))).reason == "STREAM_INTERRUPTED"
    disconnects, completed = upstream.disconnects, upstream.completed
    call = s.stub.StreamGenerate(stream_request(messages=[user("Hi")]))
    assert (await call.read()).delta.text == "Hello"
    call.cancel()
    await eventually(lambda: upstream.disconnects == disconnects + 1)  # cut, not left streaming to no one
    assert upstream.completed == completed
    assert (await fails(generate(s))).reason == "PROVIDERS_UNAVAILABLE"

    await eventually(lambda: upstream.connections == upstream2.connections == 0)
    await eventually(lambda: len(asyncio.all_tasks()) <= baseline)
    status = await statuses(s)
    assert [st.in_flight for st in status.values()] == [0, 0]
    assert [st.breaker_state for st in status.values()] == [CLOSED, CLOSED]


# --- hedging ----------------------------------------------------------------------------------------------


HEDGE = {"enabled": True, "min_delay_seconds": 0.01, "default_delay_seconds": 0.1}


@pytest.mark.parametrize("kind", ["unary", "stream"])
async def test_a_slow_deployment_is_hedged_and_only_the_winner_is_charged(
    serve: Serve, upstream: Upstream, upstream2: Upstream, kind: str
) -> None:
    slow = (
        Reply.sse("openai/stream.sse", delay=2.0)
        if kind == "stream"
        else Reply.json("openai/chat_completion.json", delay=2.0)
    )
    upstream.push(slow)
    upstream2.push(ok_stream() if kind == "stream" else ok())
    s = await serve({"policy": pair(upstream, upstream2, hedging=HEDGE)}, ENV)
    started = asyncio.get_running_loop().time()
    if kind == "stream":
        text, summary = streamed(await stream(s))
    else:
        reply = await generate(s)
        text, summary = text_of(reply), reply.summary
    assert asyncio.get_running_loop().time() - started < 1.5
    assert text == HELLO
    assert sorted(tried(summary)) == [("first", "HEDGE_LOST"), ("second", "OK")]
    assert summary.served_by.deployment == "second"
    assert (summary.usage.prompt_tokens, summary.usage.completion_tokens) == (
        19,
        9,
    )  # the winner's usage only
    await eventually(lambda: upstream.disconnects == 1)  # the loser's request was cancelled
    assert upstream.completed == 0


@pytest.mark.parametrize("backup", ["wins", "fails"])
async def test_a_hedge_whose_primary_fails_during_the_race_is_counted_as_a_hedge(
    serve: Serve, upstream: Upstream, upstream2: Upstream, backup: str
) -> None:
    """The backup started as a hedge (the primary had no first chunk in time); the primary then
    failing while both raced does not make the hedge a fallback in the metrics."""
    upstream.push(Reply(status=503, body=b"{}", delay=0.5))
    second = ok() if backup == "wins" else unavailable(503)
    upstream2.push(Reply(status=second.status, body=second.body, delay=1.0))
    s = await serve({"policy": pair(upstream, upstream2, hedging=HEDGE)}, ENV)
    if backup == "wins":
        assert tried((await generate(s)).summary) == [("first", "PROVIDER_UNAVAILABLE"), ("second", "OK")]
    else:
        assert (await fails(generate(s))).reason == "PROVIDERS_UNAVAILABLE"
    registry = s.sidecar.deps.telemetry.metrics.registry
    counts = {
        name: registry.get_sample_value(f"sidecar_{name}_total", {"route": "r"})
        for name in ("hedges", "fallbacks", "retries")
    }
    assert counts == {"hedges": 1, "fallbacks": 0, "retries": 0}


async def test_no_hedge_when_the_first_deployment_is_fast(
    serve: Serve, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.push(ok_stream())
    s = await serve(
        {"policy": pair(upstream, upstream2, hedging={**HEDGE, "default_delay_seconds": 5.0})}, ENV
    )
    text, summary = streamed(await stream(s))
    assert text == HELLO and tried(summary) == [("first", "OK")]
    assert upstream2.seen == []


async def test_a_deployment_whose_connections_are_all_in_use_falls_over_to_the_next(
    serve: Serve, upstream: Upstream, upstream2: Upstream
) -> None:
    """The sidecar's own connection limit to the first deployment's host is reached (one slot, held
    by a call its upstream never answers): the next call goes on to the second deployment, on another
    host, as after any failure that is not the request's; the first's breaker is left alone. With
    every deployment's connections in use the call is OVERLOADED, the sidecar's own limit."""
    first, second = (deployment(u, read_timeout_seconds=0.5) for u in (upstream, upstream2))
    raw = policy({"first": first, "second": second}, retry=retry(2))
    s = await serve({"policy": raw, "settings": {"http": {"max_connections_per_host": 1}}}, ENV)
    slow = Reply.sse("openai/stream.sse", chunk_delay=0.2)  # never idle past the read timeout
    upstream.push(slow)
    holder = asyncio.ensure_future(stream(s, "hold"))
    await eventually(lambda: len(upstream.seen) == 1)
    upstream2.push(ok())
    reply = await generate(s)
    assert text_of(reply) == HELLO and [a.deployment for a in reply.summary.attempts] == ["first", "second"]
    assert reply.summary.attempts[0].outcome == "OVERLOADED" and len(upstream.seen) == 1
    assert (await statuses(s))["first"].breaker_state == CLOSED
    upstream2.push(slow)
    holder2 = asyncio.ensure_future(stream(s, "hold"))
    await eventually(lambda: len(upstream2.seen) == 2)
    err = await fails(generate(s))
    assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "OVERLOADED")
    for held in (holder, holder2):
        assert streamed(await held)[0]  # the calls holding the connections were answered whole
