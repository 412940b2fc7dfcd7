"""Idempotent retries through the real server: charged once, joined in flight, shared over Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import quota_pb2
from tests.conftest import user
from tests.integration.helpers import rich
from tests.support.api import generate_request, stream_request, text_of
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration

QUOTA = {
    "limits": [{"name": "calls", "metric": "requests", "scope": "tenant", "window": "day", "limit": 100}]
}


def policy(upstream: Upstream) -> dict[str, Any]:
    return {
        "default_route": "r",
        "deployments": {"d": {"provider": "openai", "model": "m", "base_url": f"{upstream.url}/v1"}},
        "routes": {"r": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
        "routing": {"probes": {"enabled": False}},
        "tier_assignment": {"default": "enterprise"},
        "quota": QUOTA,
    }


def ask(request_id: str, text: str = "hi") -> Any:
    return generate_request(messages=[user(text)], tenant_id="acme", user_id="u", request_id=request_id)


async def calls_charged(s: Any) -> int:
    got = await s.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme"))
    return int(next(limit for limit in got.limits if limit.name == "calls").used)


async def test_a_repeated_generate_returns_the_first_answer_and_is_charged_once(
    serve: Any, upstream: Upstream
) -> None:
    s = await serve({"policy": policy(upstream)})
    upstream.push(Reply.json("openai/chat_completion.json"))
    first = await s.stub.Generate(ask("order-1"))
    again = await s.stub.Generate(ask("order-1"))
    assert text_of(again) == text_of(first) and not first.summary.replayed and again.summary.replayed
    assert again.summary.request_id == "order-1" and again.summary.usage == first.summary.usage
    assert len(upstream.seen) == 1 and await calls_charged(s) == 1


async def test_a_repeat_in_flight_joins_the_first(serve: Any, upstream: Upstream) -> None:
    s = await serve({"policy": policy(upstream)})
    upstream.push(Reply.json("openai/chat_completion.json", delay=0.3))
    a, b = await asyncio.gather(s.stub.Generate(ask("order-2")), s.stub.Generate(ask("order-2")))
    assert text_of(a) == text_of(b) and sorted([a.summary.replayed, b.summary.replayed]) == [False, True]
    assert len(upstream.seen) == 1 and await calls_charged(s) == 1


async def test_another_request_under_the_same_id_is_invalid_and_not_charged(
    serve: Any, upstream: Upstream
) -> None:
    s = await serve({"policy": policy(upstream)})
    upstream.push(Reply.json("openai/chat_completion.json"))
    await s.stub.Generate(ask("order-3"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(ask("order-3", text="something else"))
    err = await rich(info.value)
    assert (err.code, err.reason, err.fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "IDEMPOTENCY_KEY_REUSED",
        ["input.request_id"],
    )
    assert len(upstream.seen) == 1 and await calls_charged(s) == 1


async def test_a_stream_with_a_repeated_id_runs_again(serve: Any, upstream: Upstream) -> None:
    s = await serve({"policy": policy(upstream)})
    upstream.push(Reply.json("openai/chat_completion.json"), Reply.sse("openai/stream.sse"))
    await s.stub.Generate(ask("order-4"))
    req = stream_request(messages=[user("hi")], tenant_id="acme", user_id="u", request_id="order-4")
    events = [e async for e in s.stub.StreamGenerate(req)]
    assert events[-1].HasField("result") and not events[-1].result.summary.replayed
    assert len(upstream.seen) == 2


async def test_sidecars_sharing_redis_answer_a_retry_once(
    serve: Any, upstream: Upstream, redis_url: str
) -> None:
    idem = {"backend": "redis", "redis_url": redis_url, "key_prefix": f"test:idem:{id(upstream)}:"}
    a = await serve({"policy": policy(upstream), "settings": {"idempotency": idem}})
    b = await serve({"policy": policy(upstream), "settings": {"idempotency": idem}})
    upstream.push(Reply.json("openai/chat_completion.json", delay=0.3))
    first, joined = await asyncio.gather(a.stub.Generate(ask("order-5")), b.stub.Generate(ask("order-5")))
    later = await b.stub.Generate(ask("order-5"))
    assert text_of(first) == text_of(joined) == text_of(later) and later.summary.replayed
    assert len(upstream.seen) == 1
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await a.stub.Generate(ask("order-5", text="changed"))
    assert (await rich(info.value)).reason == "IDEMPOTENCY_KEY_REUSED"


APPS = {"APP_A": "token-of-app-a-0123456789", "APP_B": "token-of-app-b-0123456789"}


def as_app(name: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {APPS[name]}")]


async def test_applications_naming_no_tenant_do_not_share_request_ids(serve: Any, upstream: Upstream) -> None:
    """Calls without a tenant_id were all one tenant's: another application (its own credential)
    that happened to use the same request_id got the first application's answer back, replayed
    (or, with another prompt, INVALID_ARGUMENT for an id it never used)."""
    credentials = [{"name": n.lower(), "token": {"env": n}, "allow": ["GenerationService"]} for n in APPS]
    no_quota = {k: v for k, v in policy(upstream).items() if k not in ("quota", "tier_assignment")}
    raw = {"policy": no_quota, "settings": {"auth": {"credentials": credentials}}}
    s = await serve(raw, APPS)
    upstream.push(*[Reply.json("openai/chat_completion.json")] * 4)
    request = generate_request(messages=[user("hi")], user_id="u", request_id="1")
    first = await s.stub.Generate(request, metadata=as_app("APP_A"))
    other = await s.stub.Generate(request, metadata=as_app("APP_B"))
    assert not first.summary.replayed and not other.summary.replayed
    assert len(upstream.seen) == 2
    again = await s.stub.Generate(request, metadata=as_app("APP_A"))  # its own retry still replays
    assert again.summary.replayed and len(upstream.seen) == 2
    different = generate_request(messages=[user("something else")], user_id="u", request_id="2")
    await s.stub.Generate(different, metadata=as_app("APP_A"))
    mine = generate_request(messages=[user("mine")], user_id="u", request_id="2")
    assert not (await s.stub.Generate(mine, metadata=as_app("APP_B"))).summary.replayed
