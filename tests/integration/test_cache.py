"""The response cache through the real server, on real Redis (and once on the memory default)."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import cache_pb2
from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import user
from tests.integration.helpers import rich
from tests.support.api import generate_request, stream_request, text_of

pytestmark = pytest.mark.integration
ZERO = gen.GenerationConfig(temperature=0.0)


def config(redis_url: str | None, namespace: str, **cache: Any) -> dict[str, Any]:
    backend = {"backend": "redis", "redis_url": redis_url} if redis_url else {}
    # a generous store timeout: these tests need each store to land, also on a loaded machine
    cache = {"timeout_seconds": 5.0, **cache}
    return {
        "settings": {"cache": {"enabled": True, "namespace": namespace, **backend, **cache}},
        "policy": {
            "default_route": "echo",
            "deployments": {
                "echo": {
                    "provider": "echo",
                    "model": "echo-1",
                    "price": {"input_per_million": 2.0, "output_per_million": 10.0},
                    "echo": {"tokens_per_chunk": 2},
                }
            },
            "routes": {"echo": {"deployments": ["echo"]}},
        },
    }


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


REQUEST = "Cache me, please: the same question twice."


def request(text: str = REQUEST, **fields: Any) -> gen.GenerateRequest:
    fields.setdefault("tenant_id", "acme")
    fields.setdefault("user_id", "ann")
    return generate_request(messages=[user(text)], config=ZERO, **fields)


async def test_a_repeated_call_is_answered_from_redis(serve: Any, redis_url: str, namespace: str) -> None:
    s = await serve(config(redis_url, namespace, ttl_seconds=120))
    first = await s.stub.Generate(request())
    second = await s.stub.Generate(request())
    assert text_of(second) == text_of(first)
    a, b = first.summary, second.summary
    assert not a.cache_hit and a.cost_micros > 0 and [x.outcome for x in a.attempts] == ["OK"]
    assert b.cache_hit and b.cost_micros == 0 and not b.attempts
    assert (b.usage.prompt_tokens, b.usage.completion_tokens) == (
        a.usage.prompt_tokens,
        a.usage.completion_tokens,
    )
    assert b.usage.cached_tokens == b.usage.prompt_tokens
    assert b.served_by.deployment == "echo" and b.upstream_latency.ToNanoseconds() == 0
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        keys = await client.keys(f"{namespace}:answer:*")
        assert len(keys) == 1 and 0 < await client.ttl(keys[0]) <= 120
    finally:
        await client.aclose()


async def test_a_stream_from_the_cache_is_identical(serve: Any, redis_url: str, namespace: str) -> None:
    s = await serve(config(redis_url, namespace))
    streamed = stream_request(
        messages=[user("one two three four five six seven")], config=ZERO, tenant_id="acme", user_id="ann"
    )
    runs = []
    for _ in range(2):
        events = [e async for e in s.stub.StreamGenerate(streamed)]
        runs.append(([e.delta.text for e in events[:-1]], events[-1].result.summary))
    (original, first), (replayed, second) = runs
    assert replayed == original and len(original) == 4  # the same text in the same chunks
    assert not first.cache_hit and second.cache_hit and second.cost_micros == 0
    unary = await s.stub.Generate(request("one two three four five six seven"))
    assert unary.summary.cache_hit and text_of(unary) == "".join(original)


async def test_never_served_across_tenants_or_users(serve: Any, redis_url: str, namespace: str) -> None:
    s = await serve(config(redis_url, namespace))
    await s.stub.Generate(request())
    for other in (request(tenant_id="globex"), request(user_id="bob"), request(tenant_id="", user_id="")):
        assert not (await s.stub.Generate(other)).summary.cache_hit
    assert (await s.stub.Generate(request(user_id="bob"))).summary.cache_hit


async def test_tenant_scope_shares_between_its_users_only(serve: Any, redis_url: str, namespace: str) -> None:
    s = await serve(config(redis_url, namespace, scope="tenant"))
    await s.stub.Generate(request())
    assert (await s.stub.Generate(request(user_id="bob"))).summary.cache_hit
    assert not (await s.stub.Generate(request(tenant_id="globex"))).summary.cache_hit


async def test_bypass_and_sampling_skip_the_cache(serve: Any, redis_url: str, namespace: str) -> None:
    s = await serve(config(redis_url, namespace))
    await s.stub.Generate(request())
    bypass = await s.stub.Generate(request(cache_mode=cache_pb2.CACHE_MODE_BYPASS))
    assert not bypass.summary.cache_hit
    sampled = generate_request(messages=[user("hot")], config=gen.GenerationConfig(temperature=0.9))
    await s.stub.Generate(sampled)
    assert not (await s.stub.Generate(sampled)).summary.cache_hit


async def test_an_unknown_cache_mode_is_invalid(serve: Any, redis_url: str, namespace: str) -> None:
    s = await serve(config(redis_url, namespace))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(request(cache_mode=7))
    err = await rich(info.value)
    assert err.code is grpc.StatusCode.INVALID_ARGUMENT and err.fields == ["input.cache_mode"]


async def test_redis_down_means_no_cache_not_errors(serve: Any) -> None:
    from tests.conftest import free_port

    s = await serve(config(f"redis://127.0.0.1:{free_port()}/0", "down", timeout_seconds=0.5))
    for _ in range(2):
        reply = await s.stub.Generate(request())
        assert text_of(reply) and not reply.summary.cache_hit


async def test_the_memory_backend(serve: Any, namespace: str) -> None:
    s = await serve(config(None, namespace))
    await s.stub.Generate(request())
    assert (await s.stub.Generate(request())).summary.cache_hit


async def test_a_hit_reports_its_kind_and_the_age_of_its_answer(serve: Any, namespace: str) -> None:
    from sidecar.core.clock import FakeClock

    clock = FakeClock()
    s = await serve(config(None, namespace), clock=clock)
    first = await s.stub.Generate(request())
    assert first.summary.cache_hit_kind == cache_pb2.CACHE_HIT_KIND_UNSPECIFIED
    assert not first.summary.HasField("cache_entry_age")
    clock.advance(42.5)
    unary = (await s.stub.Generate(request())).summary
    assert unary.cache_hit_kind == cache_pb2.CACHE_HIT_KIND_EXACT and unary.cache_similarity == 0
    assert unary.cache_entry_age.ToMilliseconds() == 42_500
    clock.advance(10)
    events = [
        e
        async for e in s.stub.StreamGenerate(
            stream_request(messages=[user(REQUEST)], config=ZERO, tenant_id="acme", user_id="ann")
        )
    ]
    streamed = events[-1].result.summary
    assert streamed.cache_hit_kind == cache_pb2.CACHE_HIT_KIND_EXACT
    assert streamed.cache_entry_age.ToMilliseconds() == 52_500


async def test_an_entry_without_a_stored_time_has_no_age(serve: Any, redis_url: str, namespace: str) -> None:
    """Entries written before ages were kept (no created_at) are still served, without an age."""
    import json

    import redis.asyncio as aioredis

    s = await serve(config(redis_url, namespace))
    await s.stub.Generate(request())
    client = aioredis.from_url(redis_url)
    try:
        (key,) = [k async for k in client.scan_iter(f"*{namespace}*")]
        entry = json.loads(await client.get(key))
        del entry["created_at"]
        await client.set(key, json.dumps(entry), keepttl=True)
    finally:
        await client.aclose()
    summary = (await s.stub.Generate(request())).summary
    assert summary.cache_hit and summary.cache_hit_kind == cache_pb2.CACHE_HIT_KIND_EXACT
    assert not summary.HasField("cache_entry_age")


async def test_a_tool_call_answer_is_never_replayed_without_its_calls(serve: Any, upstream: Any) -> None:
    """OpenAI answers a call forced to one tool (tool_choice naming it) with finish_reason "stop",
    and so do some OpenAI-compatible servers for any tool call: the answer is a tool call all the
    same. The cache keeps text only, so it must not store it: a hit replayed an empty message."""
    import json

    from tests.support.tools import tool_calls, weather_tool
    from tests.support.upstream import Reply, fixture

    forced = json.loads(fixture("openai/tool_calls.json"))
    forced["choices"][0]["finish_reason"] = "stop"
    upstream.push(*(Reply(body=json.dumps(forced).encode()) for _ in range(2)))
    raw = config(None, f"t{uuid.uuid4().hex[:12]}")
    raw["policy"]["deployments"] = {
        "d": {"provider": "openai", "model": "m", "base_url": f"{upstream.url}/v1", "api_key": {"env": "KEY"}}
    }
    raw["policy"]["routes"] = {"echo": {"deployments": ["d"]}}
    raw["policy"]["routing"] = {"probes": {"enabled": False}}
    s = await serve(raw, {"KEY": "sk-cache-test-0123456789"})
    ask = request(tools=[weather_tool()], tool_choice=gen.ToolChoice(name="get_weather"))
    for _ in range(2):
        reply = await s.stub.Generate(ask)
        assert [c.name for c in tool_calls(reply.message)] == ["get_weather"], reply
        assert not reply.summary.cache_hit
    assert len(upstream.seen) == 2


APPS = {"APP_A": "token-of-app-a-0123456789", "APP_B": "token-of-app-b-0123456789"}


@pytest.mark.parametrize("scope", ["user", "tenant"])
async def test_applications_naming_no_tenant_never_share_answers(
    namespace: str, serve: Any, scope: str
) -> None:
    """Calls without a tenant_id were all one tenant's: another application (its own credential)
    asking the same question for a user of the same id (or any user, with `scope: tenant`) got the
    first application's answer from the cache. Each credential's calls are a tenant of their own."""
    raw = config(None, namespace, scope=scope)
    credentials = [{"name": n.lower(), "token": {"env": n}, "allow": ["GenerationService"]} for n in APPS]
    raw["settings"]["auth"] = {"credentials": credentials}
    s = await serve(raw, APPS)
    ask = request(tenant_id="", user_id="1")
    first = await s.stub.Generate(ask, metadata=[("authorization", f"Bearer {APPS['APP_A']}")])
    other = await s.stub.Generate(ask, metadata=[("authorization", f"Bearer {APPS['APP_B']}")])
    again = await s.stub.Generate(ask, metadata=[("authorization", f"Bearer {APPS['APP_A']}")])
    assert not first.summary.cache_hit and not other.summary.cache_hit
    assert again.summary.cache_hit  # an application's own answers are still cached
