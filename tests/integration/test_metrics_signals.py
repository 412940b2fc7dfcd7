"""Signals of the quota, cache, session and persona parts on /metrics: hits, refusals, near-limit
events, store errors, edge rejections and Switch outcomes, counted once each."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import personas_pb2
from tests.conftest import echo_policy, free_port, user
from tests.integration.test_metrics_keys import scrape
from tests.support.api import generate_request, stream_request

pytestmark = pytest.mark.integration
DEAD_REDIS = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


def deterministic(text: str = "hi", **kw: Any) -> gen.GenerateRequest:
    return generate_request(
        messages=[user(text)],
        tenant_id="acme",
        user_id="alice",
        config=gen.GenerationConfig(temperature=0),
        **kw,
    )


async def test_cache_hits_quota_refusals_and_near_limit_events(serve: Any) -> None:
    quota = {"limits": [{"name": "daily", "metric": "requests", "window": "day", "limit": 4}]}
    s = await serve({"settings": {"cache": {"enabled": True}}, "policy": echo_policy(quota=quota)})
    for _ in range(4):  # one miss, then hits (each still one request for the quota)
        await s.stub.Generate(deterministic())
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await s.stub.Generate(deterministic())
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    m = await asyncio.to_thread(scrape, s.sidecar.metrics_port)
    assert m['sidecar_cache_lookups_total{result="miss"}'] == 1
    assert m['sidecar_cache_lookups_total{result="hit"}'] == 3
    assert m['sidecar_cache_served_total{route="echo"}'] == 3
    assert m['sidecar_quota_refusals_total{limit="daily"}'] == 1
    # a call that passes several levels at once reports the highest: 3/4 -> 4/4 is the 100 % event;
    # the free tier's 5 requests a minute were 4/5 used: its 80 % event
    near = {k: v for k, v in m.items() if k.startswith("sidecar_quota_near_limit_total")}
    assert near == {
        'sidecar_quota_near_limit_total{limit="daily",percent="100"}': 1,
        'sidecar_quota_near_limit_total{limit="tier-requests-per-minute",percent="80"}': 1,
    }


async def test_store_errors_by_store(serve: Any) -> None:
    quota = {
        "store": "redis",
        "redis_url": DEAD_REDIS,
        "store_timeout_seconds": 0.5,
        "limits": [
            {"name": "open", "metric": "requests", "window": "day", "limit": 9, "on_store_error": "fail_open"}
        ],
    }
    sessions = {"store": "redis", "redis_url": DEAD_REDIS, "memory": True}
    s = await serve(
        {
            "settings": {"cache": {"enabled": True, "backend": "redis", "redis_url": DEAD_REDIS}},
            "policy": echo_policy(quota=quota, personas={"sessions": sessions}),
        }
    )
    await s.stub.Generate(deterministic())  # no conversation: quota fails open, the cache misses
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await s.stub.Generate(deterministic(conversation_id="c1"))  # memory needs the session store
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    m = await asyncio.to_thread(scrape, s.sidecar.metrics_port)
    errors = {k: v for k, v in m.items() if k.startswith("sidecar_store_errors_total")}
    sessions_errors = {k: v for k, v in errors.items() if 'store="sessions"' in k}
    assert sessions_errors == {'sidecar_store_errors_total{op="snapshot",store="sessions"}': 1}  # once
    assert errors['sidecar_store_errors_total{op="get",store="cache"}'] == 1
    assert errors['sidecar_store_errors_total{op="reserve",store="quota"}'] == 1


async def test_requests_refused_at_the_edge_are_counted_by_code(serve: Any) -> None:
    s = await serve({"policy": echo_policy()})
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await s.stub.Generate(generate_request(model="echo"))  # no messages
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError):
        async for _ in s.stub.StreamGenerate(stream_request(messages=[user("hi")], tenant_id="b c")):
            pass
    m = await asyncio.to_thread(scrape, s.sidecar.metrics_port)
    refused = {k: v for k, v in m.items() if k.startswith("sidecar_requests_total") and 'route=""' in k}
    assert refused == {
        'sidecar_requests_total{code="INVALID_ARGUMENT",model="",provider="",route="",stream="false"}': 1,
        'sidecar_requests_total{code="INVALID_ARGUMENT",model="",provider="",route="",stream="true"}': 1,
    }


async def test_switches_are_counted_by_outcome(serve: Any) -> None:
    personas = {"personas": [{"id": "mr-blue", "name": "Mr Blue", "system_prompt": "Be calm."}]}
    s = await serve({"policy": echo_policy(personas=personas)})
    ids = {"tenant_id": "acme", "user_id": "alice", "conversation_id": "c1"}
    await s.stub.Switch(personas_pb2.SwitchRequest(command="use mr blue", **ids))
    with pytest.raises(grpc.aio.AioRpcError):
        await s.stub.Switch(personas_pb2.SwitchRequest(command="use nobody", **ids))
    with pytest.raises(grpc.aio.AioRpcError):
        await s.stub.Switch(personas_pb2.SwitchRequest(command="use mr blue", tenant_id="acme"))
    m = await asyncio.to_thread(scrape, s.sidecar.metrics_port)
    switches = {k: v for k, v in m.items() if k.startswith("sidecar_persona_switches_total")}
    assert switches == {
        'sidecar_persona_switches_total{outcome="OK"}': 1,
        'sidecar_persona_switches_total{outcome="PERSONA_NOT_FOUND"}': 1,
        'sidecar_persona_switches_total{outcome="INVALID_REQUEST"}': 1,
    }
