"""The real server on a free port, called through the generated stubs, on the echo provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import models_pb2
from tests.conftest import echo_policy, system, user
from tests.support.api import Stubs, generate_request, stream_request, text_of

pytestmark = pytest.mark.integration


async def test_unary_generate(serve: Any) -> None:
    s = await serve({"policy": echo_policy()})
    reply = await s.stub.Generate(
        generate_request(messages=[system("be brief"), user("Hello, sidecar!")], request_id="req-7")
    )
    assert text_of(reply) == "Hello, sidecar!"
    sm = reply.summary
    assert sm.finish_reason == gen.FINISH_REASON_STOP
    assert (sm.usage.prompt_tokens, sm.usage.completion_tokens, sm.usage.total_tokens) == (17, 4, 21)
    assert (sm.served_by.route, sm.served_by.deployment, sm.served_by.provider) == ("echo", "echo", "echo")
    assert [(a.deployment, a.outcome) for a in sm.attempts] == [("echo", "OK")]
    assert sm.request_id == "req-7"
    assert sm.overhead.ToNanoseconds() > 0


async def test_stream_sends_deltas_then_one_summary(serve: Any) -> None:
    policy = echo_policy(
        deployments={"echo": {"provider": "echo", "model": "echo-1", "echo": {"tokens_per_chunk": 1}}}
    )
    s = await serve({"policy": policy})
    events = [e async for e in s.stub.StreamGenerate(stream_request(messages=[user("one two three")]))]
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds == ["delta"] * 3 + ["result"]
    assert "".join(e.delta.text for e in events[:-1]) == "one two three"
    summary = events[-1].result.summary
    assert summary.usage.completion_tokens == 3
    assert summary.time_to_first_token.ToNanoseconds() > 0
    assert len(summary.request_id) == 32


async def test_cost_comes_from_the_price_table(serve: Any) -> None:
    policy = echo_policy(
        deployments={
            "echo": {
                "provider": "echo",
                "model": "echo-1",
                "price": {"input_per_million": 2.0, "output_per_million": 10.0},
            }
        }
    )
    s = await serve({"policy": policy})
    reply = await s.stub.Generate(generate_request(messages=[user("a b")]))
    usage = reply.summary.usage
    assert reply.summary.cost_micros == usage.prompt_tokens * 2 + usage.completion_tokens * 10


async def test_list_models(serve: Any) -> None:
    policy = {
        "default_route": "chat",
        "deployments": {
            "echo": {"provider": "echo", "model": "echo-1"},
            "oai": {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "base_url": "http://127.0.0.1:9/v1",
                "context_window": 1000,
            },
        },
        "routes": {"chat": {"deployments": ["oai", "echo"]}, "echo": {"deployments": ["echo"]}},
    }
    s = await serve({"policy": policy})
    reply = await s.stub.ListModels(models_pb2.ListModelsRequest())
    assert [(r.alias, r.is_default) for r in reply.routes] == [("chat", True), ("echo", False)]
    chat = reply.routes[0]
    assert [(d.name, d.provider, d.model) for d in chat.deployments] == [
        ("oai", "openai", "gpt-4o-mini"),
        ("echo", "echo", "echo-1"),
    ]
    assert chat.deployments[0].capabilities.max_context_tokens == 1000
    assert "test double" in chat.deployments[1].description


async def test_health_and_reflection(serve: Any) -> None:
    s = await serve({"policy": echo_policy()})
    health = health_pb2_grpc.HealthStub(s.channel)
    services = [f"orchestrator.v1.{n}" for n in ("GenerationService", "ConversationService", "QuotaService")]
    for service in ("", *services, "orchestrator.v1.KeyService"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(s.channel)
    responses = reflect.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {svc.name async for r in responses for svc in r.list_services_response.service}
    assert {*services, "orchestrator.v1.KeyService", "grpc.health.v1.Health"} <= names
    assert "orchestrator.v1.AdminService" not in names  # off by default


async def test_unix_socket_listener(serve: Any, tmp_path: Path) -> None:
    sock = tmp_path / "sidecar.sock"
    await serve(
        {
            "policy": echo_policy(),
            "settings": {"listen": {"address": "127.0.0.1:0", "unix_socket": str(sock)}},
        }
    )
    async with grpc.aio.insecure_channel(f"unix:{sock}") as channel:
        reply = await Stubs(channel).Generate(generate_request(messages=[user("via unix")]))
    assert text_of(reply) == "via unix"


async def test_list_models_pages(serve: Any) -> None:
    policy = {
        "default_route": "a",
        "deployments": {"echo": {"provider": "echo", "model": "echo-1"}},
        "routes": {name: {"deployments": ["echo"]} for name in ("a", "b", "c")},
    }
    s = await serve({"policy": policy})
    first = await s.stub.ListModels(models_pb2.ListModelsRequest(page_size=2))
    assert [r.alias for r in first.routes] == ["a", "b"] and first.next_page_token
    second = await s.stub.ListModels(
        models_pb2.ListModelsRequest(page_size=2, page_token=first.next_page_token)
    )
    assert [r.alias for r in second.routes] == ["c"] and not second.next_page_token
    assert first.routes[0].deployments[0].price.input_micros_per_million == 0
