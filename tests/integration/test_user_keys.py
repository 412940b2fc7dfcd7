"""User-supplied provider keys end to end: register, look up, bring along, delete, rotate, and keep secret.

The real server, with the local KEK backend (KEK file and SQLite store in tmp_path) unless a test says
otherwise, talks to a loopback upstream speaking the OpenAI and Anthropic wire formats. Each test checks
what the caller got (code and ErrorInfo reason) and what the upstream got (the auth header: the user's
key exactly, and never the platform key).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import grpc
import pytest
from google.protobuf.message import Message as ProtoMessage

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import keys_pb2, models_pb2
from sidecar.keys.backend import KeyContext
from sidecar.keys.envelope import Envelope
from sidecar.keys.local import LocalKekBackend
from sidecar.keys.service import KeyService
from sidecar.telemetry.logging import JsonFormatter
from tests.conftest import Running, admin_socket, user
from tests.integration.helpers import RichError, rich
from tests.integration.test_lifecycle import eventually
from tests.support.api import generate_request, stream_request, text_of
from tests.support.keys import forms, key_service, local_keys
from tests.support.kms import CREDENTIALS, start_moto, stop
from tests.support.upstream import Reply, Seen, Upstream

pytestmark = pytest.mark.integration

Serve = Callable[..., Awaitable[Running]]
ENV = {
    "OPENAI_PLATFORM": "sk-platform-openai-9d8c7b6a5f4e3d2c",
    "ANTHROPIC_PLATFORM": "sk-ant-platform-1a2b3c4d5e6f",
}
PLATFORM_KEYS = tuple(ENV.values())
# 40 characters: the middle of its envelope falls on the member names of the envelope's context
ALICE_OPENAI = "sk-alice-openai-2b7e151628aed2a6abf71588"
ALICE_ANTHROPIC = "sk-ant-alice-3c4fcf098815f7aba6d2ae28"
BOB_OPENAI = "sk-bob-openai-e3b0c44298fc1c149afbf4c8"
GLOBEX_OPENAI = "sk-globex-alice-8f14e45fceea167a5a36dedd"
CANARY = "sk-CANARY-7f3a9c2e1d-0123456789"
HELLO = "Hello! How can I help you today?"
AUTH_HEADERS = frozenset({"authorization", "x-api-key", "api-key"})
CODE = grpc.StatusCode


def ok() -> Reply:
    return Reply.json("openai/chat_completion.json")


def ok_anthropic() -> Reply:
    return Reply.json("anthropic/message.json")


def policy(upstream: Upstream) -> dict[str, Any]:
    """One OpenAI and one Anthropic deployment on the same upstream, a route per user_key mode."""
    once = {"max_attempts": 1}
    return {
        "default_route": "never",
        "deployments": {
            "oai": {
                "provider": "openai",
                "model": "gpt-test",
                "base_url": f"{upstream.url}/v1",
                "api_key": {"env": "OPENAI_PLATFORM"},
                "allow_user_keys": True,  # a loopback stand-in for the provider's own endpoint
            },
            "ant": {
                "provider": "anthropic",
                "model": "claude-test",
                "base_url": upstream.url,
                "api_key": {"env": "ANTHROPIC_PLATFORM"},
                "allow_user_keys": True,
            },
        },
        "routes": {
            "required": {"deployments": ["oai"], "user_key": "required", "retry": once},
            "preferred": {"deployments": ["oai"], "user_key": "preferred", "retry": once},
            "never": {"deployments": ["oai"], "user_key": "never", "retry": once},
            "anthropic": {"deployments": ["ant"], "user_key": "required", "retry": once},
            "fallback": {"deployments": ["oai", "ant"], "user_key": "required", "retry": once},
            "either": {"deployments": ["ant", "oai"], "user_key": "required", "retry": once},
        },
        "routing": {"probes": {"enabled": False}},  # so `seen` holds generation calls only
    }


def config(upstream: Upstream, keys: dict[str, Any]) -> dict[str, Any]:
    return {"settings": {"keys": keys, "admin": admin_socket()}, "policy": policy(upstream)}


@pytest.fixture
async def s(serve: Serve, upstream: Upstream, tmp_path: Path) -> Running:
    """The server with the local KEK backend."""
    return await serve(config(upstream, local_keys(tmp_path)), ENV)


@pytest.fixture
async def service(s: Running, tmp_path: Path) -> AsyncIterator[KeyService]:
    """A KeyService in this process on the server's KEK file: makes envelopes the server can open."""
    async with key_service(Path(local_keys(tmp_path)["local"]["kek_file"])) as keys:
        yield keys


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3's standard credential chain, as in production; the environment is its first link."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def kms_keys(tmp: Path, kms: Any) -> dict[str, Any]:
    return {
        "backend": "aws-kms",
        "aws_kms": {"key_id": kms.key_arn, "region": kms.region, "endpoint_url": kms.url},
        "store_path": str(tmp / "keys.db"),
    }


# --- requests and what the upstream saw -----------------------------------------------------------------


def req(
    route: str,
    *,
    tenant: str = "acme",
    user_id: str = "alice",
    ref: str | None = None,
    envelope: str | None = None,
) -> gen.GenerateRequest:
    key = None
    if ref is not None:
        key = keys_pb2.ProviderKey(key_ref=ref)
    elif envelope is not None:
        key = keys_pb2.ProviderKey(envelope=envelope)
    return generate_request(
        model=route, messages=[user("Hi")], tenant_id=tenant, user_id=user_id, provider_key=key
    )


async def register(
    s: Running, api_key: str, *, tenant: str = "acme", user_id: str = "alice", provider: str = "openai"
) -> str:
    reply = await s.stub.RegisterKey(
        keys_pb2.RegisterKeyRequest(tenant_id=tenant, user_id=user_id, provider=provider, api_key=api_key)
    )
    return str(reply.key_ref)


async def fails(call: Awaitable[object]) -> RichError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return await rich(info.value)


def credentials(seen: Seen) -> dict[str, str]:
    """The auth headers of one upstream request, names lowercased."""
    return {k.lower(): v for k, v in seen.headers.items() if k.lower() in AUTH_HEADERS}


def no_platform_key(seen: Seen) -> bool:
    sent = json.dumps([list(seen.headers.items()), seen.body])
    return not any(key in sent for key in PLATFORM_KEYS)


def flip_middle(text: str) -> str:
    """One character changed, in the middle of the text."""
    mid = len(text) // 2
    return text[:mid] + ("A" if text[mid] != "A" else "B") + text[mid + 1 :]


def flip_ciphertext(text: str) -> str:
    """A well-formed envelope whose ciphertext has one bit changed."""
    envelope = Envelope.decode(text)
    ct = bytearray(envelope.ciphertext)
    ct[len(ct) // 2] ^= 0x01
    return dataclasses.replace(envelope, ciphertext=bytes(ct)).encode()


# --- what a secret must not be found in ---------------------------------------------------------------


class Evidence:
    """Everything a secret must not be found in: logs, output, errors, responses, files."""

    def __init__(self) -> None:
        self.items: list[tuple[str, bytes]] = []

    def text(self, where: str, data: str | bytes) -> None:
        self.items.append((where, data if isinstance(data, bytes) else data.encode()))

    def message(self, where: str, message: ProtoMessage) -> None:
        self.text(f"{where} (wire)", message.SerializeToString())
        self.text(f"{where} (text)", str(message))

    async def error(self, where: str, call: Awaitable[object]) -> RichError:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        err = info.value
        self.text(f"{where}: details", err.details() or "")
        self.text(f"{where}: debug string", err.debug_error_string())
        for kind, metadata in (("initial", err.initial_metadata()), ("trailing", err.trailing_metadata())):
            for item in metadata or ():  # (key, value); a -bin value's ASCII stays verbatim in its repr
                self.text(f"{where}: {kind} metadata", repr(item))
        decoded = await rich(err)
        self.text(f"{where}: rich status", f"{decoded.info} {decoded.bad_request} {decoded.retry}")
        return decoded

    def logs(self, caplog: pytest.LogCaptureFixture) -> None:
        formatter = JsonFormatter()
        phases: tuple[Literal["setup", "call"], ...] = ("setup", "call")
        for phase in phases:
            for record in caplog.get_records(phase):
                self.text(f"log {record.name}", formatter.format(record))
        self.text("caplog text", caplog.text)

    def files(self, root: Path) -> None:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                self.text(f"file {path.name}", path.read_bytes())

    def leaks(self, secret: str) -> list[str]:
        return [
            f"{form} in {where}"
            for where, data in self.items
            for form, needle in forms(secret).items()
            if needle in data
        ]


async def drain(call: Any) -> list[gen.StreamGenerateResponse]:
    return [event async for event in call]


def fields_of(request: gen.GenerateRequest) -> dict[str, Any]:
    """A GenerateRequest's set fields, to build the StreamGenerateRequest of the same shape."""
    return {field.name: value for field, value in request.input.ListFields()}


# --- 1. register, list, use, delete ---------------------------------------------------------------------


async def test_registered_key_reaches_openai_as_bearer_only_and_delete_revokes_it(
    s: Running, upstream: Upstream
) -> None:
    reply = await s.stub.RegisterKey(
        keys_pb2.RegisterKeyRequest(
            tenant_id="acme", user_id="alice", provider="openai", api_key=ALICE_OPENAI
        )
    )
    assert reply.key_ref.startswith("key_") and reply.last_four == "…" + ALICE_OPENAI[-4:]

    listed = await s.stub.ListTenantKeys(keys_pb2.ListTenantKeysRequest(tenant_id="acme"))
    [info] = listed.keys
    assert (info.key_ref, info.tenant_id, info.user_id, info.provider, info.key_name, info.last_four) == (
        reply.key_ref,
        "acme",
        "alice",
        "openai",
        "default",
        reply.last_four,
    )
    assert info.HasField("create_time") and info.update_time == info.create_time
    wire = listed.SerializeToString()
    assert ALICE_OPENAI.encode() not in wire and ALICE_OPENAI[:-4].encode() not in wire
    assert b"oenv1." not in wire  # not even the envelope

    upstream.push(ok())
    answer = await s.stub.Generate(req("required", ref=reply.key_ref))
    assert text_of(answer) == HELLO and answer.summary.served_by.provider == "openai"
    [seen] = upstream.seen
    assert seen.path == "/v1/chat/completions"
    assert credentials(seen) == {"authorization": f"Bearer {ALICE_OPENAI}"}
    assert no_platform_key(seen)

    deleted = await s.stub.DeleteKey(
        keys_pb2.DeleteKeyRequest(tenant_id="acme", user_id="alice", key_ref=reply.key_ref)
    )
    assert deleted.deleted
    err = await fails(s.stub.Generate(req("required", ref=reply.key_ref)))
    assert (err.code, err.reason) == (CODE.PERMISSION_DENIED, "KEY_CONTEXT_MISMATCH")
    again = await s.stub.DeleteKey(
        keys_pb2.DeleteKeyRequest(tenant_id="acme", user_id="alice", key_ref=reply.key_ref)
    )
    assert not again.deleted
    own = await s.stub.ListKeys(keys_pb2.ListKeysRequest(tenant_id="acme", user_id="alice"))
    assert not own.keys
    assert not (await s.stub.ListTenantKeys(keys_pb2.ListTenantKeysRequest(tenant_id="acme"))).keys
    assert len(upstream.seen) == 1


async def test_registered_key_reaches_anthropic_as_x_api_key_only(s: Running, upstream: Upstream) -> None:
    ref = await register(s, ALICE_ANTHROPIC, provider="anthropic")
    upstream.push(ok_anthropic())
    answer = await s.stub.Generate(req("anthropic", ref=ref))
    assert text_of(answer) == HELLO and answer.summary.served_by.provider == "anthropic"
    [seen] = upstream.seen
    assert seen.path == "/v1/messages"
    assert credentials(seen) == {"x-api-key": ALICE_ANTHROPIC}
    assert {k.lower() for k in seen.headers} >= {"anthropic-version"} and no_platform_key(seen)


# --- 2. the user's registered key, looked up per provider; the platform key; required and never ---------


async def test_lookup_uses_the_users_key_else_the_platform_key(s: Running, upstream: Upstream) -> None:
    await register(s, ALICE_OPENAI)
    await register(s, ALICE_ANTHROPIC, provider="anthropic")
    upstream.push(ok(), ok(), ok(), ok_anthropic())
    await s.stub.Generate(req("preferred"))  # alice, no provider_key: her openai key
    await s.stub.Generate(req("preferred", user_id="bob"))  # bob has none: the platform key
    await s.stub.Generate(req("never"))  # never: the platform key, even for alice
    await s.stub.Generate(req("anthropic"))  # required, looked up: her anthropic key
    assert [credentials(seen) for seen in upstream.seen] == [
        {"authorization": f"Bearer {ALICE_OPENAI}"},
        {"authorization": f"Bearer {ENV['OPENAI_PLATFORM']}"},
        {"authorization": f"Bearer {ENV['OPENAI_PLATFORM']}"},
        {"x-api-key": ALICE_ANTHROPIC},
    ]


async def test_required_without_a_key_fails_before_the_upstream(s: Running, upstream: Upstream) -> None:
    await register(s, ALICE_OPENAI)
    err = await fails(s.stub.Generate(req("required", user_id="bob")))
    assert (err.code, err.reason) == (CODE.FAILED_PRECONDITION, "USER_KEY_REQUIRED")
    assert err.info.metadata["provider"] == "openai"
    err = await fails(s.stub.Generate(req("required", user_id="")))  # no user: no key to look up
    assert (err.code, err.reason, err.fields) == (CODE.INVALID_ARGUMENT, "INVALID_REQUEST", ["input.user_id"])
    assert upstream.seen == []


async def test_required_route_never_falls_back_to_a_platform_key_of_another_provider(
    s: Running, upstream: Upstream
) -> None:
    await register(s, ALICE_OPENAI)  # and no anthropic key
    upstream.push(Reply(status=503, body=b'{"error":{"message":"overloaded"}}'))
    err = await fails(s.stub.Generate(req("fallback")))
    # the openai failure as itself (it was USER_KEY_REQUIRED for the anthropic deployment, which hid it)
    assert (err.code, err.reason) == (CODE.UNAVAILABLE, "PROVIDERS_UNAVAILABLE")
    [seen] = upstream.seen  # the openai attempt only; the anthropic deployment was never called
    assert credentials(seen) == {"authorization": f"Bearer {ALICE_OPENAI}"}


async def test_a_brought_key_picks_its_providers_deployments_of_the_route(
    s: Running, upstream: Upstream, service: KeyService
) -> None:
    """`either` lists Anthropic first; an OpenAI key (a ref or an envelope) goes to OpenAI only."""
    ref = await register(s, ALICE_OPENAI)
    envelope = await service.encrypt(KeyContext("acme", "alice", "openai", "default"), ALICE_OPENAI.encode())
    for brought in ({"ref": ref}, {"envelope": envelope}):
        upstream.push(ok())
        reply = await s.stub.Generate(req("either", **brought))
        assert text_of(reply) == HELLO and reply.summary.served_by.deployment == "oai"
        assert [a.deployment for a in reply.summary.attempts] == ["oai"]
    assert [seen.path for seen in upstream.seen] == ["/v1/chat/completions"] * 2


async def test_a_looked_up_key_picks_the_deployments_of_the_providers_the_user_has_keys_for(
    s: Running, upstream: Upstream
) -> None:
    """No key brought, a `required` route: its first deployment of a provider the user has no key for
    was USER_KEY_REQUIRED at once, the deployment she has a key for never tried; and after a failure of
    that deployment, the next one's missing key hid it (FAILED_PRECONDITION, not retryable)."""
    await register(s, ALICE_OPENAI)
    upstream.push(ok())
    assert text_of(await s.stub.Generate(req("either"))) == HELLO  # anthropic first; alice's is openai
    assert credentials(upstream.seen[-1]) == {"authorization": f"Bearer {ALICE_OPENAI}"}
    upstream.push(Reply(status=500, body=b'{"error":{"message":"overloaded"}}'))
    err = await fails(s.stub.Generate(req("fallback")))  # openai first, then anthropic
    assert (err.code, err.reason) == (CODE.UNAVAILABLE, "PROVIDERS_UNAVAILABLE")
    assert len(upstream.seen) == 2
    err = await fails(s.stub.Generate(req("either", user_id="bob")))  # bob has no key at all
    assert (err.code, err.reason) == (CODE.FAILED_PRECONDITION, "USER_KEY_REQUIRED")
    assert len(upstream.seen) == 2


async def test_a_failure_of_the_keys_provider_is_reported_as_itself(s: Running, upstream: Upstream) -> None:
    """No fallback to a deployment the key cannot open, so no KEY_CONTEXT_MISMATCH hiding the outage."""
    ref = await register(s, ALICE_OPENAI)
    upstream.push(Reply(status=503, body=b'{"error":{"message":"overloaded"}}'))
    err = await fails(s.stub.Generate(req("fallback", ref=ref)))
    assert (err.code, err.reason) == (CODE.UNAVAILABLE, "PROVIDERS_UNAVAILABLE")
    assert len(upstream.seen) == 1  # the openai attempt; the anthropic deployment was not tried
    err = await fails(s.stub.Generate(req("anthropic", ref=ref)))
    assert (err.code, err.reason, err.info.metadata["fields"]) == (
        CODE.PERMISSION_DENIED,
        "KEY_CONTEXT_MISMATCH",
        "provider",
    )
    assert len(upstream.seen) == 1


async def test_never_route_refuses_a_provider_key(s: Running, upstream: Upstream) -> None:
    ref = await register(s, ALICE_OPENAI)
    err = await fails(s.stub.Generate(req("never", ref=ref)))
    assert (err.code, err.reason) == (CODE.INVALID_ARGUMENT, "INVALID_REQUEST")
    assert err.fields == ["input.provider_key"] and err.info.metadata["field"] == "input.provider_key"
    assert upstream.seen == []


# --- 3. an inline envelope the application keeps, and everything that must not open ----------------------


async def test_inline_envelope_opens_only_for_its_owner_and_provider(
    s: Running, upstream: Upstream, service: KeyService
) -> None:
    envelope = await service.encrypt(KeyContext("acme", "alice", "openai", "default"), ALICE_OPENAI.encode())
    upstream.push(ok())
    assert text_of(await s.stub.Generate(req("required", envelope=envelope))) == HELLO
    assert credentials(upstream.seen[0]) == {"authorization": f"Bearer {ALICE_OPENAI}"}

    for route, tenant, user_id, differing in [
        ("required", "globex", "alice", "tenant"),
        ("required", "acme", "bob", "user"),
        ("preferred", "acme", "bob", "user"),  # preferred does not fall back to the platform key either
        ("anthropic", "acme", "alice", "provider"),
    ]:
        err = await fails(s.stub.Generate(req(route, tenant=tenant, user_id=user_id, envelope=envelope)))
        assert (err.code, err.reason, err.info.metadata["fields"]) == (
            CODE.PERMISSION_DENIED,
            "KEY_CONTEXT_MISMATCH",
            differing,
        ), (route, tenant, user_id)
    assert len(upstream.seen) == 1


async def test_tampered_envelopes_are_refused(s: Running, upstream: Upstream, service: KeyService) -> None:
    envelope = await service.encrypt(KeyContext("acme", "alice", "openai", "default"), ALICE_OPENAI.encode())
    # The middle of an envelope is its context, in the clear (authenticated, not secret); for this key's
    # length the flip lands on the context's member names, so the envelope no longer parses.
    err = await fails(s.stub.Generate(req("required", envelope=flip_middle(envelope))))
    assert (err.code, err.reason) == (CODE.INVALID_ARGUMENT, "INVALID_KEY_ENVELOPE")
    # bad input names its field, like every other INVALID_ARGUMENT (BadRequest and metadata.field)
    assert err.fields == ["input.provider_key.envelope"]
    assert err.info.metadata["field"] == "input.provider_key.envelope"
    err = await fails(s.stub.Generate(req("required", envelope="oenv1.not-an-envelope")))
    assert (err.reason, err.fields) == ("INVALID_KEY_ENVELOPE", ["input.provider_key.envelope"])
    # A well-formed envelope with a changed ciphertext fails AES-GCM authentication: a damaged record.
    err = await fails(s.stub.Generate(req("required", envelope=flip_ciphertext(envelope))))
    assert (err.code, err.reason) == (CODE.FAILED_PRECONDITION, "KEY_RECORD_CORRUPT")
    assert upstream.seen == []


async def test_a_key_ref_of_another_owner_or_provider_is_a_mismatch(s: Running, upstream: Upstream) -> None:
    globex = await register(s, GLOBEX_OPENAI, tenant="globex")
    bobs = await register(s, BOB_OPENAI, user_id="bob")
    alices = await register(s, ALICE_OPENAI)
    for route, ref in [("required", globex), ("required", bobs), ("preferred", bobs), ("anthropic", alices)]:
        err = await fails(s.stub.Generate(req(route, ref=ref)))
        assert (err.code, err.reason) == (CODE.PERMISSION_DENIED, "KEY_CONTEXT_MISMATCH"), (route, ref)
    deleted = await s.stub.DeleteKey(
        keys_pb2.DeleteKeyRequest(tenant_id="acme", user_id="alice", key_ref=globex)
    )
    assert not deleted.deleted  # another tenant's ref cannot be deleted either
    assert upstream.seen == []


async def test_provider_key_without_tenant_or_user_is_invalid(s: Running, service: KeyService) -> None:
    envelope = await service.encrypt(KeyContext("acme", "alice", "openai", "default"), ALICE_OPENAI.encode())
    ref = await register(s, ALICE_OPENAI)
    for tenant, user_id in [("", "alice"), ("acme", ""), ("", "")]:
        for key in ({"ref": ref}, {"envelope": envelope}):
            err = await fails(s.stub.Generate(req("required", tenant=tenant, user_id=user_id, **key)))
            assert (err.code, err.reason) == (CODE.INVALID_ARGUMENT, "INVALID_REQUEST")
            assert "input.provider_key" in err.fields


# --- 4. rotation, and the real backends -----------------------------------------------------------------


async def test_rotate_keys_rewraps_every_record_and_the_keys_still_work(
    s: Running, upstream: Upstream
) -> None:
    refs = {
        "alice-openai": await register(s, ALICE_OPENAI),
        "alice-anthropic": await register(s, ALICE_ANTHROPIC, provider="anthropic"),
        "bob-openai": await register(s, BOB_OPENAI, user_id="bob"),
        "globex": await register(s, GLOBEX_OPENAI, tenant="globex"),
    }
    keys = s.sidecar.deps.keys
    assert keys is not None
    upstream.push(ok())
    await s.stub.Generate(req("required", ref=refs["alice-openai"]))  # cached before the rotation
    before = {
        k.key_ref: k
        for k in (await s.stub.ListTenantKeys(keys_pb2.ListTenantKeysRequest(tenant_id="acme"))).keys
    }
    assert keys.cache.stats().backend_calls == 1

    rotated = await s.stub.RotateKeys(keys_pb2.RotateKeysRequest())
    assert (rotated.rotated, rotated.failed) == (len(refs), 0)

    after = {
        k.key_ref: k
        for k in (await s.stub.ListTenantKeys(keys_pb2.ListTenantKeysRequest(tenant_id="acme"))).keys
    }
    assert after.keys() == before.keys()
    for ref, info in after.items():
        assert info.create_time == before[ref].create_time
        assert info.update_time.ToNanoseconds() >= before[ref].update_time.ToNanoseconds()
    upstream.push(ok(), ok_anthropic(), ok(), ok())
    await s.stub.Generate(req("required", ref=refs["alice-openai"]))
    await s.stub.Generate(req("anthropic", ref=refs["alice-anthropic"]))
    await s.stub.Generate(req("required", user_id="bob", ref=refs["bob-openai"]))
    await s.stub.Generate(req("required", tenant="globex", ref=refs["globex"]))
    assert [credentials(seen) for seen in upstream.seen[1:]] == [
        {"authorization": f"Bearer {ALICE_OPENAI}"},
        {"x-api-key": ALICE_ANTHROPIC},
        {"authorization": f"Bearer {BOB_OPENAI}"},
        {"authorization": f"Bearer {GLOBEX_OPENAI}"},
    ]
    # the rewrapped data key is a new cache entry: every record was opened from its rotated envelope
    assert keys.cache.stats().backend_calls == 1 + len(refs)


@pytest.mark.parametrize("backend", ["aws-kms", "vault"])
@pytest.mark.usefixtures("aws_credentials")
async def test_generate_end_to_end_with_a_real_key_backend(
    serve: Serve, upstream: Upstream, tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    environ = dict(ENV)
    if backend == "aws-kms":
        keys = kms_keys(tmp_path, request.getfixturevalue("kms_endpoint"))
    else:
        bao = request.getfixturevalue("openbao")
        vault = {"url": bao.url, "key_name": bao.key_name, "token": {"env": "VAULT_TOKEN"}}
        keys = {"backend": "vault", "vault": vault, "store_path": str(tmp_path / "keys.db")}
        environ["VAULT_TOKEN"] = bao.token
    s = await serve(config(upstream, keys), environ)
    ref = await register(s, ALICE_OPENAI)
    upstream.push(ok(), ok())
    assert text_of(await s.stub.Generate(req("required", ref=ref))) == HELLO
    assert text_of(await s.stub.Generate(req("preferred"))) == HELLO  # looked up
    assert [credentials(seen) for seen in upstream.seen] == [{"authorization": f"Bearer {ALICE_OPENAI}"}] * 2
    err = await fails(s.stub.Generate(req("required", user_id="bob", ref=ref)))
    assert (err.code, err.reason) == (CODE.PERMISSION_DENIED, "KEY_CONTEXT_MISMATCH")


async def test_rotation_with_vault_then_retiring_the_old_version(
    serve: Serve, upstream: Upstream, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Rotate the transit key, RotateKeys, both records work; retire v1: only rewrapped records work."""
    bao = request.getfixturevalue("openbao")
    key_name = bao.create_key()
    vault = {"url": bao.url, "key_name": key_name, "token": {"env": "VAULT_TOKEN"}}
    keys = {"backend": "vault", "vault": vault, "store_path": str(tmp_path / "keys.db")}
    s = await serve(config(upstream, keys), {**ENV, "VAULT_TOKEN": bao.token})
    ref = await register(s, ALICE_OPENAI)
    service = s.sidecar.deps.keys
    assert service is not None
    old_blob = await service.encrypt(KeyContext("acme", "alice", "openai", "kept"), ALICE_OPENAI.encode())
    transit = bao.client().secrets.transit
    transit.rotate_key(key_name)
    rotated = await s.stub.RotateKeys(keys_pb2.RotateKeysRequest())
    assert (rotated.rotated, rotated.failed) == (1, 0)
    service.cache.clear()
    upstream.push(ok(), ok(), ok())
    assert text_of(await s.stub.Generate(req("required", ref=ref))) == HELLO  # rewrapped: v2
    assert text_of(await s.stub.Generate(req("required", envelope=old_blob))) == HELLO  # not rewrapped: v1
    transit.update_key_configuration(key_name, min_decryption_version=2)
    service.cache.clear()
    assert text_of(await s.stub.Generate(req("required", ref=ref))) == HELLO
    err = await fails(s.stub.Generate(req("required", envelope=old_blob)))
    # the retired version no longer opens; Vault still accepts the sidecar, so the application's
    # envelope is at fault (encrypt it again), not the backend: no page (keys/standing.py)
    assert (err.code, err.reason) == (CODE.FAILED_PRECONDITION, "KEY_RECORD_CORRUPT")


# --- 5. concurrency: one decrypt for many calls ---------------------------------------------------------


async def test_200_concurrent_calls_for_an_uncached_key_share_one_backend_decrypt(
    s: Running, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream.default = ok()
    ref = await register(s, ALICE_OPENAI)
    keys = s.sidecar.deps.keys
    assert keys is not None and keys.cache.stats().backend_calls == 0  # registering decrypts nothing
    # Hold the one decrypt until every call is waiting for it, so all 200 really are concurrent misses.
    gate, decrypts = asyncio.Event(), 0
    decrypt = LocalKekBackend.decrypt_data_key

    async def held(backend: LocalKekBackend, *args: Any) -> bytearray:
        nonlocal decrypts
        decrypts += 1
        await gate.wait()
        return await decrypt(backend, *args)

    monkeypatch.setattr(LocalKekBackend, "decrypt_data_key", held)
    calls = [asyncio.ensure_future(s.stub.Generate(req("required", ref=ref))) for _ in range(200)]
    try:
        await eventually(lambda: keys.cache.stats().misses == 200, within=10)
    finally:
        gate.set()
    replies = await asyncio.gather(*calls)
    assert all(text_of(r) == HELLO for r in replies)
    stats = keys.cache.stats()
    assert (decrypts, stats.backend_calls, stats.backend_errors, stats.misses, stats.hits) == (
        1,
        1,
        0,
        200,
        0,
    )
    assert len(upstream.seen) == 200
    assert all(credentials(seen) == {"authorization": f"Bearer {ALICE_OPENAI}"} for seen in upstream.seen)


# --- 6. the key backend goes away: cached keys keep working, uncached ones are UNAVAILABLE ----------------


@pytest.mark.usefixtures("aws_credentials")
async def test_kms_outage_cached_key_works_uncached_key_is_unavailable(
    serve: Serve, upstream: Upstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with start_moto() as moto:
        s = await serve(config(upstream, kms_keys(tmp_path, moto)), ENV)
        a = await register(s, ALICE_OPENAI)
        b = await register(s, CANARY, user_id="bob")
        upstream.push(ok(), ok())
        await s.stub.Generate(req("required", ref=a))  # now cached
        stop(moto.process)
        assert text_of(await s.stub.Generate(req("required", ref=a))) == HELLO
        err = await fails(s.stub.Generate(req("required", user_id="bob", ref=b)))
    assert (err.code, err.reason) == (CODE.UNAVAILABLE, "KEY_BACKEND_UNAVAILABLE")
    assert err.retry is not None and err.retry.retry_delay.ToTimedelta() == timedelta(seconds=1)
    assert [credentials(seen) for seen in upstream.seen] == [{"authorization": f"Bearer {ALICE_OPENAI}"}] * 2
    evidence = Evidence()  # B's key (the canary) was never decrypted: it is in no error and no log
    evidence.text("error", f"{err.message} {err.info} {err.retry}")
    evidence.logs(caplog)
    assert evidence.leaks(CANARY) == []


# --- 7. the canary: a key that must appear nowhere but at the upstream ----------------------------------


async def test_the_canary_key_appears_nowhere_but_at_the_upstream(
    serve: Serve,
    upstream: Upstream,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    for name in [None, *logging.root.manager.loggerDict]:
        caplog.set_level(logging.DEBUG, logger=name)
    s = await serve(config(upstream, local_keys(tmp_path)), ENV)
    ev = Evidence()
    registered = await s.stub.RegisterKey(
        keys_pb2.RegisterKeyRequest(tenant_id="acme", user_id="carol", provider="openai", api_key=CANARY)
    )
    ev.message("RegisterKey", registered)
    ref = registered.key_ref
    async with key_service(Path(local_keys(tmp_path)["local"]["kek_file"])) as service:
        envelope = await service.encrypt(KeyContext("acme", "carol", "openai", "default"), CANARY.encode())

    # the successes: the canary goes to the upstream, in the auth header
    upstream.push(ok(), Reply.sse("openai/stream.sse"))
    ev.message("Generate", await s.stub.Generate(req("required", user_id="carol", ref=ref)))
    stream = stream_request(model="preferred", messages=[user("Hi")], tenant_id="acme", user_id="carol")
    for event in await drain(s.stub.StreamGenerate(stream)):
        ev.message("StreamGenerate", event)
    assert [credentials(seen) for seen in upstream.seen] == [{"authorization": f"Bearer {CANARY}"}] * 2

    # every error path, with the canary at hand
    def carol(route: str, **kw: Any) -> gen.GenerateRequest:
        return req(route, user_id=kw.pop("user_id", "carol"), **kw)

    echoing = json.dumps({"error": {"message": f"Incorrect API key provided: {CANARY}", "type": "x"}})
    upstream.push(
        Reply.json("openai/error_401.json", status=401),
        Reply(status=400, body=echoing.replace('"x"', '"invalid_request_error"').encode()),
        Reply(status=500, body=echoing.encode()),
    )

    def generate(route: str, **kw: Any) -> Callable[[], Awaitable[object]]:
        return lambda: s.stub.Generate(carol(route, **kw))

    def register_bad(provider: str, api_key: str) -> Callable[[], Awaitable[object]]:
        bad = keys_pb2.RegisterKeyRequest(
            tenant_id="acme", user_id="carol", provider=provider, api_key=api_key
        )
        return lambda: s.stub.RegisterKey(bad)

    never = stream_request(**fields_of(carol("never", envelope=envelope)))
    mismatch = (CODE.PERMISSION_DENIED, "KEY_CONTEXT_MISMATCH")
    invalid = (CODE.INVALID_ARGUMENT, "INVALID_REQUEST")
    paths: list[tuple[str, Callable[[], Awaitable[object]], tuple[CODE, str]]] = [
        ("upstream 401", generate("required", ref=ref), (CODE.PERMISSION_DENIED, "USER_KEY_REJECTED")),
        ("upstream 400 echoing", generate("required", ref=ref), (CODE.INVALID_ARGUMENT, "PROVIDER_REJECTED")),
        ("upstream 500 echoing", generate("required", ref=ref), (CODE.UNAVAILABLE, "PROVIDERS_UNAVAILABLE")),
        ("never + ref", generate("never", ref=ref), invalid),
        ("no user + ref", generate("required", user_id="", ref=ref), invalid),
        ("ref, other user", generate("required", user_id="dave", ref=ref), mismatch),
        ("ref, other tenant", generate("required", tenant="globex", ref=ref), mismatch),
        ("ref, other provider", generate("anthropic", ref=ref), mismatch),
        ("envelope, other user", generate("required", user_id="dave", envelope=envelope), mismatch),
        ("envelope, other tenant", generate("required", tenant="globex", envelope=envelope), mismatch),
        ("envelope, other provider", generate("anthropic", envelope=envelope), mismatch),
        # for this key's length the middle of the envelope is the tenant's name: a context mismatch
        ("envelope, middle flipped", generate("required", envelope=flip_middle(envelope)), mismatch),
        (
            "envelope, ciphertext flipped",
            generate("required", envelope=flip_ciphertext(envelope)),
            (CODE.FAILED_PRECONDITION, "KEY_RECORD_CORRUPT"),
        ),
        (
            "envelope, garbage",
            generate("required", envelope="oenv1.not-an-envelope"),
            (CODE.INVALID_ARGUMENT, "INVALID_KEY_ENVELOPE"),
        ),
        (
            "required, no key",
            generate("required", user_id="dave"),
            (CODE.FAILED_PRECONDITION, "USER_KEY_REQUIRED"),
        ),
        ("stream, never + envelope", lambda: drain(s.stub.StreamGenerate(never)), invalid),
        ("register, bad provider", register_bad("echo", CANARY), invalid),
        ("register, bad key", register_bad("openai", CANARY + " x"), invalid),
    ]
    for where, call, expected in paths:
        err = await ev.error(where, call())
        assert (err.code, err.reason) == expected, where
    assert len(upstream.seen) == 5

    ev.message(
        "ListTenantKeys", await s.stub.ListTenantKeys(keys_pb2.ListTenantKeysRequest(tenant_id="acme"))
    )
    ev.message("ListModels", await s.stub.ListModels(models_pb2.ListModelsRequest()))
    ev.message("RotateKeys", await s.stub.RotateKeys(keys_pb2.RotateKeysRequest()))
    ev.message(
        "DeleteKey",
        await s.stub.DeleteKey(keys_pb2.DeleteKeyRequest(tenant_id="acme", user_id="carol", key_ref=ref)),
    )
    err = await ev.error("deleted ref", s.stub.Generate(carol("required", ref=ref)))
    assert err.reason == "KEY_CONTEXT_MISMATCH"

    ev.files(tmp_path)  # the SQLite store with its -wal and -shm, the KEK, the config
    assert any(where.startswith("file keys.db") for where, _ in ev.items)
    ev.logs(caplog)
    out, errors = capfd.readouterr()
    ev.text("stdout", out)
    ev.text("stderr", errors)
    assert any(b"KEY_CONTEXT_MISMATCH" in data for where, data in ev.items if where.startswith("log ")), (
        "the sidecar's logs were not captured"
    )
    assert any(b"grpc-status-details-bin" in data for _, data in ev.items), "no trailing metadata captured"
    assert ev.leaks(CANARY) == []
    # positive controls: the search finds the canary where it must be, and in its encoded forms
    received = json.dumps([list(seen.headers.items()) for seen in upstream.seen]).encode()
    assert forms(CANARY)["plain"] in received
    for encoded in (
        base64.b64encode(b"x" + CANARY.encode()),
        base64.urlsafe_b64encode(b"xy" + CANARY.encode()),
        ("…" + CANARY[-12:]).encode(),
    ):
        probe = Evidence()
        probe.text("probe", encoded)
        assert probe.leaks(CANARY), encoded


# --- a user's own key never speaks for the deployment; a tampered copy never rides the cache ------


async def test_a_users_own_rate_limit_does_not_close_the_deployment_to_others(
    s: Running, upstream: Upstream
) -> None:
    await register(s, ALICE_OPENAI)
    limited = b'{"error":{"message":"quota","type":"rate_limit_exceeded"}}'
    upstream.push(Reply(status=429, body=limited, headers={"retry-after": "30"}), ok())
    err = await fails(s.stub.Generate(req("preferred")))  # alice's own key is rate limited
    assert (err.code, err.reason) == (CODE.RESOURCE_EXHAUSTED, "USER_KEY_RATE_LIMITED")
    assert err.retry is not None and err.retry.retry_delay.seconds == 30
    assert text_of(await s.stub.Generate(req("preferred", user_id="bob"))) == HELLO  # bob: the platform key


async def test_a_users_revoked_key_does_not_close_the_deployment_to_others(
    s: Running, upstream: Upstream
) -> None:
    await register(s, ALICE_OPENAI)
    for _ in range(10):  # the breaker's default min_requests
        upstream.push(Reply.json("openai/error_401.json", status=401))
        assert (await fails(s.stub.Generate(req("preferred")))).reason == "USER_KEY_REJECTED"
    upstream.push(ok())
    assert text_of(await s.stub.Generate(req("preferred", user_id="bob"))) == HELLO


async def test_a_users_key_without_access_to_the_model_does_not_close_the_deployment_to_others(
    s: Running, upstream: Upstream
) -> None:
    """OpenAI answers a key that may not use the model 404 model_not_found: for the user's own key
    that is the key's refusal (USER_KEY_REJECTED), not the deployment's failure; it counted against
    the deployment's breaker, and ten such calls of one user closed the deployment to every tenant."""
    await register(s, ALICE_OPENAI)
    no_access = {
        "error": {
            "message": "The model `gpt-test` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
    }
    for _ in range(10):  # the breaker's default min_requests
        upstream.push(Reply(status=404, body=json.dumps(no_access).encode()))
        err = await fails(s.stub.Generate(req("preferred")))
        assert (err.code, err.reason) == (CODE.PERMISSION_DENIED, "USER_KEY_REJECTED")
    upstream.push(ok())
    assert text_of(await s.stub.Generate(req("preferred", user_id="bob"))) == HELLO


async def test_a_tampered_copy_of_a_cached_envelope_is_refused(
    s: Running, upstream: Upstream, service: KeyService
) -> None:
    envelope = await service.encrypt(KeyContext("acme", "alice", "openai", "default"), ALICE_OPENAI.encode())
    upstream.push(ok(), ok())
    assert text_of(await s.stub.Generate(req("required", envelope=envelope))) == HELLO  # now cached
    err = await fails(s.stub.Generate(req("required", envelope=flip_ciphertext(envelope))))
    assert (err.code, err.reason) == (CODE.FAILED_PRECONDITION, "KEY_RECORD_CORRUPT")


async def test_an_upstream_echoing_a_short_unprefixed_key_is_scrubbed(s: Running, upstream: Upstream) -> None:
    """Pattern redaction misses a short key with no `sk-` prefix; the exact-key scrub does not."""
    short = "plainkey-0123"
    ref = await register(s, short)
    echoed = json.dumps(
        {"error": {"message": f"key {short} cannot use this model", "type": "invalid_request_error"}}
    )
    upstream.push(Reply(status=400, body=echoed.encode()))
    err = await fails(s.stub.Generate(req("required", ref=ref)))
    assert (err.code, err.reason) == (CODE.INVALID_ARGUMENT, "PROVIDER_REJECTED")
    assert short not in err.message and "[redacted]" in err.message


async def test_an_upstream_quoting_a_key_in_part_is_scrubbed(
    s: Running, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    """An upstream that quotes the key masked in its middle (as OpenAI quotes a refused one): its
    prefix reached the caller's error and the log line of the failed attempt."""
    key = "CANARYq7f3a9c2e1d0b4a5968"  # no sk- prefix: pattern redaction does not know it
    ref = await register(s, key)
    quoted = f"Incorrect API key provided: {key[:12]}*********{key[-4:]}"
    upstream.push(Reply(status=400, body=json.dumps({"error": {"message": quoted}}).encode()))
    err = await fails(s.stub.Generate(req("required", ref=ref)))
    assert (err.code, err.reason) == (CODE.INVALID_ARGUMENT, "PROVIDER_REJECTED")
    assert key[:8] not in err.message and "[redacted]" in err.message
    assert key[:8] not in caplog.text


async def test_a_required_route_never_serves_another_users_cached_answer(
    serve: Serve, upstream: Upstream, tmp_path: Path
) -> None:
    """Answers shared in the tenant (cache scope: tenant) on a route that requires the user's own
    key: an answer the upstream gave on alice's key is alice's. Bob, who has no key, is refused
    USER_KEY_REQUIRED; from the cache he got alice's answer, as if the route fell back to her key."""
    raw = config(upstream, local_keys(tmp_path))
    raw["settings"]["cache"] = {"enabled": True, "scope": "tenant"}
    s = await serve(raw, ENV)
    await register(s, ALICE_OPENAI)
    upstream.push(ok(), ok())
    zero = gen.GenerationConfig(temperature=0.0)
    asked = req("required")
    asked.input.config.CopyFrom(zero)
    first = await s.stub.Generate(asked)
    assert text_of(first) == HELLO and not first.summary.cache_hit
    bobs = req("required", user_id="bob")
    bobs.input.config.CopyFrom(zero)
    err = await fails(s.stub.Generate(bobs))
    assert (err.code, err.reason) == (CODE.FAILED_PRECONDITION, "USER_KEY_REQUIRED")
    again = await s.stub.Generate(asked)  # alice's own answers are still hers to reuse
    assert again.summary.cache_hit and len(upstream.seen) == 1


async def test_a_preferred_route_never_serves_an_answer_made_on_a_users_key_to_another(
    serve: Serve, upstream: Upstream, tmp_path: Path
) -> None:
    """Answers shared in the tenant on a `preferred` route: alice's answer was made (and paid for) on
    her own key, so bob, who has none, must get his own answer on the platform key, not hers from the
    cache."""
    raw = config(upstream, local_keys(tmp_path))
    raw["settings"]["cache"] = {"enabled": True, "scope": "tenant"}
    s = await serve(raw, ENV)
    await register(s, ALICE_OPENAI)
    upstream.push(ok(), ok())
    zero = gen.GenerationConfig(temperature=0.0)
    alices, bobs = req("preferred"), req("preferred", user_id="bob")
    for asked in (alices, bobs):
        asked.input.config.CopyFrom(zero)
    first = await s.stub.Generate(alices)
    assert not first.summary.cache_hit and credentials(upstream.seen[0]) == {
        "authorization": f"Bearer {ALICE_OPENAI}"
    }
    his = await s.stub.Generate(bobs)
    assert not his.summary.cache_hit and len(upstream.seen) == 2
    assert credentials(upstream.seen[1]) == {"authorization": f"Bearer {ENV['OPENAI_PLATFORM']}"}
    again = await s.stub.Generate(alices)  # alice's own answers are still hers to reuse
    assert again.summary.cache_hit and len(upstream.seen) == 2
