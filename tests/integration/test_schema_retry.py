"""schema_retry through the real server: an answer that fails its JSON Schema on one deployment is
retried once on another before anything reached the caller; the attempts, the quota and the
breakers see what really happened."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import quota_pb2
from sidecar.ledger.record import GroupBy, UsageQuery
from tests.conftest import user
from tests.integration.helpers import rich
from tests.integration.test_structured import KEYS, schema_format
from tests.support.api import generate_request, stream_request, text_of
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
VALID = '{\n    "city": "Paris",\n    "temperature_c": 25\n    }'  # in the recorded llama.cpp streams
INVALID = '{\n    "city": "Paris",\n    "sky": "clear"\n}'


def deployment(upstream: Upstream, price: float) -> dict[str, Any]:
    return {
        "provider": "openai",
        "model": "m",
        "base_url": f"{upstream.url}/v1",
        "api_key": {"env": "OAI_KEY"},
        "price": {"input_per_million": price, "output_per_million": price},
    }


def config(first: Upstream, second: Upstream, **retry: Any) -> dict[str, Any]:
    route = {
        "deployments": ["first", "second"],
        "retry": {"max_attempts": 1},
        "schema_retry": {"enabled": True, **retry},
    }
    return {
        "policy": {
            "default_route": "r",
            "deployments": {"first": deployment(first, 1.0), "second": deployment(second, 2.0)},
            "routes": {"r": route},
            "routing": {
                "probes": {"enabled": False},  # a breaker that trips on one failure in five
                "breaker": {"min_requests": 1, "failure_ratio": 0.2, "cooldown_seconds": 600},
            },
            "quota": {
                "limits": [
                    {"name": "tokens", "metric": "tokens", "window": "day", "limit": 100000},
                    {"name": "usd", "metric": "usd", "window": "day", "limit": 10.0},
                ]
            },
        }
    }


def llama(name: str) -> Reply:
    """A stream SmolLM2 wrote under llama-server with a JSON Schema, recorded byte for byte:
    json_schema_stream.sse is valid for SCHEMA (the weather); json_schema_other_stream.sse was
    constrained to another schema ({"city": ..., "sky": ...}), so it fails this one."""
    return Reply.sse(f"llamacpp/{name}.sse", headers={"Content-Type": "text/event-stream"})


async def tokens_used(stub: Any, limit_name: str = "tokens") -> int:
    got = await stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme", user_id="bob"))
    return next(limit.used for limit in got.limits if limit.name == limit_name)


def ask(**kw: Any) -> dict[str, Any]:
    return {
        "messages": [user("Paris?")],
        "response_format": schema_format(),
        "tenant_id": "acme",
        "user_id": "bob",
        **kw,
    }


async def test_an_invalid_unary_answer_is_retried_on_the_other_deployment(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.push(Reply.json("openai/json_schema_invalid.json"))
    upstream2.push(Reply.json("openai/json_schema.json"))
    s = await serve(config(upstream, upstream2), KEYS)
    reply = await s.stub.Generate(generate_request(**ask()))
    assert json.loads(text_of(reply)) == {"city": "Paris", "temperature_c": 21}
    summary = reply.summary
    assert [(a.deployment, a.outcome) for a in summary.attempts] == [
        ("first", "SCHEMA_VALIDATION_FAILED"),
        ("second", "OK"),
    ]
    assert summary.served_by.deployment == "second"
    # both answers were produced and are paid for: 107 tokens each, at 1 and 2 $ per million
    assert summary.usage.total_tokens == 214
    assert summary.cost_micros == 107 * 1 + 107 * 2  # 107 tokens at $1/M, then 107 at $2/M
    assert await tokens_used(s.stub) == 214
    assert await tokens_used(s.stub, "usd") == 107 * 1 + 107 * 2  # micro-dollars
    assert len(upstream.seen) == len(upstream2.seen) == 1


async def test_a_rejected_answer_is_not_a_deployment_failure(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    """The breaker would open on one failure in five; three rejected answers leave it closed."""
    s = await serve(config(upstream, upstream2), KEYS)
    for _ in range(3):
        upstream.push(Reply.json("openai/json_schema_invalid.json"))
        upstream2.push(Reply.json("openai/json_schema.json"))
        await s.stub.Generate(generate_request(**ask()))
    assert len(upstream.seen) == 3  # still asked first every time: its breaker did not open


async def test_when_the_retry_fails_too_the_caller_gets_the_validation_error(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.push(Reply.json("openai/json_schema_invalid.json"))
    upstream2.push(Reply.json("openai/json_schema_invalid.json"))
    s = await serve(config(upstream, upstream2), KEYS)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(**ask()))
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "SCHEMA_VALIDATION_FAILED")
    assert len(upstream.seen) == len(upstream2.seen) == 1  # once: no third attempt
    assert await tokens_used(s.stub) == 214  # both providers answered: both are charged


async def test_the_retried_deployment_down_gives_the_validation_error(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.push(Reply.json("openai/json_schema_invalid.json"))
    upstream2.push(Reply.json("openai/error_500.json", status=500))
    s = await serve(config(upstream, upstream2), KEYS)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(**ask()))
    assert (await rich(info.value)).reason == "SCHEMA_VALIDATION_FAILED"
    assert await tokens_used(s.stub) == 107  # the first answer was produced, and is charged
    assert await tokens_used(s.stub, "usd") == 107  # at its own deployment's price ($1/M), no more


async def test_a_held_stream_is_retried_before_its_first_delta(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.push(llama("json_schema_other_stream"))
    upstream2.push(llama("json_schema_stream"))
    s = await serve(config(upstream, upstream2, hold_streams=True), KEYS)
    events = [e async for e in s.stub.StreamGenerate(stream_request(**ask()))]
    deltas = "".join(e.delta.text for e in events if e.HasField("delta"))
    assert deltas == VALID  # nothing of the rejected answer reached the caller
    summary = events[-1].result.summary
    assert [(a.deployment, a.outcome) for a in summary.attempts] == [
        ("first", "SCHEMA_VALIDATION_FAILED"),
        ("second", "OK"),
    ]
    assert summary.usage.total_tokens == 61 + 63  # as llama-server counted the two answers
    assert await tokens_used(s.stub) == 61 + 63


async def test_a_stream_without_hold_is_never_retried(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.push(llama("json_schema_other_stream"))
    s = await serve(config(upstream, upstream2), KEYS)
    seen: list[gen.StreamGenerateResponse] = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for e in s.stub.StreamGenerate(stream_request(**ask())):
            seen.append(e)
    assert "".join(e.delta.text for e in seen) == INVALID  # the deltas went out as they came
    assert (await rich(info.value)).reason == "SCHEMA_VALIDATION_FAILED"
    assert upstream2.seen == []


async def test_a_valid_first_answer_is_served_once(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.push(llama("json_schema_stream"))
    s = await serve(config(upstream, upstream2, hold_streams=True), KEYS)
    events = [e async for e in s.stub.StreamGenerate(stream_request(**ask()))]
    assert "".join(e.delta.text for e in events if e.HasField("delta")) == VALID
    assert [a.outcome for a in events[-1].result.summary.attempts] == ["OK"]
    assert upstream2.seen == []


async def test_a_held_stream_broken_mid_answer_moves_on_to_the_next_deployment(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    """Nothing of the first answer reached the caller when its deployment broke: the caller gets the
    second deployment's answer, not STREAM_INTERRUPTED; the break feeds the first one's breaker, and
    what it produced before breaking is charged."""
    upstream.push(replace(llama("json_schema_other_stream"), drop_after=6))  # 5 deltas, then a cut
    upstream2.push(llama("json_schema_stream"))
    s = await serve(config(upstream, upstream2, hold_streams=True), KEYS)
    events = [e async for e in s.stub.StreamGenerate(stream_request(**ask()))]
    assert "".join(e.delta.text for e in events if e.HasField("delta")) == VALID
    summary = events[-1].result.summary
    assert [(a.deployment, a.outcome) for a in summary.attempts] == [
        ("first", "PROVIDER_UNAVAILABLE"),
        ("second", "OK"),
    ]
    assert summary.served_by.deployment == "second"
    partial = summary.usage.total_tokens - 63  # the second answer, as llama-server counted it
    assert partial > 0  # the first deployment's prompt and the text it sent before breaking
    assert await tokens_used(s.stub) == summary.usage.total_tokens
    # the break counted against the first deployment: its breaker (one failure in five) is open
    upstream2.push(llama("json_schema_stream"))
    events = [e async for e in s.stub.StreamGenerate(stream_request(**ask()))]
    assert [a.deployment for a in events[-1].result.summary.attempts] == ["second"]
    assert len(upstream.seen) == 1


async def test_a_caller_cancelling_the_retried_stream_is_recorded_with_both_answers(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    """The first answer was rejected (61 tokens, charged); the caller then cancels the second one
    after its first deltas: the usage record holds the rejected answer and the second answer's prompt
    and delivered text, as the quota charged them (it held the rejected answer's alone)."""
    upstream.push(llama("json_schema_other_stream"))
    upstream2.push(replace(llama("json_schema_stream"), chunk_delay=0.2))
    s = await serve(config(upstream, upstream2, hold_streams=True), KEYS)
    call = s.stub.StreamGenerate(stream_request(**ask()))
    deltas = 0
    async for event in call:
        deltas += event.HasField("delta")
        if deltas == 2:
            call.cancel()
            break
    ledger = s.sidecar.deps.telemetry.ledger
    for _ in range(100):  # the server sees the cancellation a moment later
        [group] = await ledger.usage(UsageQuery("acme", 0, 2e10, GroupBy.USER)) or [None]
        if group is not None:
            break
        await asyncio.sleep(0.05)
    assert group is not None and group.requests == 1 and group.errors == 1
    recorded = group.tokens_in + group.tokens_out
    assert recorded > 61  # more than the rejected answer
    assert recorded == await tokens_used(s.stub)
    assert round(group.cost_usd * 1e6) == 61 * 1 + (recorded - 61) * 2  # each at its own price
    assert await tokens_used(s.stub, "usd") == round(group.cost_usd * 1e6)  # so the quota charged


HEDGE = {"enabled": True, "min_delay_seconds": 0.01, "default_delay_seconds": 0.1}


async def test_schema_retry_with_hedging_retries_the_race_winner_on_the_next_deployment(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    """They compose: the first deployment is slow, so the second is raced (hedging); the second wins
    with an invalid answer, which is held and retried on the third (schema_retry). The loser is
    cancelled and charged nothing; the two answers produced are."""
    third = await Upstream().start()
    try:
        upstream.push(Reply.json("openai/json_schema.json", delay=3.0))
        upstream2.push(Reply.json("openai/json_schema_invalid.json"))
        third.push(Reply.json("openai/json_schema.json"))
        raw = config(upstream, upstream2)
        policy = raw["policy"]
        policy["deployments"]["third"] = deployment(third, 1.0)
        policy["routes"]["r"] |= {"deployments": ["first", "second", "third"], "hedging": HEDGE}
        s = await serve(raw, KEYS)
        reply = await s.stub.Generate(generate_request(**ask()))
        assert json.loads(text_of(reply)) == {"city": "Paris", "temperature_c": 21}
        summary = reply.summary
        assert sorted((a.deployment, a.outcome) for a in summary.attempts) == [
            ("first", "HEDGE_LOST"),
            ("second", "SCHEMA_VALIDATION_FAILED"),
            ("third", "OK"),
        ]
        assert summary.served_by.deployment == "third"
        assert summary.usage.total_tokens == 214  # the rejected answer and the served one, not the loser
        assert summary.cost_micros == 107 * 2 + 107 * 1
        assert await tokens_used(s.stub) == 214
    finally:
        await third.close()


async def test_schema_retry_with_hedging_and_no_deployment_left_passes_the_winner_through(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    """Two deployments, both used by the hedged race: none is left to retry on, so the winner's
    answer is not held and the structured-output check refuses it as without schema_retry."""
    upstream.push(Reply.json("openai/json_schema.json", delay=3.0))
    upstream2.push(Reply.json("openai/json_schema_invalid.json"))
    raw = config(upstream, upstream2)
    raw["policy"]["routes"]["r"]["hedging"] = HEDGE
    s = await serve(raw, KEYS)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(**ask()))
    assert (await rich(info.value)).reason == "SCHEMA_VALIDATION_FAILED"
    assert len(upstream2.seen) == 1
