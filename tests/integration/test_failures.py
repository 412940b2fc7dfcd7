"""Upstream failures of every kind, before and after the first chunk, as the caller sees them."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import free_port, user
from tests.integration.helpers import rich
from tests.support.api import generate_request, stream_request, text_of
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
ENV = {"KEY": "sk-canary-secret-value-0123456789"}


def two_deployments(
    first: str, second: str, provider: str = "openai", attempts: int = 1, **extra: Any
) -> dict[str, Any]:
    """Two deployments on one route; one attempt each unless a test is about retries."""

    def deployment(url: str) -> dict[str, Any]:
        base = f"{url}/v1" if provider == "openai" else url
        return {"provider": provider, "model": "m", "base_url": base, "api_key": {"env": "KEY"}, **extra}

    return {
        "default_route": "r",
        "deployments": {"first": deployment(first), "second": deployment(second)},
        "routes": {"r": {"deployments": ["first", "second"], "retry": {"max_attempts": attempts}}},
    }


async def generate(s: Any) -> gen.GenerateResponse:
    return await s.stub.Generate(generate_request(messages=[user("Hi")]))  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("failure", "outcome"),
    [
        (Reply.json("openai/error_429.json", 429, headers={"retry-after": "3"}), "PROVIDER_RATE_LIMITED"),
        (Reply.json("openai/error_500.json", 500), "PROVIDER_UNAVAILABLE"),
        (Reply(status=503, body=b"<html>Service Unavailable</html>"), "PROVIDER_UNAVAILABLE"),
        (Reply(reset=True), "PROVIDER_UNAVAILABLE"),
        (Reply(body=b"this is not json"), "PROVIDER_BAD_RESPONSE"),
        (Reply.json("openai/error_401.json", 401), "PROVIDER_AUTH_FAILED"),
        (Reply(status=500, body=b"[" * 5_000), "PROVIDER_UNAVAILABLE"),  # deeper than a parser's stack
        (Reply(body=b"[" * 100_000), "PROVIDER_BAD_RESPONSE"),
    ],
    ids=["429", "500", "503-html", "reset", "malformed", "401", "500-nested-error", "nested-answer"],
)
async def test_failure_before_first_chunk_fails_over(
    serve: Any, upstream: Upstream, upstream2: Upstream, failure: Reply, outcome: str
) -> None:
    upstream.push(failure)
    upstream2.push(Reply.json("openai/chat_completion.json"))
    s = await serve({"policy": two_deployments(upstream.url, upstream2.url)}, ENV)
    reply = await generate(s)
    assert text_of(reply) == "Hello! How can I help you today?"
    assert [(a.deployment, a.outcome) for a in reply.summary.attempts] == [
        ("first", outcome),
        ("second", "OK"),
    ]
    assert reply.summary.served_by.deployment == "second"


async def test_connection_refused_fails_over(serve: Any, upstream2: Upstream) -> None:
    upstream2.push(Reply.json("openai/chat_completion.json"))
    s = await serve({"policy": two_deployments(f"http://127.0.0.1:{free_port()}", upstream2.url)}, ENV)
    reply = await generate(s)
    assert [a.outcome for a in reply.summary.attempts] == ["PROVIDER_UNAVAILABLE", "OK"]


async def test_read_timeout_fails_over(serve: Any, upstream: Upstream, upstream2: Upstream) -> None:
    upstream.push(Reply(hang=True))
    upstream2.push(Reply.json("openai/chat_completion.json"))
    s = await serve({"policy": two_deployments(upstream.url, upstream2.url, read_timeout_seconds=0.2)}, ENV)
    reply = await generate(s)
    assert [a.outcome for a in reply.summary.attempts] == ["PROVIDER_TIMEOUT", "OK"]


async def test_every_deployment_rate_limited(serve: Any, upstream: Upstream, upstream2: Upstream) -> None:
    upstream.push(Reply.json("openai/error_429.json", 429, headers={"retry-after": "20"}))
    upstream2.push(Reply.json("openai/error_429.json", 429, headers={"retry-after-ms": "1500"}))
    s = await serve({"policy": two_deployments(upstream.url, upstream2.url)}, ENV)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await generate(s)
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "PROVIDERS_UNAVAILABLE")
    assert err.retry is not None and err.retry.retry_delay.ToMilliseconds() == 1500
    assert err.info.metadata["model"] == "r"


async def test_the_call_failed_line_names_the_route_the_call_went_to(
    serve: Any, upstream: Upstream, upstream2: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    """It logged the model the request named as the route: empty for every call on the default route."""
    upstream.push(Reply.json("openai/error_500.json", 500))
    upstream2.push(Reply.json("openai/error_500.json", 500))
    s = await serve({"policy": two_deployments(upstream.url, upstream2.url)}, ENV)
    with caplog.at_level("WARNING", logger="sidecar"), pytest.raises(grpc.aio.AioRpcError):
        await generate(s)  # names no model: the default route r
    (line,) = [r for r in caplog.records if r.getMessage().startswith("call failed")]
    assert (line.route, line.reason) == ("r", "PROVIDERS_UNAVAILABLE")  # type: ignore[attr-defined]


async def test_rejected_request_is_not_retried(serve: Any, upstream: Upstream, upstream2: Upstream) -> None:
    upstream.push(Reply.json("openai/error_400.json", 400))
    s = await serve({"policy": two_deployments(upstream.url, upstream2.url)}, ENV)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await generate(s)
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "PROVIDER_REJECTED")
    assert "maximum context length" in err.message
    assert upstream2.seen == []


async def test_refused_credentials_never_leak_the_key(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.push(Reply.json("openai/error_401.json", 401))
    upstream2.push(Reply.json("openai/error_401.json", 401))
    s = await serve({"policy": two_deployments(upstream.url, upstream2.url)}, ENV)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await generate(s)
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.INTERNAL, "PROVIDER_AUTH_FAILED")
    assert "sk-" not in err.message and ENV["KEY"] not in str(info.value.debug_error_string())


@pytest.mark.parametrize(
    ("fixture", "provider"),
    [
        ("openai/stream_truncated.sse", "openai"),
        ("openai/stream_error.sse", "openai"),
        ("anthropic/stream_overloaded.sse", "anthropic"),
    ],
)
async def test_failure_after_first_chunk_is_stream_interrupted(
    serve: Any, upstream: Upstream, upstream2: Upstream, fixture: str, provider: str
) -> None:
    upstream.push(Reply.sse(fixture))
    s = await serve({"policy": two_deployments(upstream.url, upstream2.url, provider=provider)}, ENV)
    received: list[gen.StreamGenerateResponse] = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for event in s.stub.StreamGenerate(stream_request(messages=[user("Hi")])):
            received.append(event)
    assert received and all(e.HasField("delta") for e in received)  # never a summary
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "STREAM_INTERRUPTED")
    assert int(err.info.metadata["completionTokens"]) > 0
    assert int(err.info.metadata["promptTokens"]) > 0
    assert err.info.metadata["deployment"] == "first"
    assert upstream2.seen == []  # committed to the first deployment


async def test_connection_dropped_mid_stream(serve: Any, upstream: Upstream, upstream2: Upstream) -> None:
    upstream.push(Reply.sse("openai/stream.sse", drop_after=4))
    s = await serve({"policy": two_deployments(upstream.url, upstream2.url)}, ENV)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in s.stub.StreamGenerate(stream_request(messages=[user("Hi")])):
            pass
    assert (await rich(info.value)).reason == "STREAM_INTERRUPTED"


async def test_stream_failure_before_first_chunk_fails_over(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.push(Reply.sse("openai/stream_malformed.sse"))
    upstream2.push(Reply.sse("openai/stream.sse"))
    s = await serve({"policy": two_deployments(upstream.url, upstream2.url)}, ENV)
    events = [e async for e in s.stub.StreamGenerate(stream_request(messages=[user("Hi")]))]
    summary = events[-1].result.summary
    assert [a.outcome for a in summary.attempts] == ["PROVIDER_BAD_RESPONSE", "OK"]
    assert "".join(e.delta.text for e in events[:-1]) == "Hello! How can I help you today?"


async def test_redirects_are_not_followed(serve: Any, upstream: Upstream, upstream2: Upstream) -> None:
    """A redirect would carry the key and the prompt to another server: it is a failed attempt instead."""
    elsewhere = f"{upstream2.url}/collect"
    upstream.push(Reply(status=307, headers={"location": elsewhere}))
    upstream2.push(Reply.json("openai/chat_completion.json"))
    s = await serve({"policy": two_deployments(upstream.url, upstream2.url)}, ENV)
    reply = await generate(s)
    assert [(a.deployment, a.outcome) for a in reply.summary.attempts] == [
        ("first", "PROVIDER_UNAVAILABLE"),
        ("second", "OK"),
    ]
    assert [seen.path for seen in upstream2.seen] == ["/v1/chat/completions"]  # never /collect
