"""Users' own keys for Bedrock (Bedrock API keys), Gemini and Azure, through the real key layer:
an inline envelope the application keeps, opened by the server, put in the provider's own header."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import generate_latest

from sidecar._gen.orchestrator.v1 import keys_pb2
from sidecar.keys.backend import KeyContext
from sidecar.keys.service import KeyService
from tests.conftest import user
from tests.integration.helpers import rich
from tests.integration.test_cloud_providers import ENV, KINDS, aws_credentials  # noqa: F401
from tests.integration.test_user_keys import Evidence, drain
from tests.support.api import generate_request, stream_request, text_of
from tests.support.keys import key_service, local_keys
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
USERS_KEY = "users-own-provider-key-0123456789"
HELLO = "Hello! How can I help you today?"


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[KeyService]:
    async with key_service(Path(local_keys(tmp_path)["local"]["kek_file"])) as keys:
        yield keys


def config(kind: str, upstream: Upstream, tmp_path: Path) -> dict[str, Any]:
    d = {**KINDS[kind].deployment(upstream.url), "allow_user_keys": True}
    d.pop("api_key", None)  # no platform key at all: only the user's can work
    return {
        "settings": {"keys": local_keys(tmp_path)},
        "policy": {
            "default_route": "byok",
            "deployments": {"d": d},
            "routes": {"byok": {"deployments": ["d"], "user_key": "required", "retry": {"max_attempts": 1}}},
            "routing": {"probes": {"enabled": False}},
        },
    }


@pytest.mark.parametrize(
    ("kind", "header", "value"),
    [
        ("bedrock", "Authorization", f"Bearer {USERS_KEY}"),
        ("gemini", "x-goog-api-key", USERS_KEY),
        ("azure", "api-key", USERS_KEY),
    ],
)
async def test_users_own_key_reaches_the_provider_in_its_header(
    serve: Any, upstream: Upstream, service: KeyService, tmp_path: Path, kind: str, header: str, value: str
) -> None:
    envelope = await service.encrypt(KeyContext("acme", "alice", kind, "default"), USERS_KEY.encode())
    upstream.push(KINDS[kind].unary())
    s = await serve(config(kind, upstream, tmp_path), ENV)
    request = generate_request(
        messages=[user("Hi")],
        tenant_id="acme",
        user_id="alice",
        provider_key=keys_pb2.ProviderKey(envelope=envelope),
    )
    reply = await s.stub.Generate(request)
    assert text_of(reply) == HELLO
    seen = upstream.seen[0].headers
    assert seen[header] == value
    assert "X-Amz-Date" not in seen  # a Bedrock API key replaces SigV4; nothing else carries a credential


# --- registered keys (RegisterKey, then key_ref), unary and streaming, and the log canary -----------

HEADERS = {
    "bedrock": ("Authorization", "Bearer {key}"),
    "gemini": ("x-goog-api-key", "{key}"),
    "azure": ("api-key", "{key}"),
}
CANARY = "byok-CANARY-4d3c2b1a-9f8e7d6c5b4a"


def rejected(kind: str, key: str) -> Reply:
    """The provider's own answer to a bad key, with the key echoed back in its message."""
    if kind == "bedrock":
        body = {"message": f"The security token included in the request is invalid: {key}"}
        error_type = "UnrecognizedClientException:http://internal.amazon.com/coral/com.amazon.bedrock/"
        return Reply(status=403, body=json.dumps(body).encode(), headers={"x-amzn-ErrorType": error_type})
    if kind == "gemini":
        info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
        message = f"API key not valid: {key}"
        body = {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT", "details": [info]}}
        return Reply(status=400, body=json.dumps(body).encode())
    body = {"error": {"code": "401", "message": f"Access denied due to invalid subscription key {key}."}}
    return Reply(status=401, body=json.dumps(body).encode())


async def register(s: Any, kind: str, key: str) -> str:
    reply = await s.stub.RegisterKey(
        keys_pb2.RegisterKeyRequest(tenant_id="acme", user_id="alice", provider=kind, api_key=key)
    )
    return str(reply.key_ref)


def by_ref(ref: str, **kw: Any) -> dict[str, Any]:
    return {"messages": [user("Hi")], "tenant_id": "acme", "user_id": "alice",
            "provider_key": keys_pb2.ProviderKey(key_ref=ref), **kw}  # fmt: skip


@pytest.mark.parametrize("kind", ["bedrock", "gemini", "azure"])
async def test_a_registered_key_reaches_the_provider_in_its_header(
    serve: Any, upstream: Upstream, tmp_path: Path, kind: str
) -> None:
    s = await serve(config(kind, upstream, tmp_path), ENV)
    ref = await register(s, kind, USERS_KEY)
    listed = await s.stub.ListKeys(keys_pb2.ListKeysRequest(tenant_id="acme", user_id="alice"))
    assert [(k.provider, k.key_ref) for k in listed.keys] == [(kind, ref)]
    upstream.push(KINDS[kind].unary(), KINDS[kind].stream())
    assert text_of(await s.stub.Generate(generate_request(**by_ref(ref)))) == HELLO
    events = [e async for e in s.stub.StreamGenerate(stream_request(**by_ref(ref)))]
    assert "".join(e.delta.text for e in events if e.HasField("delta")) == HELLO
    header, value = HEADERS[kind]
    for seen in upstream.seen:
        assert seen.headers[header] == value.format(key=USERS_KEY)
        sent = json.dumps([list(seen.headers.items()), seen.body])
        assert sent.count(USERS_KEY) == 1  # in its header, and nowhere else (no URL ?key=, no body)
        assert "X-Amz-Date" not in seen.headers and ENV["GEMINI_KEY"] not in sent


@pytest.mark.parametrize("kind", ["bedrock", "gemini", "azure"])
async def test_a_key_the_provider_refuses_is_the_users_problem(
    serve: Any, upstream: Upstream, tmp_path: Path, kind: str
) -> None:
    s = await serve(config(kind, upstream, tmp_path), ENV)
    ref = await register(s, kind, USERS_KEY)
    upstream.push(rejected(kind, USERS_KEY))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(**by_ref(ref)))
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.PERMISSION_DENIED, "USER_KEY_REJECTED")
    assert USERS_KEY not in err.message and USERS_KEY[-8:] not in str(err.info)


@pytest.mark.parametrize("kind", ["bedrock", "gemini", "azure"])
async def test_the_canary_key_appears_nowhere_but_at_the_upstream(
    serve: Any,
    upstream: Upstream,
    tmp_path: Path,
    kind: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    for name in [None, *logging.root.manager.loggerDict]:
        caplog.set_level(logging.DEBUG, logger=name)
    s = await serve(config(kind, upstream, tmp_path), ENV)
    ev = Evidence()
    ref = await register(s, kind, CANARY)
    upstream.push(KINDS[kind].unary(), KINDS[kind].stream(), rejected(kind, CANARY), rejected(kind, CANARY))
    ev.message("Generate", await s.stub.Generate(generate_request(**by_ref(ref))))
    for event in [e async for e in s.stub.StreamGenerate(stream_request(**by_ref(ref)))]:
        ev.message("StreamGenerate", event)
    await ev.error("unary, key refused", s.stub.Generate(generate_request(**by_ref(ref))))
    await ev.error("stream, key refused", drain(s.stub.StreamGenerate(stream_request(**by_ref(ref)))))
    bad = keys_pb2.RegisterKeyRequest(tenant_id="acme", user_id="alice", provider=kind, api_key=CANARY + " x")
    await ev.error("register, bad key", s.stub.RegisterKey(bad))
    assert len(upstream.seen) == 4
    ev.text("metrics", generate_latest(s.sidecar.deps.telemetry.metrics.registry))
    ev.files(tmp_path)
    ev.logs(caplog)
    out, errors = capfd.readouterr()
    ev.text("stdout", out)
    ev.text("stderr", errors)
    assert any(b"USER_KEY_REJECTED" in data for where, data in ev.items if where.startswith("log ")), (
        "the sidecar's logs were not captured"
    )
    assert ev.leaks(CANARY) == []
    header, value = HEADERS[kind]
    assert [seen.headers[header] for seen in upstream.seen] == [value.format(key=CANARY)] * 4
