"""Traces through the real server: span tree, GenAI attributes, W3C context from caller to upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.app import build_server
from sidecar.deps import build_deps
from sidecar.server import Sidecar
from tests.conftest import make_config, user
from tests.support.api import Stubs, generate_request, text_of
from tests.support.prometheus import quiet_telemetry
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
SECRET_PROMPT = "canary prompt: the owl flies at midnight"


def policy(upstream: Upstream) -> dict[str, Any]:
    return {
        "default_route": "r",
        "deployments": {
            "bad": {
                "provider": "openai",
                "model": "m",
                "base_url": f"{upstream.url}/v1",
                "api_key": {"env": "K"},
            },
            "good": {
                "provider": "openai",
                "model": "m",
                "base_url": f"{upstream.url}/v1",
                "api_key": {"env": "K"},
            },
        },
        "routes": {"r": {"deployments": ["bad", "good"], "retry": {"max_attempts": 1}}},
    }


@pytest.fixture
async def traced(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    started: list[tuple[Sidecar, grpc.aio.Channel]] = []

    async def start(
        raw_policy: dict[str, Any], *, enabled: bool = True, extra: dict[str, Any] | None = None
    ) -> tuple[Any, InMemorySpanExporter]:
        exporter = InMemorySpanExporter()
        settings = {
            "listen": {"address": "127.0.0.1:0"},
            "telemetry": {**quiet_telemetry(tmp_path), "tracing": {"enabled": enabled}},
            **(extra or {}),
        }
        cfg = make_config(
            {"settings": settings, "policy": raw_policy}, {"K": "sk-canary-key-0123456789"}, tmp_path
        )
        sidecar = build_server(cfg, deps=build_deps(cfg, span_exporters=(exporter,)))
        await sidecar.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{sidecar.port}")
        started.append((sidecar, channel))
        return Stubs(channel), exporter

    yield start
    for sidecar, channel in started:
        await channel.close()
        await sidecar.stop(0)


async def test_span_tree_and_trace_context_reaching_the_upstream(traced: Any, upstream: Upstream) -> None:
    upstream.push(
        Reply(status=503, body=b'{"error":{"message":"overloaded"}}'),
        Reply.json("openai/chat_completion.json"),
    )
    stub, exporter = await traced(policy(upstream))
    reply = await stub.Generate(
        generate_request(messages=[user(SECRET_PROMPT)], tenant_id="acme", user_id="alice"),
        metadata=[("traceparent", PARENT)],
    )
    assert text_of(reply)
    spans = exporter.get_finished_spans()
    [root] = [s for s in spans if s.name.startswith("chat ")]
    attempts = sorted((s for s in spans if s.name.startswith("attempt ")), key=lambda s: s.start_time or 0)
    assert [s.name for s in attempts] == ["attempt bad", "attempt good"]
    # the caller's trace continues: same trace id, the caller's span is the root's parent
    assert f"{root.context.trace_id:032x}" == TRACE_ID
    assert root.parent is not None and f"{root.parent.span_id:016x}" == "00f067aa0ba902b7"
    for a in attempts:
        assert a.parent is not None and a.parent.span_id == root.context.span_id
    assert dict(attempts[0].attributes or {})["sidecar.attempt.outcome"] == "PROVIDER_UNAVAILABLE"
    attrs = dict(root.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.usage.input_tokens"] == reply.summary.usage.prompt_tokens
    assert attrs["sidecar.tenant_id"] == "acme"
    # each upstream request carried its own attempt span as the W3C parent
    sent = [seen.headers.get("traceparent", "") for seen in upstream.seen]
    assert sent == [f"00-{TRACE_ID}-{a.context.span_id:016x}-01" for a in attempts]
    # no prompt, completion or key in any span
    everything = repr([dict(s.attributes or {}) for s in spans])
    assert "owl" not in everything and "sk-canary" not in everything and text_of(reply) not in everything


async def test_without_caller_context_a_new_trace_starts(traced: Any, upstream: Upstream) -> None:
    upstream.push(Reply(status=503, body=b"{}"), Reply.json("openai/chat_completion.json"))
    stub, exporter = await traced(policy(upstream))
    await stub.Generate(generate_request(messages=[user("hi")]))
    [root] = [s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]
    assert root.parent is None
    assert upstream.seen[-1].headers["traceparent"].split("-")[1] == f"{root.context.trace_id:032x}"


async def test_disabled_tracing_sends_no_trace_headers(traced: Any, upstream: Upstream) -> None:
    upstream.push(Reply.json("openai/chat_completion.json"))
    stub, exporter = await traced(
        policy(upstream) | {"routes": {"r": {"deployments": ["good"]}}}, enabled=False
    )
    await stub.Generate(generate_request(messages=[user("hi")]), metadata=[("traceparent", PARENT)])
    assert exporter.get_finished_spans() == ()
    assert "traceparent" not in upstream.seen[-1].headers


async def test_quota_and_cache_have_child_spans(traced: Any) -> None:
    policy = {
        "default_route": "echo",
        "deployments": {"echo": {"provider": "echo", "model": "echo-1"}},
        "routes": {"echo": {"deployments": ["echo"]}},
        "quota": {"limits": [{"name": "day", "metric": "requests", "window": "day", "limit": 10}]},
    }
    stub, exporter = await traced(policy, extra={"cache": {"enabled": True}})
    request = generate_request(
        messages=[user("hi")], tenant_id="acme", user_id="alice", config=gen.GenerationConfig(temperature=0)
    )
    for _ in range(2):
        await stub.Generate(request)
    spans = exporter.get_finished_spans()
    roots = [s for s in spans if s.name.startswith("chat ")]
    assert len(roots) == 2
    for root in roots:
        children = {
            s.name: s for s in spans if s.parent is not None and s.parent.span_id == root.context.span_id
        }
        assert {"sidecar.quota.reserve", "sidecar.cache.lookup"} <= set(children)
        assert dict(children["sidecar.quota.reserve"].attributes or {})["sidecar.tier"] == "free"
    hits = [dict(s.attributes or {})["sidecar.cache.hit"] for s in spans if s.name == "sidecar.cache.lookup"]
    assert hits == [False, True]
