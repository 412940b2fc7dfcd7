"""Quotas through the real gRPC server: refusals with rich details, GetQuota, tiers, bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import quota_pb2
from sidecar.core.tokens import count_tokens
from tests.conftest import FakeClock, echo_policy, user
from tests.integration.helpers import rich
from tests.support.api import generate_request, stream_request

pytestmark = pytest.mark.integration
Serve = Callable[..., Any]


@pytest.fixture
def serve(serve: Serve, clock: FakeClock) -> Serve:
    """The real server on a fake clock, 20 s before a minute ends and hours from midnight: windows
    never roll over while a test runs."""

    async def start(raw: dict[str, Any], environ: dict[str, str] | None = None) -> Any:
        return await serve(raw, environ, clock=clock)

    return start


def quota_config(quota: dict[str, Any], **policy: Any) -> dict[str, Any]:
    deployments = {
        "echo": {"provider": "echo", "model": "echo-1", "echo": {"tokens_per_chunk": 2}},
        "pricey": {"provider": "echo", "model": "echo-2", "price": {"input_per_million": 10}},
    }
    routes = {"echo": {"deployments": ["echo"]}, "pricey": {"deployments": ["pricey"]}}
    return {
        "policy": {**echo_policy(), "deployments": deployments, "routes": routes, "quota": quota, **policy}
    }


def request(text: str = "one two three four five six", **kw: Any) -> gen.GenerateRequest:
    return generate_request(
        messages=[user(text)], tenant_id=kw.pop("tenant", "acme"), user_id=kw.pop("user_id", "bob"), **kw
    )


def quota_failure(err: grpc.aio.AioRpcError) -> error_details_pb2.QuotaFailure:
    status = rpc_status.from_call(err)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
            failure = error_details_pb2.QuotaFailure()
            detail.Unpack(failure)
            return failure
    raise AssertionError("no QuotaFailure")


async def test_rate_limited_with_quota_failure_and_retry_info(serve: Serve) -> None:
    running = await serve(quota_config({}))  # free tier: 5 requests a minute per user
    for _ in range(5):
        await running.stub.Generate(request())
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await running.stub.Generate(request())
    err = await rich(info.value)
    assert err.code == grpc.StatusCode.RESOURCE_EXHAUSTED and err.reason == "RATE_LIMITED"
    assert err.info.metadata["limit"] == "tier-requests-per-minute"
    assert err.retry is not None and 0 < err.retry.retry_delay.ToNanoseconds() <= 60e9
    (violation,) = quota_failure(info.value).violations
    assert violation.subject == "tenant:acme/user:bob" and "tier-requests-per-minute" in violation.description
    await running.stub.Generate(request(user_id="carol"))  # another user has a budget of their own


async def test_get_quota_reports_usage_and_reset(serve: Serve) -> None:
    quota = {
        "limits": [
            {"name": "daily-tokens", "metric": "tokens", "window": "day", "limit": 1000},
            {"name": "team-usd", "metric": "usd", "scope": "tenant", "window": "month", "limit": 2.5},
            {"name": "inflight", "metric": "concurrency", "limit": 3, "shadow": True},
        ],
        "output_tokens_estimate": 100,
    }
    running = await serve(quota_config(quota, tier_assignment={"tenants": {"acme": "professional"}}))
    reply = await running.stub.Generate(request())
    spent = reply.summary.usage.total_tokens
    got = await running.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme", user_id="bob"))
    assert got.tier == "professional"
    limits = {limit.name: limit for limit in got.limits}
    assert set(limits) == {"tier-requests-per-minute", "daily-tokens", "team-usd", "inflight"}
    rpm = limits["tier-requests-per-minute"]
    assert (rpm.limit, rpm.used, rpm.remaining, rpm.window) == (100, 1, 99, quota_pb2.QUOTA_WINDOW_MINUTE)
    tokens = limits["daily-tokens"]
    assert (tokens.used, tokens.reserved, tokens.remaining) == (spent, 0, 1000 - spent)
    assert tokens.reset_time.seconds % 86400 == 0 and tokens.scope == quota_pb2.QUOTA_SCOPE_USER
    assert (
        limits["team-usd"].metric == quota_pb2.QUOTA_METRIC_USD and limits["team-usd"].limit == 2_500_000
    )  # micro-dollars
    assert limits["inflight"].shadow and not limits["inflight"].HasField("reset_time")
    tenant_only = await running.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme"))
    assert [limit.name for limit in tenant_only.limits] == ["team-usd"]


async def test_get_quota_bad_input(serve: Serve) -> None:
    running = await serve(quota_config({}, tier_assignment={"source": "metadata"}))
    cases = [
        (quota_pb2.GetQuotaRequest(user_id="bob"), ["tenant_id"]),
        (quota_pb2.GetQuotaRequest(tenant_id="bad tenant!", user_id="{x}"), ["tenant_id", "user_id"]),
        (quota_pb2.GetQuotaRequest(tenant_id="acme", metadata={"tier": "platinum"}), ["metadata[tier]"]),
    ]
    for req, fields in cases:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await running.stub.GetQuota(req)
        err = await rich(info.value)
        assert (err.code, err.reason, err.fields) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_REQUEST",
            fields,
        )


async def test_get_quota_is_authenticated(serve: Serve) -> None:
    running = await serve(
        {**quota_config({}), "settings": {"auth": {"token": {"env": "TOKEN"}}}}, environ={"TOKEN": "s3cret"}
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await running.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme"))
    assert (await rich(info.value)).reason == "MISSING_CREDENTIALS"
    ok = await running.stub.GetQuota(
        quota_pb2.GetQuotaRequest(tenant_id="acme"), metadata=[("authorization", "Bearer s3cret")]
    )
    assert ok.tier == "free"


async def test_get_quota_without_a_quota_policy(serve: Serve) -> None:
    running = await serve({"policy": echo_policy()})
    got = await running.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme", user_id="bob"))
    assert (got.tier, list(got.limits)) == ("free", [])


async def test_tier_route_restriction_and_missing_user(serve: Serve) -> None:
    running = await serve(quota_config({}, tiers={"free": {"allowed_routes": ["echo"]}, "basic": {}}))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await running.stub.Generate(request(model="pricey"))
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.PERMISSION_DENIED, "MODEL_NOT_ALLOWED")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await running.stub.Generate(request(user_id=""))
    err = await rich(info.value)
    assert (err.code, err.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["input.user_id"])
    got = await running.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme", user_id="bob"))
    assert got.limits[0].used == 0  # refused calls charged nothing


async def test_stream_cut_by_token_budget_reports_usage(serve: Serve) -> None:
    quota = {
        "limits": [{"name": "tok", "metric": "tokens", "window": "day", "limit": 60}],
        "output_tokens_estimate": 4,
        "extension_tokens": 4,
    }
    running = await serve(quota_config(quota, tier_assignment={"default": "enterprise"}))
    text = " ".join(f"w{i}" for i in range(40))  # 47 prompt tokens; the echo answers 40 more
    deltas = []
    call = running.stub.StreamGenerate(stream_request(messages=[user(text)], tenant_id="a", user_id="b"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for message in call:
            deltas.append(message.delta.text)
    err = await rich(info.value)
    assert err.reason == "TOKEN_QUOTA_EXCEEDED" and deltas
    prompt = int(err.info.metadata["promptTokens"])
    completion = int(err.info.metadata["completionTokens"])
    assert prompt + completion == 60  # the whole budget and not a token more
    assert completion == sum(count_tokens(d) for d in deltas)  # charged exactly what was delivered
    got = await running.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="a", user_id="b"))
    tok = next(limit for limit in got.limits if limit.name == "tok")
    assert (tok.used, tok.reserved) == (prompt + completion, 0)


async def test_budget_fallback_routes_to_the_cheaper_deployment(serve: Serve) -> None:
    price = {"input_per_million": 100_000, "output_per_million": 100_000}  # $0.10 a token
    deployments = {
        "big": {"provider": "echo", "model": "big", "price": price},
        "small": {"provider": "echo", "model": "small", "price": {"input_per_million": 1_000}},
    }
    quota = {
        "limits": [{"name": "usd", "metric": "usd", "window": "day", "limit": 1}],
        "output_tokens_estimate": 8,
    }
    running = await serve(
        {
            "policy": {
                "default_route": "smart",
                "deployments": deployments,
                "routes": {"smart": {"deployments": ["big", "small"], "budget_fallback": "small"}},
                "tier_assignment": {"default": "enterprise"},
                "quota": quota,
            }
        }
    )
    cheap = await running.stub.Generate(request("hi"))  # ~11 tokens: $1.1 at big's price, 1.1¢ at small's
    assert cheap.summary.served_by.deployment == "small"
    got = await running.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme", user_id="bob"))
    usd = next(limit for limit in got.limits if limit.name == "usd")
    assert usd.used == cheap.summary.cost_micros and usd.reserved == 0


async def test_a_quota_store_that_is_down_is_in_the_log_not_only_the_callers_error(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """GetQuota (and every RPC but a generation) sent a classified server-side failure to its
    caller and logged nothing: a key store or quota store down was visible only to applications.
    A bad request is still the caller's alone."""
    from tests.conftest import free_port

    limits = [{"name": "daily", "metric": "requests", "scope": "tenant", "window": "day", "limit": 5}]
    down = {"store": "redis", "redis_url": f"redis://127.0.0.1:{free_port()}/0", "limits": limits}
    running = await serve(quota_config({**down, "store_timeout_seconds": 0.2}))
    with caplog.at_level("WARNING", logger="sidecar.api"):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await running.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme"))
        assert (await rich(info.value)).reason == "QUOTA_UNAVAILABLE"
        with pytest.raises(grpc.aio.AioRpcError):
            await running.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="bad tenant!"))
    logged = [r for r in caplog.records if r.name == "sidecar.api" and r.levelname == "WARNING"]
    assert [(r.getMessage().split(":")[0], getattr(r, "reason", "")) for r in logged] == [
        ("GetQuota failed", "QUOTA_UNAVAILABLE")
    ]
