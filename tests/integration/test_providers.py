"""OpenAI and Anthropic adapters against loopback upstreams replaying recorded wire transcripts."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import system, user
from tests.support.api import generate_request, stream_request, text_of
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
KEYS = {"OAI_KEY": "sk-test-openai-0123456789", "ANT_KEY": "sk-ant-test-0123456789"}


def policy(upstream: Upstream, provider: str) -> dict[str, Any]:
    base = f"{upstream.url}/v1" if provider == "openai" else upstream.url
    key = "OAI_KEY" if provider == "openai" else "ANT_KEY"
    return {
        "default_route": "r",
        "deployments": {
            "d": {
                "provider": provider,
                "model": "the-model",
                "base_url": base,
                "api_key": {"env": key},
                "price": {"input_per_million": 1.0, "output_per_million": 4.0},
            }
        },
        "routes": {"r": {"deployments": ["d"]}},
    }


REQUEST = dict(
    messages=[system("Be brief."), user("Hi")],
    config=gen.GenerationConfig(max_tokens=64, temperature=0.5),
)


async def test_openai_unary(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.json("openai/chat_completion.json"))
    s = await serve({"policy": policy(upstream, "openai")}, KEYS)
    reply = await s.stub.Generate(generate_request(**REQUEST))
    assert text_of(reply) == "Hello! How can I help you today?"
    u = reply.summary.usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens, u.cached_tokens) == (19, 9, 28, 4)
    assert reply.summary.cost_micros == 19 * 1 + 9 * 4
    seen = upstream.seen[0]
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["Authorization"] == "Bearer sk-test-openai-0123456789"
    assert seen.body == {
        "model": "the-model",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "max_tokens": 64,
        "temperature": 0.5,
    }


async def test_openai_stream_with_usage(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.sse("openai/stream.sse", chunk_delay=0.01))  # one token per network read
    s = await serve({"policy": policy(upstream, "openai")}, KEYS)
    events = [e async for e in s.stub.StreamGenerate(stream_request(**REQUEST))]
    assert "".join(e.delta.text for e in events[:-1]) == "Hello! How can I help you today?"
    assert len(events) == 10  # nine deltas, one summary
    summary = events[-1].result.summary
    assert (summary.usage.prompt_tokens, summary.usage.completion_tokens) == (19, 9)
    assert summary.finish_reason == gen.FINISH_REASON_STOP
    assert upstream.seen[0].body["stream_options"] == {"include_usage": True}


async def test_anthropic_unary(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.json("anthropic/message.json"))
    s = await serve({"policy": policy(upstream, "anthropic")}, KEYS)
    reply = await s.stub.Generate(generate_request(**REQUEST))
    assert text_of(reply) == "Hello! How can I help you today?"
    assert (reply.summary.usage.prompt_tokens, reply.summary.usage.cached_tokens) == (20, 8)
    seen = upstream.seen[0]
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == "sk-ant-test-0123456789"
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in seen.headers
    assert seen.body == {
        "model": "the-model",
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 64,
        "temperature": 0.5,
    }


async def test_anthropic_stream(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.sse("anthropic/stream.sse", chunk_delay=0.01))
    s = await serve({"policy": policy(upstream, "anthropic")}, KEYS)
    events = [e async for e in s.stub.StreamGenerate(stream_request(**REQUEST))]
    assert [e.delta.text for e in events[:-1]] == ["Hello", "! How can I", " help you today?"]
    usage = events[-1].result.summary.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (20, 12, 8)
    assert upstream.seen[0].body["stream"] is True


async def test_a_burst_of_events_goes_out_as_one_delta(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply(chunks=[b"".join(Reply.sse("openai/stream.sse").chunks or [])]))  # one write
    s = await serve({"policy": policy(upstream, "openai")}, KEYS)
    events = [e async for e in s.stub.StreamGenerate(stream_request(**REQUEST))]
    assert [e.WhichOneof("event") for e in events] == ["delta", "result"]
    assert events[0].delta.text == "Hello! How can I help you today?"
    assert events[1].result.summary.usage.completion_tokens == 9


async def test_streams_return_their_connection_to_the_pool(serve: Any, upstream: Upstream) -> None:
    """The end of the HTTP response may come a moment after [DONE]: it is read, and the connection reused."""
    upstream.push(*[Reply.sse("openai/stream.sse", eof_delay=0.01) for _ in range(3)])
    s = await serve({"policy": policy(upstream, "openai")}, KEYS)
    for _ in range(3):
        events = [e async for e in s.stub.StreamGenerate(stream_request(**REQUEST))]
        assert events[-1].HasField("result")
    assert upstream.connections == 1
