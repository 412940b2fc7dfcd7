"""AWS Bedrock, Google Gemini and Azure OpenAI through the real server, against loopback upstreams
that speak each provider's wire format: recorded JSON, SSE and binary event-stream transcripts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import free_port, system, user
from tests.integration.helpers import rich
from tests.integration.test_lifecycle import eventually
from tests.support.api import generate_request, stream_request, text_of
from tests.support.eventstream import converse_stream, exception, exception_frame, split_frames
from tests.support.upstream import Reply, Seen, Upstream, fixture

pytestmark = pytest.mark.integration
HELLO = "Hello! How can I help you today?"
ENV = {"GEMINI_KEY": "AIzaSyTest-gemini-0123456789", "AZURE_KEY": "azure-test-key-0123456789abcdef"}
AWS = {
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
}
REQUEST = dict(messages=[system("Be brief."), user("Hi")], config=gen.GenerationConfig(max_tokens=64))
EVENT_STREAM = {"content-type": "application/vnd.amazon.eventstream"}
BEDROCK_MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Dummy credentials through the real chain (environment first), nothing from this machine."""
    for name, value in AWS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


@dataclass(frozen=True)
class Kind:
    """One provider: its deployment block, its recorded answers, and its recorded failures."""

    name: str
    deployment: Callable[[str], dict[str, Any]]
    unary: Callable[[], Reply]
    stream: Callable[..., Reply]
    failures: dict[str, Reply]
    usage: tuple[int, int, int]  # prompt, completion, cached of the recorded answers


def bedrock(url: str) -> dict[str, Any]:
    return {
        "provider": "bedrock",
        "model": BEDROCK_MODEL,
        "base_url": url,
        "bedrock": {"region": "eu-west-1"},
    }


def gemini(url: str) -> dict[str, Any]:
    return {"provider": "gemini", "model": "gemini-2.5-flash", "base_url": f"{url}/v1beta",
            "api_key": {"env": "GEMINI_KEY"}}  # fmt: skip


def azure(url: str) -> dict[str, Any]:
    return {"provider": "azure", "model": "gpt-4o-mini", "base_url": url, "api_key": {"env": "AZURE_KEY"},
            "azure": {"deployment": "chat-prod", "api_version": "2024-10-21"}}  # fmt: skip


def gemini_stream(**kw: Any) -> Reply:
    raw = fixture("gemini/stream.sse")
    return Reply(chunks=[e + b"\r\n\r\n" for e in raw.split(b"\r\n\r\n") if e], **kw)


def bedrock_stream(**kw: Any) -> Reply:
    return Reply(chunks=split_frames(fixture("bedrock/converse_stream.bin")), headers=EVENT_STREAM, **kw)


def amzn(name: str, status: int, kind: str, **headers: str) -> Reply:
    """A Bedrock error answer: the JSON message, and the exception type in x-amzn-ErrorType."""
    error_type = {"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    return Reply.json(f"bedrock/{name}.json", status, headers={**error_type, **headers})


KINDS = {
    "bedrock": Kind(
        "bedrock", bedrock, lambda: Reply.json("bedrock/converse.json"), bedrock_stream,
        {
            "429": amzn("error_throttling", 429, "ThrottlingException", **{"retry-after": "3"}),
            "5xx": amzn("error_service_unavailable", 503, "ServiceUnavailableException"),
            "400": amzn("error_validation", 400, "ValidationException"),
            "auth": amzn("error_unrecognized_client", 403, "UnrecognizedClientException"),
        },
        (20, 12, 8),
    ),
    "gemini": Kind(
        "gemini", gemini, lambda: Reply.json("gemini/generate_content.json"), gemini_stream,
        {
            "429": Reply.json("gemini/error_429.json", 429, headers={"retry-after": "3"}),
            "5xx": Reply.json("gemini/error_503.json", 503),
            "400": Reply.json("gemini/error_400.json", 400),
            "auth": Reply.json("gemini/error_403.json", 403),
        },
        (7, 14, 2),
    ),
    "azure": Kind(
        "azure", azure, lambda: Reply.json("azure/chat_completion.json"),
        lambda **kw: Reply.sse("azure/stream.sse", **kw),
        {
            "429": Reply.json("azure/error_429.json", 429, headers={"retry-after": "3"}),
            "5xx": Reply.json("azure/error_500.json", 500),
            "400": Reply.json("azure/error_400.json", 400),
            "auth": Reply.json("azure/error_401.json", 401),
        },
        (19, 9, 0),
    ),
}  # fmt: skip
ALL = pytest.mark.parametrize("kind", list(KINDS.values()), ids=list(KINDS))


def single(kind: Kind, url: str, **extra: Any) -> dict[str, Any]:
    return {
        "default_route": "r",
        "deployments": {"d": {**kind.deployment(url), **extra}},
        "routes": {"r": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
        "routing": {"probes": {"enabled": False}},
    }


def check_request(kind: Kind, seen: Seen, stream: bool) -> None:
    """The request went to the provider's own URL, with its own credential and body shape."""
    if kind.name == "bedrock":
        suffix = "converse-stream" if stream else "converse"
        assert seen.raw_path == f"/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/{suffix}"
        assert seen.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        assert "/eu-west-1/bedrock/aws4_request" in seen.headers["Authorization"]
        assert seen.headers["X-Amz-Date"]
        assert_valid_signature(seen, "eu-west-1")
        assert seen.body == {
            "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
            "system": [{"text": "Be brief."}],
            "inferenceConfig": {"maxTokens": 64},
        }
    elif kind.name == "gemini":
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        assert seen.raw_path == f"/v1beta/models/gemini-2.5-flash:{method}"
        assert seen.headers["x-goog-api-key"] == ENV["GEMINI_KEY"]
        assert seen.body == {
            "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "generationConfig": {"maxOutputTokens": 64},
        }
    else:
        assert seen.raw_path == "/openai/deployments/chat-prod/chat/completions?api-version=2024-10-21"
        assert seen.headers["api-key"] == ENV["AZURE_KEY"]
        assert "Authorization" not in seen.headers
        assert seen.body["messages"][0] == {"role": "system", "content": "Be brief."}
        assert "model" not in seen.body and seen.body.get("stream", False) is stream


def assert_valid_signature(seen: Seen, region: str) -> None:
    """Recompute the SigV4 signature as AWS would, from what arrived: it must match."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import ReadOnlyCredentials

    authorization = seen.headers["Authorization"]
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    headers = {k: v for k, v in seen.headers.items() if k.lower() in signed}
    url = f"http://{seen.headers['Host']}{seen.raw_path}"
    request = AWSRequest(method=seen.method, url=url, data=seen.raw_body, headers=headers)
    request.context["timestamp"] = seen.headers["X-Amz-Date"]
    auth = SigV4Auth(
        ReadOnlyCredentials(AWS["AWS_ACCESS_KEY_ID"], AWS["AWS_SECRET_ACCESS_KEY"], None), "bedrock", region
    )
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    assert authorization.endswith(f"Signature={expected}")


@ALL
async def test_unary(serve: Any, upstream: Upstream, kind: Kind) -> None:
    upstream.push(kind.unary())
    s = await serve({"policy": single(kind, upstream.url, price={"input_per_million": 1.0})}, ENV)
    reply = await s.stub.Generate(generate_request(**REQUEST))
    assert text_of(reply) == HELLO
    u = reply.summary.usage
    assert (u.prompt_tokens, u.completion_tokens, u.cached_tokens) == kind.usage
    assert reply.summary.finish_reason == gen.FINISH_REASON_STOP
    assert reply.summary.served_by.provider == kind.name
    assert reply.summary.cost_micros == kind.usage[0]
    check_request(kind, upstream.seen[0], stream=False)


@ALL
async def test_stream(serve: Any, upstream: Upstream, kind: Kind) -> None:
    upstream.push(kind.stream(chunk_delay=0.01))
    s = await serve({"policy": single(kind, upstream.url)}, ENV)
    events = [e async for e in s.stub.StreamGenerate(stream_request(**REQUEST))]
    assert [e.delta.text for e in events[:-1]] == ["Hello", "! How can I", " help you today?"]
    summary = events[-1].result.summary
    assert summary.finish_reason == gen.FINISH_REASON_STOP
    usage = (summary.usage.prompt_tokens, summary.usage.completion_tokens, summary.usage.cached_tokens)
    expected = {"bedrock": (20, 12, 8), "gemini": (7, 9, 0), "azure": (19, 9, 0)}[kind.name]
    assert usage == expected
    check_request(kind, upstream.seen[0], stream=True)


FAILURES = [
    ("429", grpc.StatusCode.UNAVAILABLE, "PROVIDERS_UNAVAILABLE"),
    ("5xx", grpc.StatusCode.UNAVAILABLE, "PROVIDERS_UNAVAILABLE"),
    ("400", grpc.StatusCode.INVALID_ARGUMENT, "PROVIDER_REJECTED"),
    ("auth", grpc.StatusCode.INTERNAL, "PROVIDER_AUTH_FAILED"),
]


@ALL
@pytest.mark.parametrize(("failure", "code", "reason"), FAILURES, ids=[f[0] for f in FAILURES])
@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_failures_are_classified(
    serve: Any, upstream: Upstream, kind: Kind, failure: str, code: grpc.StatusCode, reason: str, stream: bool
) -> None:
    upstream.push(kind.failures[failure])
    s = await serve({"policy": single(kind, upstream.url)}, ENV)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        if stream:
            _ = [e async for e in s.stub.StreamGenerate(stream_request(**REQUEST))]
        else:
            await s.stub.Generate(generate_request(**REQUEST))
    err = await rich(info.value)
    assert (err.code, err.reason) == (code, reason)
    if failure == "429":
        assert err.retry is not None and err.retry.retry_delay.seconds == 3
    assert ENV["AZURE_KEY"] not in err.message and ENV["GEMINI_KEY"] not in err.message


@ALL
async def test_malformed_and_refused(serve: Any, upstream: Upstream, kind: Kind) -> None:
    upstream.push(Reply(body=b"<html>not json</html>"))
    s = await serve({"policy": single(kind, upstream.url)}, ENV)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(**REQUEST))
    assert (await rich(info.value)).code == grpc.StatusCode.UNAVAILABLE
    refused = await serve({"policy": single(kind, f"http://127.0.0.1:{free_port()}")}, ENV)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await refused.stub.Generate(generate_request(**REQUEST))
    assert (await rich(info.value)).reason == "PROVIDERS_UNAVAILABLE"


@ALL
async def test_deadline_cuts_the_upstream_request(serve: Any, upstream: Upstream, kind: Kind) -> None:
    upstream.push(Reply(hang=True))
    s = await serve({"policy": single(kind, upstream.url, read_timeout_seconds=30)}, ENV)
    started = asyncio.get_running_loop().time()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(**REQUEST), timeout=0.3)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert asyncio.get_running_loop().time() - started < 2.0
    await eventually(lambda: upstream.disconnects == 1)


@ALL
async def test_cancel_mid_stream_closes_the_upstream_request(
    serve: Any, upstream: Upstream, kind: Kind
) -> None:
    upstream.push(kind.stream(chunk_delay=0.3))
    s = await serve({"policy": single(kind, upstream.url)}, ENV)
    call = s.stub.StreamGenerate(stream_request(**REQUEST))
    first = await call.read()
    assert first.delta.text == "Hello"
    call.cancel()
    await eventually(lambda: upstream.disconnects == 1)
    assert upstream.completed == 0


def bedrock_then(frame: bytes) -> Callable[[], Reply]:
    """A ConverseStream that starts well (one text delta), then sends `frame`."""
    return lambda: Reply(chunks=[*converse_stream(["Hello"])[:2], frame], headers=EVENT_STREAM)


def bedrock_cut_short() -> Reply:
    """A whole ConverseStream (messageStop included) whose last frame, the usage, ends half-way."""
    frames = converse_stream(["Hello", " there"])
    return Reply(chunks=[*frames[:-1], frames[-1][: len(frames[-1]) // 2]], headers=EVENT_STREAM)


@pytest.mark.parametrize(
    ("kind", "reply"),
    [
        ("bedrock", bedrock_then(exception("throttlingException", "slow down"))),
        ("bedrock", bedrock_cut_short),  # EOF in the middle of the last frame
        ("bedrock", bedrock_then(b"\x00\x00\x00\x20garbage-that-is-no-frame!!!!!!!!")),  # prelude CRC wrong
        ("gemini", lambda: Reply(chunks=[fixture("gemini/stream_truncated.sse")])),
        (
            "bedrock",
            bedrock_then(exception_frame("throttlingException", b"[" * 5_000)),
        ),  # past a parser's stack
    ],
    ids=[
        "bedrock-exception",
        "bedrock-truncated-frame",
        "bedrock-bad-crc",
        "gemini-truncated",
        "bedrock-nested-exception",
    ],
)
async def test_failure_after_first_chunk_interrupts_the_stream(
    serve: Any, upstream: Upstream, kind: str, reply: Callable[[], Reply]
) -> None:
    upstream.push(reply())
    s = await serve({"policy": single(KINDS[kind], upstream.url)}, ENV)
    received: list[gen.StreamGenerateResponse] = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for event in s.stub.StreamGenerate(stream_request(**REQUEST)):
            received.append(event)
    assert received and received[0].delta.text.startswith("Hello")
    assert (await rich(info.value)).reason == "STREAM_INTERRUPTED"


@pytest.fixture
async def upstream3() -> Any:
    server = await Upstream().start()
    yield server
    await server.close()


def mixed_route(bedrock_url: str, gemini_url: str, azure_url: str) -> dict[str, Any]:
    """One route over a Bedrock, a Gemini and an Azure deployment, in that order."""
    return {
        "default_route": "r",
        "deployments": {
            "bedrock": bedrock(bedrock_url),
            "gemini": gemini(gemini_url),
            "azure": azure(azure_url),
        },
        "routes": {"r": {"deployments": ["bedrock", "gemini", "azure"], "retry": {"max_attempts": 1}}},
        "routing": {"probes": {"enabled": False}},
    }


async def test_a_route_fails_over_across_the_three_providers(
    serve: Any, upstream: Upstream, upstream2: Upstream, upstream3: Upstream
) -> None:
    upstream.push(KINDS["bedrock"].failures["5xx"], bedrock_stream())
    upstream2.push(KINDS["gemini"].failures["429"], KINDS["gemini"].unary())
    upstream3.push(KINDS["azure"].unary())
    s = await serve({"policy": mixed_route(upstream.url, upstream2.url, upstream3.url)}, ENV)
    reply = await s.stub.Generate(generate_request(**REQUEST))
    assert text_of(reply) == HELLO
    assert [(a.deployment, a.outcome) for a in reply.summary.attempts] == [
        ("bedrock", "PROVIDER_UNAVAILABLE"),
        ("gemini", "PROVIDER_RATE_LIMITED"),
        ("azure", "OK"),
    ]
    assert (reply.summary.served_by.provider, reply.summary.served_by.deployment) == ("azure", "azure")
    events = [e async for e in s.stub.StreamGenerate(stream_request(**REQUEST))]
    assert "".join(e.delta.text for e in events[:-1]) == HELLO
    assert events[-1].result.summary.served_by.provider == "bedrock"


async def test_stream_fails_over_before_its_first_chunk_only(
    serve: Any, upstream: Upstream, upstream2: Upstream, upstream3: Upstream
) -> None:
    upstream.push(Reply(reset=True))
    upstream2.push(gemini_stream())
    s = await serve({"policy": mixed_route(upstream.url, upstream2.url, upstream3.url)}, ENV)
    events = [e async for e in s.stub.StreamGenerate(stream_request(**REQUEST))]
    summary = events[-1].result.summary
    assert [(a.deployment, a.outcome) for a in summary.attempts] == [
        ("bedrock", "PROVIDER_UNAVAILABLE"),
        ("gemini", "OK"),
    ]
    assert upstream3.seen == []


@ALL
async def test_a_stream_trickling_bytes_that_complete_no_event_times_out(
    serve: Any, upstream: Upstream, kind: Kind
) -> None:
    """Every read comes well within the read timeout (a byte every 20 ms) but no event or message
    completes within it: a PROVIDER_TIMEOUT at the read timeout, not a wait until the deadline."""
    upstream.push(kind.stream(byte_delay=0.02))
    s = await serve({"policy": single(kind, upstream.url, read_timeout_seconds=0.5)}, ENV)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in s.stub.StreamGenerate(stream_request(**REQUEST), timeout=10):
            pass
    err = await rich(info.value)
    assert err.reason == "PROVIDERS_UNAVAILABLE"
    assert "PROVIDER_TIMEOUT" in err.message
