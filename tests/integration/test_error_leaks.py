"""The sidecar's own provider keys never reach a caller's error, even when an upstream quotes them
back: an upstream that refuses a request (HTTP 400/422, or an error event in its stream) may echo
the request's headers, and its message is passed on to the caller (PROVIDER_REJECTED). Pattern
redaction misses a key with `+`, `/` or `=` in it (base64), or a short one without a known prefix;
the exact key the request carried is scrubbed whatever its shape."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import embed_pb2
from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import user
from tests.integration.helpers import rich
from tests.support.api import generate_request, rpc_error
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration

BASE64_KEY = "Zm9vYmFy+CANARY/platform+key/Zm9v=="
SHORT_KEY = "plat-CANARY1"
BEDROCK_KEY = "ABSKQmVk+CANARY/bedrock+api/key=="  # Bedrock API keys are base64
KEYS = {"OPENAI_KEY": BASE64_KEY, "ANTHROPIC_KEY": SHORT_KEY, "BEDROCK_KEY": BEDROCK_KEY}


def fragments(key: str) -> list[str]:
    """Pieces of the key a partial redaction would leave (any 6 characters of it)."""
    return [key[i : i + 6] for i in range(0, len(key) - 5)]


def echo(status: int, header: str, value: str, kind: str = "invalid_request_error") -> Reply:
    headers = {"Host": "upstream", header: value, "Content-Type": "application/json"}
    message = f"bad request; you sent {json.dumps(headers)}"
    body = {"error": {"message": message, "type": kind}}
    if header == "x-api-key":
        body = {"type": "error", "error": {"type": kind, "message": message}}
    return Reply(status=status, body=json.dumps(body).encode())


def bedrock_echo(value: str) -> Reply:
    body = {"message": f"Malformed input request; Authorization: Bearer {value}"}
    headers = {"x-amzn-ErrorType": "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    return Reply(status=400, body=json.dumps(body).encode(), headers=headers)


def cut_inside(value: str) -> Reply:
    """A refusal whose text is cut (300 characters, after pattern redaction) inside the key: the
    pattern masks `Bearer Zm9vYmFy` (10 characters left), the cut falls 10 characters later."""
    message = "." * 264 + f" Authorization: Bearer {value} and more"
    body = {"error": {"message": message, "type": "invalid_request_error"}}
    return Reply(status=400, body=json.dumps(body).encode())


def sse_error(value: str) -> Reply:
    """An OpenAI-compatible stream that reports a refusal as an error event, quoting the header."""
    event = {
        "error": {"message": f"rejected; Authorization: Bearer {value}", "type": "invalid_request_error"}
    }
    return Reply(
        chunks=[b"data: " + json.dumps(event).encode() + b"\n\n"],
        headers={"content-type": "text/event-stream"},
    )


@pytest.fixture
async def s(serve: Any, upstream: Upstream) -> Any:
    deployments = {
        "oa": {
            "provider": "openai",
            "model": "m",
            "base_url": f"{upstream.url}/v1",
            "api_key": {"env": "OPENAI_KEY"},
        },
        "an": {
            "provider": "anthropic",
            "model": "claude",
            "base_url": f"{upstream.url}/v1",
            "api_key": {"env": "ANTHROPIC_KEY"},
        },
        "br": {
            "provider": "bedrock",
            "model": "anthropic.claude-3-5-haiku-20241022-v1:0",
            "base_url": upstream.url,
            "bedrock": {"region": "eu-west-1"},
            "api_key": {"env": "BEDROCK_KEY"},
        },
    }
    policy = {
        "default_route": "oa",
        "deployments": deployments,
        "routes": {
            "oa": {"deployments": ["oa"], "retry": {"max_attempts": 1}},
            "an": {"deployments": ["an"], "retry": {"max_attempts": 1}},
            "br": {"deployments": ["br"], "retry": {"max_attempts": 1}},
        },
        "routing": {"probes": {"enabled": False}},
        "embeddings": {
            "default_route": "e",
            "deployments": {
                "oe": {
                    "kind": "openai",
                    "model": "text-embedding-3-small",
                    "base_url": f"{upstream.url}/v1",
                    "api_key": {"env": "OPENAI_KEY"},
                }
            },
            "routes": {"e": {"deployments": ["oe"]}},
        },
    }
    return await serve({"policy": policy}, KEYS)


async def refusal(call: Any) -> grpc.aio.AioRpcError:
    return await rpc_error(call)


@pytest.mark.parametrize("stream", [False, True])
async def test_an_upstream_quoting_the_platform_key_does_not_pass_it_on(
    s: Any, upstream: Upstream, stream: bool
) -> None:
    cases = [
        ("oa", echo(400, "Authorization", f"Bearer {BASE64_KEY}"), BASE64_KEY),
        ("oa", echo(422, "Authorization", f"Bearer {BASE64_KEY}"), BASE64_KEY),
        ("an", echo(400, "x-api-key", SHORT_KEY), SHORT_KEY),
        ("oa", cut_inside(BASE64_KEY), BASE64_KEY),
        ("br", bedrock_echo(BEDROCK_KEY), BEDROCK_KEY),
    ]
    if stream:
        cases.append(("oa", sse_error(BASE64_KEY), BASE64_KEY))
    for model, reply, key in cases:
        upstream.push(reply)
        request = generate_request(model=model, messages=[user("hello there")], tenant_id="acme", user_id="u")
        if stream:
            err = await refusal(
                lambda r=request: s.stub.StreamGenerate(gen.StreamGenerateRequest(input=r.input))
            )
        else:
            err = await refusal(lambda r=request: s.stub.Generate(r))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (model, err)
        seen = (err.details() or "") + repr(err.trailing_metadata())
        assert "[redacted]" in seen, seen
        assert not [f for f in fragments(key) if f in seen], (model, seen)
    assert len(upstream.seen) == len(cases)


async def test_an_embedding_upstream_quoting_the_platform_key_does_not_pass_it_on(
    s: Any, upstream: Upstream
) -> None:
    for reply in (echo(400, "Authorization", f"Bearer {BASE64_KEY}"), cut_inside(BASE64_KEY)):
        upstream.push(reply)
        request = embed_pb2.EmbedRequest(tenant_id="acme", user_id="u", texts=["hello there"])
        err = await refusal(lambda r=request: s.stub.Embed(r))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
        seen = (err.details() or "") + repr(err.trailing_metadata())
        assert "[redacted]" in seen, seen
        assert not [f for f in fragments(BASE64_KEY) if f in seen], seen


async def test_an_embedding_route_that_fails_names_deployments_not_upstream_text(
    s: Any, upstream: Upstream
) -> None:
    """PROVIDERS_UNAVAILABLE names each deployment and its reason only (docs/errors.md); the
    upstream's own text (here quoting the request) is never passed on."""
    body = {"error": {"message": "internal: you sent UPSTREAM-TEXT-CANARY from 10.0.0.7"}}
    upstream.push(Reply(status=503, body=json.dumps(body).encode(), headers={"retry-after": "7"}))
    request = embed_pb2.EmbedRequest(tenant_id="acme", user_id="u", texts=["hello there"])
    err = await refusal(lambda: s.stub.Embed(request))
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    rich_err = await rich(err)
    assert rich_err.reason == "PROVIDERS_UNAVAILABLE"
    assert "UPSTREAM-TEXT-CANARY" not in (err.details() or "") + repr(err.trailing_metadata())
    assert "oe: PROVIDER_UNAVAILABLE" in (err.details() or "")
    assert rich_err.info.metadata["model"] == "e" and rich_err.info.metadata["attempts"] == "1"
    assert rich_err.retry is not None and rich_err.retry.retry_delay.seconds == 7
