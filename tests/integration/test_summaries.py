"""Rolling summaries through the real server, written by a real loopback OpenAI-wire upstream that
counts the calls it gets: they are accounted like any call (metrics, ledger, GetUsage, quota, tier),
and a caller that tier or quota refuses causes no summary call at all (issue 13, defect 7)."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import usage_pb2
from sidecar.context.tokenizer import Tokenizers
from sidecar.core.types import Message, Role
from tests.conftest import admin_socket, system, user
from tests.integration.helpers import rich
from tests.support.api import generate_request
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
KEYS = {"OAI_KEY": "sk-test-openai-0123456789"}
SUMMARY_PRICE = {"input_per_million": 0.15, "output_per_million": 0.6}


def config(upstream: Upstream) -> dict[str, Any]:
    return {
        "settings": {"admin": admin_socket()},  # GetUsage is an AdminService RPC
        "policy": {
            "default_route": "chat",
            "deployments": {
                "main": {"provider": "echo", "model": "echo-1"},
                "summarizer": {
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                    "base_url": f"{upstream.url}/v1",
                    "api_key": {"env": "OAI_KEY"},
                    "price": SUMMARY_PRICE,
                },
            },
            "routes": {"chat": {"deployments": ["main"]}, "summarize": {"deployments": ["summarizer"]}},
            "context": {
                "max_recent_messages": 4,
                "summary": {"route": "summarize", "keep_recent_messages": 2, "refresh_tokens": 1},
            },
            "tiers": {
                "free": {"allowed_routes": ["summarize"]},
                "basic": {"allowed_routes": ["chat"]},
                "enterprise": {},
            },
            "tier_assignment": {"default": "enterprise", "tenants": {"cheapo": "free", "mid": "basic"}},
            "quota": {"limits": [{"name": "req", "metric": "requests", "window": "day", "limit": 3}]},
        },
    }


def conversation(turns: int = 6) -> list[gen.Message]:
    messages = [system("You are Mr Blue.")]
    for i in range(turns):
        messages.append(user(f"question {i}: what is on the dashboard today?"))
        messages.append(gen.Message(role=gen.ROLE_ASSISTANT, content=[gen.ContentPart(text=f"answer {i}")]))
    messages.append(user("and now?"))
    return messages


def request(tenant: str, who: str, conversation_id: str = "c1") -> gen.GenerateRequest:
    return generate_request(
        messages=conversation(), tenant_id=tenant, user_id=who, conversation_id=conversation_id
    )


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def stamp(seconds: float) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromNanoseconds(int(seconds * 1e9))
    return t


async def test_a_summary_call_is_metered_like_any_call(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.json("openai/chat_completion.json"))  # 19 prompt + 9 completion tokens
    s = await serve(config(upstream), KEYS)
    reply = await s.stub.Generate(request("acme", "ann"))
    # no summary covers any message yet, so none leaves the prompt
    assert reply.summary.context_messages_removed == 0 and not reply.summary.context_summarized
    [seen] = upstream.seen  # the summary, written after the answer
    assert seen.body["model"] == "gpt-4o-mini" and "question 0" in seen.body["messages"][1]["content"]

    now = time.time()
    usage = await s.stub.GetUsage(
        usage_pb2.GetUsageRequest(
            tenant_id="acme",
            start_time=stamp(now - 3600),
            end_time=stamp(now + 3600),
            group_by=usage_pb2.USAGE_GROUP_BY_ROUTE,
        )
    )
    by_route = {g.key: g for g in usage.groups}
    assert set(by_route) == {"chat", "summarize"}
    summary = by_route["summarize"]
    assert (summary.requests, summary.prompt_tokens, summary.completion_tokens) == (1, 19, 9)
    assert summary.cost_micros == round(19 * 0.15 + 9 * 0.6)  # the summarizer's price, in micro-dollars

    text = await asyncio.to_thread(scrape, s.sidecar.metrics_port)
    assert 'sidecar_requests_total{code="OK",model="gpt-4o-mini",provider="openai",route="summarize"' in text
    assert (
        'sidecar_tokens_total{direction="input",model="gpt-4o-mini",provider="openai",route="summarize"} 19.0'
        in text
    )

    # The next turn uses the stored summary (the upstream's answer text) in a system message.
    messages = [*conversation(), gen.Message(role=gen.ROLE_ASSISTANT, content=[gen.ContentPart(text="x")])]
    messages.append(user("and then?"))
    again = await s.stub.Generate(
        generate_request(messages=messages, tenant_id="acme", user_id="ann", conversation_id="c1")
    )
    assert again.summary.context_summarized and again.summary.context_messages_removed == 11


async def test_a_wrong_tier_caller_causes_no_summary_call(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.json("openai/chat_completion.json"))
    s = await serve(config(upstream), KEYS)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(request("cheapo", "ann"))  # free may use only the summary route
    assert (await rich(info.value)).reason == "MODEL_NOT_ALLOWED"
    assert upstream.seen == []


async def test_an_over_quota_caller_causes_no_summary_call(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.json("openai/chat_completion.json"))
    s = await serve(config(upstream), KEYS)
    for _ in range(3):  # the day's 3 requests, in calls too short to summarize
        await s.stub.Generate(generate_request(messages=[user("hi")], tenant_id="acme", user_id="bob"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(request("acme", "bob"))
    assert (await rich(info.value)).code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert upstream.seen == []


async def test_a_summary_the_quota_cannot_cover_is_not_made(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.json("openai/chat_completion.json"))
    s = await serve(config(upstream), KEYS)
    for _ in range(2):
        await s.stub.Generate(generate_request(messages=[user("hi")], tenant_id="acme", user_id="cy"))
    reply = await s.stub.Generate(request("acme", "cy"))  # the 3rd request: allowed; its summary is not
    assert reply.summary.context_messages_removed == 0 and reply.message.content[0].text
    assert upstream.seen == []


async def test_a_caller_whose_tier_may_not_use_the_summary_route_gets_none(
    serve: Any, upstream: Upstream
) -> None:
    upstream.push(Reply.json("openai/chat_completion.json"))
    s = await serve(config(upstream), KEYS)
    reply = await s.stub.Generate(request("mid", "ann"))  # basic: the chat route only
    assert reply.summary.context_messages_removed == 0 and reply.message.content[0].text
    assert upstream.seen == []


async def test_the_summary_prompt_fits_the_summary_routes_window(serve: Any, upstream: Upstream) -> None:
    """A cheap summarizer has a small window: what is folded is cut (newest kept) to fit it, as to
    `max_input_chars`. A long message made every turn's summary call fail with CONTEXT_TOO_LONG, so
    the conversation never got a summary and each turn logged and metered a failed call."""
    upstream.default = Reply.json("openai/chat_completion.json")
    raw = config(upstream)
    raw["policy"]["deployments"]["summarizer"]["context_window"] = 2048
    raw["policy"]["context"] = {"summary": {"route": "summarize"}}
    raw["policy"].pop("quota")
    s = await serve(raw, KEYS)
    report = "The quarterly report says revenue grew in every region. " * 450  # about 4,500 words
    ids = {"tenant_id": "acme", "user_id": "ann", "conversation_id": "long"}
    messages = [user("Please read this: " + report)]
    for i in range(3):
        reply = await s.stub.Generate(generate_request(messages=messages, **ids))
        messages += [reply.message, user(f"question {i} about the report?")]
    assert upstream.seen, "no summary call reached the summarizer"
    first = upstream.seen[0].body["messages"]
    sent = Tokenizers({}).prompt_max(tuple(Message(Role(m["role"]), m["content"]) for m in first))
    assert sent + 128 <= 2048  # the summary's max_tokens within the window, by the sidecar's count
    assert first[1]["content"].endswith(messages[1].content[0].text[-200:])  # the newest part is kept
    again = await s.stub.Generate(generate_request(messages=messages, **ids))
    assert again.summary.context_summarized
