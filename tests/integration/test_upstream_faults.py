"""Upstream faults as an outside tester injects them, seen through a real server and gRPC client."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import quota_pb2
from tests.conftest import user
from tests.integration.helpers import rich
from tests.integration.test_failures import ENV, two_deployments
from tests.support.api import generate_request, stream_request
from tests.support.upstream import Reply, Upstream, fixture, sse_events

pytestmark = pytest.mark.integration

ANTHROPIC_START_OF_WRONG_SHAPE = b'event: message_start\ndata: {"type":"message_start","message":"oops"}\n\n'
OPENAI_FINISH_OF_WRONG_SHAPE = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":["stop"]}]}\n\n'


async def stream(s: Any) -> tuple[list[gen.StreamGenerateResponse], grpc.aio.AioRpcError | None]:
    received: list[gen.StreamGenerateResponse] = []
    try:
        async for event in s.stub.StreamGenerate(stream_request(messages=[user("Hi")])):
            received.append(event)
    except grpc.aio.AioRpcError as err:
        return received, err
    return received, None


async def test_an_event_of_the_wrong_shape_before_the_first_chunk_falls_over(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    upstream.push(Reply(chunks=[ANTHROPIC_START_OF_WRONG_SHAPE]))
    upstream2.push(Reply.sse("anthropic/stream.sse"))
    s = await serve({"policy": two_deployments(upstream.url, upstream2.url, provider="anthropic")}, ENV)
    received, err = await stream(s)
    assert err is None
    summary = received[-1].result.summary
    assert [(a.deployment, a.outcome) for a in summary.attempts] == [
        ("first", "PROVIDER_BAD_RESPONSE"),
        ("second", "OK"),
    ]


async def test_an_event_of_the_wrong_shape_after_the_first_chunk_interrupts_the_stream(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    events = sse_events(fixture("openai/stream.sse"))
    upstream.push(Reply(chunks=[*events[:3], OPENAI_FINISH_OF_WRONG_SHAPE], chunk_delay=0.02))
    s = await serve({"policy": two_deployments(upstream.url, upstream2.url)}, ENV)
    received, err = await stream(s)
    assert received and all(e.HasField("delta") for e in received)
    assert err is not None
    info = await rich(err)
    assert (info.code, info.reason) == (grpc.StatusCode.UNAVAILABLE, "STREAM_INTERRUPTED")
    assert info.info.metadata["cause"] == "PROVIDER_BAD_RESPONSE"
    assert int(info.info.metadata["completionTokens"]) > 0
    assert upstream2.seen == []


def with_token_quota(policy: dict[str, Any]) -> dict[str, Any]:
    limit = {"name": "tenant-tokens", "metric": "tokens", "scope": "tenant", "window": "day", "limit": 10**6}
    return {**policy, "quota": {"limits": [limit]}}


async def tokens_used(s: Any) -> int:
    got = await s.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme", user_id="bob"))
    return next(limit.used for limit in got.limits if limit.name == "tenant-tokens")


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "unary"])
async def test_an_answer_without_usage_is_charged_what_the_sidecar_counted(
    serve: Any, upstream: Upstream, upstream2: Upstream, stream: bool
) -> None:
    """An OpenAI-compatible server that ignores stream_options.include_usage (or a unary answer
    without `usage`): the call is charged and reported the sidecar's count, never zero tokens."""
    if stream:
        events = [e for e in sse_events(fixture("openai/stream.sse")) if b'"usage":{' not in e]
        upstream.push(Reply(chunks=events))
    else:
        answer = json.loads(fixture("openai/chat_completion.json"))
        del answer["usage"]
        upstream.push(Reply(body=json.dumps(answer).encode()))
    policy = with_token_quota(two_deployments(upstream.url, upstream2.url))
    s = await serve({"policy": policy}, ENV)
    ask = {"messages": [user("Hi")], "tenant_id": "acme", "user_id": "bob"}
    if stream:
        events_out = [e async for e in s.stub.StreamGenerate(stream_request(**ask))]
        summary = events_out[-1].result.summary
    else:
        summary = (await s.stub.Generate(generate_request(**ask))).summary
    assert summary.usage.prompt_tokens > 0 and summary.usage.completion_tokens > 0
    assert await tokens_used(s) == summary.usage.total_tokens


async def test_a_stream_trickling_bytes_without_completing_an_event_times_out_and_falls_over(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    """Each read arrives well within the read timeout (a byte every 20 ms), but no event completes
    within it: the attempt is a PROVIDER_TIMEOUT and the next deployment answers, long before the
    caller's deadline."""
    upstream.push(Reply.sse("openai/stream.sse", byte_delay=0.02))
    upstream2.push(Reply.sse("openai/stream.sse"))
    policy = two_deployments(upstream.url, upstream2.url, read_timeout_seconds=0.5)
    s = await serve({"policy": policy}, ENV)
    call = s.stub.StreamGenerate(stream_request(messages=[user("Hi")]), timeout=10)
    events = [e async for e in call]
    summary = events[-1].result.summary
    assert [(a.deployment, a.outcome) for a in summary.attempts] == [
        ("first", "PROVIDER_TIMEOUT"),
        ("second", "OK"),
    ]


async def test_a_tool_input_nested_too_deep_falls_over(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    nested = b'{"a":' * 1000 + b"{}" + b"}" * 1000
    upstream.push(
        Reply(
            body=b'{"type":"message","stop_reason":"tool_use","content":'
            b'[{"type":"tool_use","id":"t1","name":"f","input":' + nested + b"}]}"
        )
    )
    upstream2.push(Reply.json("anthropic/message.json"))
    s = await serve({"policy": two_deployments(upstream.url, upstream2.url, provider="anthropic")}, ENV)
    reply = await s.stub.Generate(generate_request(messages=[user("Hi")]))
    assert [(a.deployment, a.outcome) for a in reply.summary.attempts] == [
        ("first", "MODEL_OUTPUT_UNUSABLE"),  # what the model wrote: not the deployment's failure
        ("second", "OK"),
    ]


def with_tool_call(arguments: str) -> list[gen.Message]:
    return [
        user("call f"),
        gen.Message(
            role=gen.ROLE_ASSISTANT,
            content=[gen.ContentPart(tool_call=gen.ToolCall(id="c1", name="f", arguments=arguments))],
        ),
        gen.Message(role=gen.ROLE_TOOL, tool_call_id="c1", content=[gen.ContentPart(text="done")]),
        user("thanks"),
    ]


async def test_tool_arguments_nested_too_deep_to_encode_are_rejected_not_a_crash(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    """Arguments the edge accepts (a JSON object within its length bound) that the Anthropic body
    cannot carry (orjson encodes at most 255 levels): the caller's request refused, nothing sent,
    no failover; never INTERNAL."""
    arguments = '{"a":' * 300 + "{}" + "}" * 300
    s = await serve({"policy": two_deployments(upstream.url, upstream2.url, provider="anthropic")}, ENV)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(messages=with_tool_call(arguments)))
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "PROVIDER_REJECTED")
    assert upstream.seen == [] and upstream2.seen == []


async def test_keep_alive_comments_keep_a_waiting_stream_alive(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    """A proxy that sends `: keep-alive` comments while its model thinks (longer than the read
    timeout in all) is waiting, not trickling: each complete line restarts the read timeout."""
    keep_alive = [b": keep-alive\n\n"] * 5
    upstream.push(Reply(chunks=[*keep_alive, *sse_events(fixture("openai/stream.sse"))], chunk_delay=0.2))
    s = await serve({"policy": two_deployments(upstream.url, upstream2.url, read_timeout_seconds=0.5)}, ENV)
    received, err = await stream(s)
    assert err is None
    assert [(a.deployment, a.outcome) for a in received[-1].result.summary.attempts] == [("first", "OK")]
