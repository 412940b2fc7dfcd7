"""Context management through the real server: trimming, the summary path on echo, CONTEXT_TOO_LONG."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.context.summary import summary_message, transcript
from sidecar.context.tokenizer import ESTIMATE_COUNTER
from sidecar.core.tokens import split_tokens
from sidecar.core.types import Message, Role
from tests.conftest import system, user
from tests.integration.helpers import rich
from tests.support.api import generate_request, stream_request, text_of

pytestmark = pytest.mark.integration

ROLES = {gen.ROLE_SYSTEM: Role.SYSTEM, gen.ROLE_USER: Role.USER, gen.ROLE_ASSISTANT: Role.ASSISTANT}


def assistant(text: str) -> gen.Message:
    return gen.Message(role=gen.ROLE_ASSISTANT, content=[gen.ContentPart(text=text)])


def long_conversation(turns: int) -> list[gen.Message]:
    messages = [system("You are Dashboard Architect. Answer with one chart spec.")]
    for i in range(turns):
        messages.append(user(f"question {i}: which chart shows revenue by region over {i + 2} quarters?"))
        messages.append(assistant(f"answer {i}: a stacked bar chart, one bar per quarter, {i} notes."))
    messages.append(user("and the final question?"))
    return messages


def domain(messages: list[gen.Message]) -> list[Message]:
    return [Message(ROLES[m.role], m.content[0].text) for m in messages]


def policy(**context: Any) -> dict[str, Any]:
    return {
        "default_route": "chat",
        "deployments": {
            "small": {
                "provider": "echo",
                "model": "echo-s",
                "context_window": 600,
                "default_max_tokens": 100,
            },
            "large": {"provider": "echo", "model": "echo-l", "context_window": 20_000},
            "cheap": {"provider": "echo", "model": "echo-cheap"},
        },
        "routes": {"chat": {"deployments": ["large", "small"]}, "cheap": {"deployments": ["cheap"]}},
        "context": context,
    }


async def test_a_long_conversation_is_trimmed_to_the_smallest_window(serve: Any) -> None:
    s = await serve({"policy": policy(max_recent_messages=1000)})
    messages = long_conversation(40)
    reply = await s.stub.Generate(generate_request(messages=messages))
    sm = reply.summary
    assert text_of(reply) == "and the final question?"
    before = ESTIMATE_COUNTER.count_prompt(domain(messages))
    assert before > 600 and sm.usage.prompt_tokens <= 600 - 100  # the window minus max_tokens
    assert sm.context_tokens_removed == before - sm.usage.prompt_tokens  # echo counts with the estimate
    assert sm.context_messages_removed > 0 and not sm.context_summarized


async def test_at_most_n_recent_messages_by_default(serve: Any) -> None:
    s = await serve({"policy": policy()})
    messages = long_conversation(8)  # 1 system + 17
    reply = await s.stub.Generate(generate_request(messages=messages))
    kept = domain([messages[0], *messages[-10:]])
    assert reply.summary.context_messages_removed == 7
    assert reply.summary.usage.prompt_tokens == ESTIMATE_COUNTER.count_prompt(kept)


SUMMARY = {"route": "cheap", "max_tokens": 30, "keep_recent_messages": 4, "refresh_tokens": 1}


async def test_the_dropped_messages_are_summarized_through_the_echo_route(serve: Any) -> None:
    s = await serve({"policy": policy(summary=SUMMARY)})
    messages = long_conversation(6)
    request = stream_request(messages=messages, conversation_id="c1")
    first = [e async for e in s.stub.StreamGenerate(request)][-1].result.summary
    assert not first.context_summarized and first.context_messages_removed == 0  # nothing covered yet
    events = [e async for e in s.stub.StreamGenerate(request)]  # the same turn again
    sm = events[-1].result.summary
    assert sm.context_summarized and sm.context_messages_removed == 9
    # The echo "summarizes" by repeating the transcript it was sent, cut at max_tokens.
    dropped = domain(messages[1:10])
    summary_text = "".join(split_tokens(transcript(dropped, 32_000))[:30]).strip()
    sent = [*domain(messages[:1]), summary_message(summary_text, 9), *domain(messages[10:])]
    assert sm.usage.prompt_tokens == ESTIMATE_COUNTER.count_prompt(sent)
    assert (
        sm.context_tokens_removed == ESTIMATE_COUNTER.count_prompt(domain(messages)) - sm.usage.prompt_tokens
    )


async def test_a_prompt_that_cannot_fit_is_context_too_long(serve: Any) -> None:
    s = await serve({"policy": policy()})
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(messages=[system("rules"), user("word " * 30_000)]))
    err = await rich(info.value)
    assert err.code is grpc.StatusCode.INVALID_ARGUMENT
    assert err.reason == "CONTEXT_TOO_LONG" and err.fields == ["input.messages"]
    assert err.info.metadata["maxContextTokens"] == "20000"


async def test_trimming_can_be_turned_off(serve: Any) -> None:
    s = await serve({"policy": policy(enabled=False)})
    messages = long_conversation(8)
    reply = await s.stub.Generate(generate_request(messages=messages))
    assert reply.summary.context_messages_removed == 0
    assert reply.summary.usage.prompt_tokens == ESTIMATE_COUNTER.count_prompt(domain(messages))


async def test_summaries_are_stored_with_the_conversation_in_redis(serve: Any, redis_url: str) -> None:
    from redis.asyncio import Redis

    prefix = f"ctx{uuid.uuid4().hex[:12]}"
    sessions = {"store": "redis", "redis_url": redis_url, "key_prefix": prefix, "ttl_seconds": 300}
    raw = {"policy": {**policy(summary=SUMMARY), "personas": {"sessions": sessions}}}
    s = await serve(raw)
    messages = long_conversation(6)
    replies = [
        await s.stub.Generate(generate_request(messages=messages, tenant_id="acme", conversation_id="c"))
        for _ in range(2)
    ]
    assert [r.summary.context_summarized for r in replies] == [False, True]
    client = Redis.from_url(redis_url)
    try:
        [key] = await client.keys(f"{prefix}:*:c:c")
        assert b"Summary" not in (await client.hget(key, "summary") or b"")
        assert b"question 0" in (await client.hget(key, "summary") or b"")  # the echo's "summary"
        assert 0 < await client.ttl(key) <= 300
        assert not await client.keys(f"{prefix}*answer*")
    finally:
        await client.aclose()


async def test_a_trimmed_prompt_is_routed_when_another_route_counts_with_a_larger_tokenizer(
    serve: Any,
) -> None:
    """The route's fit counted the prompt with the largest tokenizer of the whole configuration: a
    sidecar that also had an Anthropic deployment (counted with its upper bound, about 1.3 x) on
    another route refused every trimmed prompt of an echo or OpenAI route near its window with
    CONTEXT_TOO_LONG, after the context layer had fitted it to that route's own deployments; with
    memory the conversation failed on every turn from then on. The fit counts with the route's own
    deployments' tokenizers, as trimming does."""
    raw = policy(max_recent_messages=1000)
    raw["deployments"]["claude"] = {
        "provider": "anthropic",
        "model": "claude-haiku-4-5",
        "base_url": "http://127.0.0.1:9",
        "api_key": {"env": "ANTHROPIC_KEY"},
    }
    raw["routes"]["claude"] = {"deployments": ["claude"]}
    raw["routes"]["small"] = {"deployments": ["small"]}
    s = await serve({"policy": raw}, {"ANTHROPIC_KEY": "ak-0123456789"})
    reply = await s.stub.Generate(generate_request(messages=long_conversation(40), model="small"))
    assert reply.summary.served_by.deployment == "small"
    assert 0 < reply.summary.usage.prompt_tokens <= 600 - 100
