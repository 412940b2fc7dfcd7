"""Conversation memory over the wire: the application sends only the new message and the upstream
(a loopback OpenAI-compatible server) receives the persona prompt and the stored history. Over the
in-memory store and a real Redis shared by two sidecars."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import personas_pb2 as pb
from tests.conftest import Running, system, user
from tests.integration.helpers import rich
from tests.support.api import generate_request, stream_request
from tests.support.personas import CATALOGUE
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration

IDS = {"tenant_id": "t1", "user_id": "u1", "conversation_id": "c1"}
ANSWER = "Hello! How can I help you today?"  # what openai/chat_completion.json answers
KEYS = {"OAI_KEY": "sk-test-0123456789"}


def config(upstream: Upstream, **sessions: Any) -> dict[str, Any]:
    return {
        "policy": {
            "default_route": "r",
            "deployments": {
                "d": {
                    "provider": "openai",
                    "model": "m",
                    "base_url": f"{upstream.url}/v1",
                    "api_key": {"env": "OAI_KEY"},
                }
            },
            "routes": {"r": {"deployments": ["d"]}},
            "personas": {
                "personas": [{**p, "default_route": None} for p in CATALOGUE],
                "sessions": {"memory": True, "max_history_messages": 4, **sessions},
            },
        }
    }


def sent(upstream: Upstream, i: int = -1) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in upstream.seen[i].body["messages"]]


def ask(text: str, **ids: str) -> gen.GenerateRequest:
    return generate_request(messages=[user(text)], **(ids or IDS))


@pytest.fixture(params=["memory", "redis"])
def sessions(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "memory":
        return {}
    url = request.getfixturevalue("redis_url")
    return {"store": "redis", "redis_url": url, "key_prefix": f"s{uuid.uuid4().hex[:10]}"}


async def test_only_the_new_message_is_sent_and_the_upstream_gets_the_history(
    serve: Any, upstream: Upstream, sessions: dict[str, Any]
) -> None:
    upstream.default = Reply.json("openai/chat_completion.json")
    s: Running = await serve(config(upstream, **sessions), KEYS)
    await s.stub.Switch(pb.SwitchRequest(command="use Mr Blue", **IDS))
    first = await s.stub.Generate(
        generate_request(messages=[system("Answer in English."), user("What is 2+2?")], **IDS)
    )
    assert first.summary.history_messages == 0 and first.summary.persona_id == "mr-blue"
    second = await s.stub.Generate(ask("And 3+3?"))
    assert second.summary.history_messages == 2
    assert sent(upstream) == [
        ("system", "You are Mr Blue, calm and precise."),
        ("user", "What is 2+2?"),
        ("assistant", ANSWER),
        ("user", "And 3+3?"),
    ]
    upstream.push(Reply.sse("openai/stream.sse"))  # answers the same text, streamed
    stream = [m async for m in s.stub.StreamGenerate(stream_request(messages=[user("4+4?")], **IDS))]
    assert stream[-1].result.summary.history_messages == 4
    await s.stub.Generate(ask("5+5?"))
    # capped at 4 stored messages: the oldest exchange is gone
    assert [text for _, text in sent(upstream)[1:]] == ["And 3+3?", ANSWER, "4+4?", ANSWER, "5+5?"]


async def test_history_is_isolated_between_tenants_users_and_conversations(
    serve: Any, upstream: Upstream, sessions: dict[str, Any]
) -> None:
    upstream.default = Reply.json("openai/chat_completion.json")
    s: Running = await serve(config(upstream, **sessions), KEYS)
    await s.stub.Generate(ask("my secret is 42"))
    for ids in (
        {"tenant_id": "t2", "user_id": "u1", "conversation_id": "c1"},
        {"tenant_id": "t1", "user_id": "u2", "conversation_id": "c1"},
        {"tenant_id": "t1", "user_id": "u1", "conversation_id": "c2"},
    ):
        resp = await s.stub.Generate(ask("what is my secret?", **ids))
        assert resp.summary.history_messages == 0, ids
        assert sent(upstream) == [("user", "what is my secret?")], ids


async def test_failed_calls_are_not_remembered_and_memory_can_be_turned_off(
    serve: Any, upstream: Upstream, sessions: dict[str, Any]
) -> None:
    s: Running = await serve(config(upstream, **sessions), KEYS)
    upstream.push(Reply.json("openai/error_400.json", status=400))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(ask("rejected"))
    assert (await rich(info.value)).reason == "PROVIDER_REJECTED"
    upstream.push(Reply.sse("openai/stream.sse", drop_after=3))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in s.stub.StreamGenerate(stream_request(messages=[user("cut")], **IDS)):
            pass
    assert (await rich(info.value)).reason == "STREAM_INTERRUPTED"
    upstream.default = Reply.json("openai/chat_completion.json")
    off = generate_request(messages=[user("off the record")], memory=False, **IDS)
    assert (await s.stub.Generate(off)).summary.history_messages == 0
    await s.stub.Generate(ask("kept"))
    assert sent(upstream) == [("user", "kept")]  # nothing of the failed or unrecorded calls
    await s.stub.Generate(ask("next"))
    assert sent(upstream) == [("user", "kept"), ("assistant", ANSWER), ("user", "next")]


async def test_clear_conversation(serve: Any, upstream: Upstream, sessions: dict[str, Any]) -> None:
    upstream.default = Reply.json("openai/chat_completion.json")
    s: Running = await serve(config(upstream, **sessions), KEYS)
    await s.stub.Switch(pb.SwitchRequest(persona_id="agent-79", **IDS))
    await s.stub.Generate(ask("remember me"))
    assert (await s.stub.ClearConversation(pb.ClearConversationRequest(**IDS))).cleared
    assert not (await s.stub.ClearConversation(pb.ClearConversationRequest(**IDS))).cleared
    resp = await s.stub.Generate(ask("fresh"))
    assert (resp.summary.history_messages, resp.summary.persona_id) == (0, "")
    assert sent(upstream) == [("user", "fresh")]


async def test_two_sidecars_share_conversations_through_redis(
    serve: Any, upstream: Upstream, redis_url: str
) -> None:
    upstream.default = Reply.json("openai/chat_completion.json")
    shared = {"store": "redis", "redis_url": redis_url, "key_prefix": f"x{uuid.uuid4().hex[:10]}"}
    a: Running = await serve(config(upstream, **shared), KEYS)
    b: Running = await serve(config(upstream, **shared), KEYS)
    first = await a.stub.Switch(pb.SwitchRequest(persona_id="agent-79", **IDS))
    await a.stub.Generate(ask("on sidecar a"))
    resp = await b.stub.Generate(ask("on sidecar b"))
    assert (resp.summary.persona_id, resp.summary.history_messages) == ("agent-79", 2)
    assert sent(upstream) == [
        ("system", "You are agent 79."),
        ("user", "on sidecar a"),
        ("assistant", ANSWER),
        ("user", "on sidecar b"),
    ]
    switched = await b.stub.Switch(pb.SwitchRequest(persona_id="mr-blue", **IDS))
    assert switched.previous_persona_id == "agent-79" and switched.version > first.version
    history = await a.stub.ListSwitchHistory(pb.ListSwitchHistoryRequest(tenant_id="t1", user_id="u1"))
    assert [r.to_persona_id for r in history.switches] == ["mr-blue", "agent-79"]


async def test_session_store_down(serve: Any, upstream: Upstream) -> None:
    from tests.conftest import free_port

    down = {"store": "redis", "redis_url": f"redis://127.0.0.1:{free_port()}/0"}
    s: Running = await serve(config(upstream, **down), KEYS)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(ask("hi"))
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "SESSION_STORE_UNAVAILABLE")
    assert err.retry is not None
    assert upstream.seen == []  # nothing reached (or was charged by) a provider
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Switch(pb.SwitchRequest(persona_id="mr-blue", **IDS))
    assert (await rich(info.value)).reason == "SESSION_STORE_UNAVAILABLE"
    with pytest.raises(grpc.aio.AioRpcError) as info:  # the caller's own mistake still comes first
        await s.stub.Switch(pb.SwitchRequest(persona_id="ghost", **IDS))
    assert (await rich(info.value)).reason == "PERSONA_NOT_FOUND"
