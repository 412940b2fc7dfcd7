"""Every ErrorInfo reason the API can return, asserted over the wire with the rich status."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import generation_service_pb2_grpc, models_pb2
from sidecar.api.gate import Gate
from sidecar.api.paging import PageTokens
from sidecar.api.servicer import GenerationServicer
from sidecar.config.load import load_config
from sidecar.core.types import Call, Chunk
from sidecar.deps import build_deps
from tests.conftest import echo_policy, user
from tests.integration.helpers import rich
from tests.support.api import Stubs, generate_request, stream_request, text_of
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration


def msg(text: str = "hi", role: int = gen.ROLE_USER) -> gen.Message:
    return gen.Message(role=role, content=[gen.ContentPart(text=text)])  # type: ignore[arg-type]


BAD_INPUTS: list[tuple[str, dict[str, Any], grpc.StatusCode, str, str]] = [
    ("no messages", {}, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", "messages"),
    (
        "unknown role",
        {"messages": [msg(role=42)]},
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        "messages[0].role",
    ),
    (
        "unknown model",
        {"messages": [msg()], "model": "gpt-17"},
        grpc.StatusCode.NOT_FOUND,
        "MODEL_NOT_FOUND",
        "",
    ),
    (
        "oversized message",
        {"messages": [msg("x" * 200_001)]},
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        "messages[0].content",
    ),
    (
        "negative max_tokens",
        {"messages": [msg()], "config": gen.GenerationConfig(max_tokens=-1)},
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        "config.max_tokens",
    ),
    (
        "absurd max_tokens",
        {"messages": [msg()], "config": gen.GenerationConfig(max_tokens=10**9)},
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        "config.max_tokens",
    ),
    (
        "temperature out of range",
        {"messages": [msg()], "config": gen.GenerationConfig(temperature=3)},
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        "config.temperature",
    ),
    (
        "empty content",
        {"messages": [msg("")]},
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        "messages[0].content[0].text",
    ),
    (
        "huge metadata",
        {"messages": [msg()], "metadata": {f"k{i}": "v" * 100 for i in range(100)}},
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_REQUEST",
        "metadata",
    ),
]


def upstream_policy(upstream: Upstream) -> dict[str, Any]:
    return {
        "default_route": "r",
        "deployments": {"d": {"provider": "openai", "model": "m", "base_url": f"{upstream.url}/v1"}},
        "routes": {"r": {"deployments": ["d"]}},
    }


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize(
    ("case", "fields", "code", "reason", "field"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS]
)
async def test_bad_input(
    serve: Any,
    upstream: Upstream,
    stream: bool,
    case: str,
    fields: dict[str, Any],
    code: grpc.StatusCode,
    reason: str,
    field: str,
) -> None:
    s = await serve({"policy": upstream_policy(upstream)})
    with pytest.raises(grpc.aio.AioRpcError) as info:
        if stream:
            async for _ in s.stub.StreamGenerate(stream_request(**fields)):
                pass
        else:
            await s.stub.Generate(generate_request(**fields))
    err = await rich(info.value)
    assert (err.code, err.reason) == (code, reason)
    if field:
        assert f"input.{field}" in err.fields
        assert err.info.metadata["field"] == err.fields[0]
    assert upstream.seen == []  # rejected before any provider saw it


async def test_message_over_the_transport_limit_is_refused_and_the_server_survives(serve: Any) -> None:
    s = await serve({"policy": echo_policy(), "settings": {"max_receive_message_bytes": 64 * 1024}})
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(messages=[msg("x" * 100_000)]))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    reply = await s.stub.Generate(generate_request(messages=[msg("still here")]))
    assert text_of(reply) == "still here"


TOKEN_ENV = {"SIDECAR_TOKEN": "tok-123456"}


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [((), "MISSING_CREDENTIALS"), ((("authorization", "Bearer wrong"),), "INVALID_CREDENTIALS")],
)
async def test_shared_token_is_required(
    serve: Any, metadata: tuple[tuple[str, str], ...], reason: str
) -> None:
    s = await serve(
        {"policy": echo_policy(), "settings": {"auth": {"token": {"env": "SIDECAR_TOKEN"}}}}, TOKEN_ENV
    )
    for attempt in (
        s.stub.Generate(generate_request(messages=[msg()]), metadata=metadata),
        s.stub.ListModels(models_pb2.ListModelsRequest(), metadata=metadata),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await attempt
        err = await rich(info.value)
        assert (err.code, err.reason) == (grpc.StatusCode.UNAUTHENTICATED, reason)
        assert "tok-123456" not in err.message


async def test_right_token_passes_and_health_stays_open(serve: Any) -> None:
    s = await serve(
        {"policy": echo_policy(), "settings": {"auth": {"token": {"env": "SIDECAR_TOKEN"}}}}, TOKEN_ENV
    )
    auth = (("authorization", "Bearer tok-123456"),)
    reply = await s.stub.Generate(generate_request(messages=[msg("ok")]), metadata=auth)
    assert text_of(reply) == "ok"
    health = await health_pb2_grpc.HealthStub(s.channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING


async def crashing_pipeline(call: Call) -> AsyncGenerator[Chunk, None]:
    raise RuntimeError("secret internals: sk-should-not-leak")
    yield Chunk()  # pragma: no cover


async def test_unclassified_crash_is_internal_with_request_info_only(tmp_path: Any) -> None:
    cfg = load_config(None, {})
    deps = build_deps(cfg)
    servicer = GenerationServicer(
        gate=Gate(deps.verifier, "GenerationService"),
        pipeline=crashing_pipeline,
        policy=cfg.policy,
        routing=deps.routing,
        providers=deps.providers,
        clock=deps.clock,
        pages=PageTokens(b"k"),
    )
    server = grpc.aio.server()
    generation_service_pb2_grpc.add_GenerationServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await Stubs(channel).Generate(generate_request(messages=[user("x")], request_id="r-9"))
    finally:
        await server.stop(0)
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.INTERNAL, "INTERNAL")
    assert "sk-should-not-leak" not in err.message and "r-9" in err.message
    status = rpc_status.from_call(info.value)
    request_info = error_details_pb2.RequestInfo()
    assert any(d.Unpack(request_info) for d in status.details)
    assert request_info.request_id == "r-9"
