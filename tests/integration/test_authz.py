"""Authorization by service, method and tenant: each rule, with a denied credential reaching nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import keys_pb2, models_pb2, personas_pb2, quota_pb2, usage_pb2
from sidecar.config.load import ConfigError
from tests.conftest import admin_socket, make_config, user
from tests.integration.helpers import rich
from tests.support.api import generate_request, text_of
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration

TOKENS = {
    "APP": "app-token",
    "GEN": "gen-token",
    "LIST": "list-token",
    "ACME": "acme-token",
    "OPS": "ops-token",
}


def policy(upstream: Upstream) -> dict[str, Any]:
    return {
        "default_route": "r",
        "deployments": {"d": {"provider": "openai", "model": "m", "base_url": f"{upstream.url}/v1"}},
        "routes": {"r": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
        "routing": {"probes": {"enabled": False}},
    }


def auth() -> dict[str, Any]:
    return {
        "token": {"env": "APP"},  # the legacy shared token: the data plane
        "credentials": [
            {"name": "gen", "token": {"env": "GEN"}, "allow": ["GenerationService"]},
            {
                "name": "list",
                "token": {"env": "LIST"},
                "allow": ["orchestrator.v1.GenerationService/ListModels"],
            },
            {"name": "acme", "token": {"env": "ACME"}, "allow": ["*"], "tenants": ["acme"]},
            {"name": "ops", "token": {"env": "OPS"}, "allow": ["AdminService"]},
        ],
    }


def bearer(name: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {TOKENS[name]}")]


@pytest.fixture
async def s(serve: Any, upstream: Upstream) -> Any:
    return await serve(
        {"policy": policy(upstream), "settings": {"auth": auth(), "admin": admin_socket()}}, environ=TOKENS
    )


def ask(tenant: str = "acme") -> Any:
    return generate_request(messages=[user("hi")], tenant_id=tenant, user_id="u")


async def denied(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    err = await rich(info.value)
    return err.code, err.reason


PD = grpc.StatusCode.PERMISSION_DENIED


def everything(tenant: str) -> usage_pb2.GetUsageRequest:
    req = usage_pb2.GetUsageRequest(tenant_id=tenant, group_by=usage_pb2.USAGE_GROUP_BY_USER)
    req.start_time.FromSeconds(0)
    req.end_time.FromSeconds(365 * 86_400)
    return req


async def test_the_legacy_token_has_the_data_plane_but_not_admin(s: Any, upstream: Upstream) -> None:
    upstream.push(Reply.json("openai/chat_completion.json"))
    assert text_of(await s.stub.Generate(ask(), metadata=bearer("APP")))
    got = await s.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme"), metadata=bearer("APP"))
    assert got.tier
    personas = await s.stub.ListPersonas(personas_pb2.ListPersonasRequest(), metadata=bearer("APP"))
    assert not personas.personas
    rotate = s.stub.RotateKeys(keys_pb2.RotateKeysRequest(), metadata=bearer("APP"))
    assert await denied(rotate) == (PD, "METHOD_NOT_ALLOWED")


async def test_a_service_grant_allows_that_service_only(s: Any, upstream: Upstream) -> None:
    assert (await s.stub.ListModels(models_pb2.ListModelsRequest(), metadata=bearer("GEN"))).routes
    quota = s.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme"), metadata=bearer("GEN"))
    assert await denied(quota) == (PD, "METHOD_NOT_ALLOWED")
    switch = s.stub.Switch(
        personas_pb2.SwitchRequest(tenant_id="acme", user_id="u", conversation_id="c", persona_id="x"),
        metadata=bearer("GEN"),
    )
    assert await denied(switch) == (PD, "METHOD_NOT_ALLOWED")


async def test_a_method_grant_allows_that_method_only_and_a_denied_call_reaches_nothing(
    s: Any, upstream: Upstream
) -> None:
    assert (await s.stub.ListModels(models_pb2.ListModelsRequest(), metadata=bearer("LIST"))).routes
    assert await denied(s.stub.Generate(ask(), metadata=bearer("LIST"))) == (PD, "METHOD_NOT_ALLOWED")
    assert upstream.seen == []  # no provider was asked
    usage = await s.stub.GetUsage(everything("acme"), metadata=bearer("OPS"))
    assert list(usage.groups) == []  # nothing was recorded or charged


async def test_a_tenant_limited_credential_acts_only_for_its_tenants(s: Any, upstream: Upstream) -> None:
    upstream.push(Reply.json("openai/chat_completion.json"))
    assert text_of(await s.stub.Generate(ask("acme"), metadata=bearer("ACME")))
    assert await denied(s.stub.Generate(ask("globex"), metadata=bearer("ACME"))) == (PD, "TENANT_NOT_ALLOWED")
    assert await denied(s.stub.Generate(ask(""), metadata=bearer("ACME"))) == (PD, "TENANT_NOT_ALLOWED")
    quota = s.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="globex"), metadata=bearer("ACME"))
    assert await denied(quota) == (PD, "TENANT_NOT_ALLOWED")
    usage = s.stub.GetUsage(usage_pb2.GetUsageRequest(tenant_id="globex"), metadata=bearer("ACME"))
    assert await denied(usage) == (PD, "TENANT_NOT_ALLOWED")
    rotate = s.stub.RotateKeys(keys_pb2.RotateKeysRequest(), metadata=bearer("ACME"))
    assert await denied(rotate) == (PD, "TENANT_NOT_ALLOWED")  # spans every tenant
    assert len(upstream.seen) == 1


async def test_unknown_and_missing_tokens_are_unauthenticated(s: Any) -> None:
    unknown = s.stub.ListModels(models_pb2.ListModelsRequest(), metadata=[("authorization", "Bearer nope")])
    assert await denied(unknown) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")
    assert await denied(s.stub.ListModels(models_pb2.ListModelsRequest())) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "MISSING_CREDENTIALS",
    )


async def test_the_admin_credential_reaches_admin_on_its_socket_only(s: Any) -> None:
    rotate = s.stub.RotateKeys(keys_pb2.RotateKeysRequest(), metadata=bearer("OPS"))
    assert await denied(rotate) == (grpc.StatusCode.FAILED_PRECONDITION, "KEYS_DISABLED")  # admitted
    generate = s.stub.Generate(ask(), metadata=bearer("OPS"))
    assert await denied(generate) == (PD, "METHOD_NOT_ALLOWED")


async def test_admin_is_off_by_default_even_for_a_wildcard_credential(serve: Any, upstream: Upstream) -> None:
    s = await serve({"policy": policy(upstream), "settings": {"auth": auth()}}, environ=TOKENS)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.RotateKeys(keys_pb2.RotateKeysRequest(), metadata=bearer("ACME"))
    assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED


async def test_admin_on_the_listener_needs_credentials(tmp_path: Path, upstream: Upstream) -> None:
    with pytest.raises(ConfigError, match=r"admin\.mode listener needs auth credentials"):
        make_config({"policy": policy(upstream), "settings": {"admin": {"mode": "listener"}}}, tmp=tmp_path)


async def test_admin_on_the_listener_with_credentials(serve: Any, upstream: Upstream) -> None:
    settings = {"auth": auth(), "admin": {"mode": "listener"}}
    s = await serve({"policy": policy(upstream), "settings": settings}, environ=TOKENS)
    query = usage_pb2.GetUsageRequest(tenant_id="acme")
    assert (await denied(s.stub.GetUsage(query, metadata=bearer("OPS"))))[1] == "INVALID_REQUEST"  # admitted
    assert await denied(s.stub.GetUsage(query, metadata=bearer("GEN"))) == (PD, "METHOD_NOT_ALLOWED")


@pytest.mark.parametrize("grant", ["NoSuchService", "GenerationService/Nope", "generation"])
async def test_a_grant_naming_nothing_is_a_config_error(
    tmp_path: Path, upstream: Upstream, grant: str
) -> None:
    bad = {"credentials": [{"name": "x", "token": {"env": "GEN"}, "allow": [grant]}]}
    with pytest.raises(ConfigError, match="malformed entries"):
        make_config({"policy": policy(upstream), "settings": {"auth": bad}}, TOKENS, tmp_path)
