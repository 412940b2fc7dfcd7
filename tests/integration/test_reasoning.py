"""Reasoning: effort and budget on the wire, reasoning and cache-write tokens in Usage and priced,
thinking deltas streamed when asked for."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import user
from tests.support.api import generate_request, stream_request, text_of
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
KEYS = {"OAI_KEY": "sk-test-openai-0123456789", "ANT_KEY": "sk-ant-test-0123456789"}


def policy(upstream: Upstream, provider: str) -> dict[str, Any]:
    base = f"{upstream.url}/v1" if provider == "openai" else upstream.url
    key = "OAI_KEY" if provider == "openai" else "ANT_KEY"
    price = {"input_per_million": 3.0, "output_per_million": 15.0, "cache_write_per_million": 3.75}
    d = {"provider": provider, "model": "m", "base_url": base, "api_key": {"env": key}, "price": price}
    d["capabilities"] = {"reasoning": True}
    return {
        "default_route": "r",
        "deployments": {"d": d},
        "routes": {"r": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
        "routing": {"probes": {"enabled": False}},
    }


def config(**reasoning: Any) -> gen.GenerationConfig:
    return gen.GenerationConfig(max_tokens=1000, temperature=0.2, reasoning=gen.ReasoningConfig(**reasoning))


async def test_openai_effort_and_reasoning_tokens(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.json("openai/reasoning.json"))
    s = await serve({"policy": policy(upstream, "openai")}, KEYS)
    req = generate_request(messages=[user("27 * 453?")], config=config(effort=gen.REASONING_EFFORT_HIGH))
    reply = await s.stub.Generate(req)
    assert upstream.seen[0].body["reasoning_effort"] == "high"
    u = reply.summary.usage
    assert (u.completion_tokens, u.reasoning_tokens) == (200, 192)
    assert reply.summary.cost_micros == 20 * 3 + 200 * 15  # reasoning tokens are output tokens


async def test_anthropic_budget_thinking_deltas_and_cache_writes(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.sse("anthropic/thinking_stream.sse"))
    s = await serve({"policy": policy(upstream, "anthropic")}, KEYS)
    req = stream_request(
        messages=[user("27 * 453?")], config=config(budget_tokens=2048, include_thinking=True)
    )
    events = [e async for e in s.stub.StreamGenerate(req)]
    kinds = [(e.delta.WhichOneof("kind"), e.delta.thinking or e.delta.text) for e in events[:-1]]
    assert kinds == [("thinking", "27 * 453 = 12231."), ("text", "12,231")]
    body = upstream.seen[0].body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] == 3048 and "temperature" not in body  # room for the answer; no sampling
    summary = events[-1].result.summary
    assert text_of(events[-1].result) == "12,231"
    assert (summary.usage.prompt_tokens, summary.usage.cache_write_tokens) == (1030, 1000)
    # 1030 input at $3, of which 1000 written to the cache at $3.75 instead, 40 output at $15
    assert summary.cost_micros == round(1030 * 3 + 1000 * 0.75 + 40 * 15)


async def test_thinking_is_not_streamed_unless_asked(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.sse("anthropic/thinking_stream.sse"))
    s = await serve({"policy": policy(upstream, "anthropic")}, KEYS)
    req = stream_request(messages=[user("27 * 453?")], config=config(budget_tokens=2048))
    events = [e async for e in s.stub.StreamGenerate(req)]
    assert [e.delta.WhichOneof("kind") for e in events[:-1]] == ["text"]


def vllm_stream() -> list[bytes]:
    """An OpenAI-compatible server's reasoning parser (vLLM, DeepSeek): the reasoning arrives in
    `delta.reasoning_content`, then the answer in `delta.content`."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return (
            b"data: "
            + json.dumps({"object": "chat.completion.chunk", "choices": [choice]}).encode()
            + b"\n\n"
        )

    return [
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_content": "27 * 453 = "}),
        chunk({"reasoning_content": "12231."}),
        chunk({"content": "12,231"}),
        chunk({}, "stop"),
        b"data: [DONE]\n\n",
    ]


async def test_openai_compatible_reasoning_content_streams_as_thinking(
    serve: Any, upstream: Upstream
) -> None:
    upstream.push(Reply(chunks=vllm_stream()), Reply(chunks=vllm_stream()))
    s = await serve({"policy": policy(upstream, "openai")}, KEYS)
    asked = stream_request(
        messages=[user("27 * 453?")], config=config(effort=gen.REASONING_EFFORT_LOW, include_thinking=True)
    )
    events = [e async for e in s.stub.StreamGenerate(asked)]
    kinds = [e.delta.WhichOneof("kind") for e in events[:-1]]
    assert kinds[-1] == "text" and set(kinds[:-1]) == {"thinking"}  # pieces that arrived together join
    assert "".join(e.delta.thinking for e in events[:-1]) == "27 * 453 = 12231."
    assert text_of(events[-1].result) == "12,231"
    unasked = stream_request(messages=[user("27 * 453?")], config=config(effort=gen.REASONING_EFFORT_LOW))
    events = [e async for e in s.stub.StreamGenerate(unasked)]
    assert [e.delta.WhichOneof("kind") for e in events[:-1]] == ["text"]


async def test_openai_compatible_reasoning_content_is_not_answer_text(serve: Any, upstream: Upstream) -> None:
    message = {"role": "assistant", "content": "12,231", "reasoning_content": "27 * 453 = 12231."}
    body = {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }
    upstream.push(Reply(body=json.dumps(body).encode()))
    s = await serve({"policy": policy(upstream, "openai")}, KEYS)
    reply = await s.stub.Generate(
        generate_request(messages=[user("27 * 453?")], config=config(effort=gen.REASONING_EFFORT_LOW))
    )
    assert text_of(reply) == "12,231"
