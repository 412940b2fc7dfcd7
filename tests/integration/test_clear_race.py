"""ClearConversation while a turn of the conversation is in flight: the turn read the history before
the clear, and its answer arrives after it. The conversation the user cleared must stay cleared:
the turn's messages are not stored, and the next turn starts from nothing. Over the in-memory
store, a real Redis, and two sidecars sharing one Redis (the turn on one, the clear on the other)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import redis.asyncio
from aiohttp import web

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import personas_pb2 as pb
from tests.conftest import Running, user
from tests.support.api import generate_request, stream_request
from tests.support.personas import CATALOGUE
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration

IDS = {"tenant_id": "t1", "user_id": "u1", "conversation_id": "c1"}
ANSWER = "Hello! How can I help you today?"  # what openai/chat_completion.json answers
KEYS = {"OAI_KEY": "sk-test-0123456789"}


class GatedUpstream(Upstream):
    """Holds each answer until the test opens `gate` (the request itself is recorded at once)."""

    def __init__(self) -> None:
        super().__init__(Reply.json("openai/chat_completion.json"))
        self.gate = asyncio.Event()
        self.gate.set()
        self.held = asyncio.Event()  # set when a request waits at the gate

    async def _answer(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        if not self.gate.is_set():
            self.held.set()
        await self.gate.wait()
        return await super()._answer(request, reply)


@pytest.fixture
async def gated() -> Any:
    server = await GatedUpstream().start()
    yield server
    await server.close()


@pytest.fixture(params=["memory", "redis"])
def sessions(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "memory":
        return {}
    url = request.getfixturevalue("redis_url")
    return {"store": "redis", "redis_url": url, "key_prefix": f"x{uuid.uuid4().hex[:10]}"}


def config(upstream: Upstream, sessions: dict[str, Any]) -> dict[str, Any]:
    deployment = {
        "provider": "openai",
        "model": "m",
        "base_url": f"{upstream.url}/v1",
        "api_key": {"env": "OAI_KEY"},
    }
    return {
        "policy": {
            "default_route": "r",
            "deployments": {"d": deployment},
            "routes": {"r": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
            "routing": {"probes": {"enabled": False}},
            "personas": {"sessions": {"memory": True, "max_history_messages": 50, **sessions}},
        }
    }


def sent(upstream: Upstream) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in upstream.seen[-1].body["messages"]]


async def turn_cleared_in_flight(
    turn_on: Running, clear_on: Running, upstream: GatedUpstream, *, stream: bool
) -> bool:
    """One turn held at the upstream while the conversation is cleared; the answer still reaches
    the caller. Returns what ClearConversation said."""
    upstream.gate.clear()
    upstream.held.clear()
    if stream:
        upstream.push(Reply.sse("openai/stream.sse"))
        request = stream_request(messages=[user("in flight")], **IDS)
        turn = asyncio.ensure_future(_drain(turn_on.stub.StreamGenerate(request)))
    else:
        turn = asyncio.ensure_future(
            turn_on.stub.Generate(generate_request(messages=[user("in flight")], **IDS))
        )
    async with asyncio.timeout(10):
        await upstream.held.wait()
    cleared = (await clear_on.stub.ClearConversation(pb.ClearConversationRequest(**IDS))).cleared
    upstream.gate.set()
    await turn  # delivered: only the memory of it is gone
    return bool(cleared)


async def _drain(events: Any) -> list[Any]:
    return [e async for e in events]


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_a_turn_in_flight_does_not_bring_a_cleared_conversation_back(
    serve: Any, gated: GatedUpstream, sessions: dict[str, Any], stream: bool
) -> None:
    s = await serve(config(gated, sessions), KEYS)
    await s.stub.Generate(generate_request(messages=[user("remember me")], **IDS))
    assert await turn_cleared_in_flight(s, s, gated, stream=stream)
    await s.stub.Generate(generate_request(messages=[user("fresh")], **IDS))
    assert sent(gated) == [("user", "fresh")]
    await s.stub.Generate(generate_request(messages=[user("next")], **IDS))
    assert sent(gated) == [("user", "fresh"), ("assistant", ANSWER), ("user", "next")]  # memory works on


async def test_the_first_turn_in_flight_is_not_stored_after_a_clear(
    serve: Any, gated: GatedUpstream, sessions: dict[str, Any]
) -> None:
    """Nothing stored yet when the clear arrives (it says so), yet the user asked for an empty
    conversation after the turn started: the turn is not stored either."""
    s = await serve(config(gated, sessions), KEYS)
    assert not await turn_cleared_in_flight(s, s, gated, stream=False)
    await s.stub.Generate(generate_request(messages=[user("fresh")], **IDS))
    assert sent(gated) == [("user", "fresh")]


async def test_two_sidecars_on_one_redis_the_turn_on_one_the_clear_on_the_other(
    serve: Any, gated: GatedUpstream, redis_url: str
) -> None:
    sessions = {"store": "redis", "redis_url": redis_url, "key_prefix": f"x{uuid.uuid4().hex[:10]}"}
    a = await serve(config(gated, sessions), KEYS)
    b = await serve(config(gated, sessions), KEYS)
    await a.stub.Generate(generate_request(messages=[user("remember me")], **IDS))
    assert await turn_cleared_in_flight(a, b, gated, stream=False)
    await b.stub.Generate(generate_request(messages=[user("fresh")], **IDS))
    assert sent(gated) == [("user", "fresh")]
    await a.stub.Generate(generate_request(messages=[user("next")], **IDS))
    assert sent(gated) == [("user", "fresh"), ("assistant", ANSWER), ("user", "next")]


async def test_a_summary_written_after_the_clear_is_not_stored(
    serve: Any, gated: GatedUpstream, upstream: Upstream, redis_url: str
) -> None:
    """The turn in flight folds the history it read (the one the user cleared) into the rolling
    summary after its answer: that summary is not stored either."""
    prefix = f"x{uuid.uuid4().hex[:10]}"
    raw = config(gated, {"store": "redis", "redis_url": redis_url, "key_prefix": prefix})
    raw["policy"]["deployments"]["summarizer"] = {
        **raw["policy"]["deployments"]["d"],
        "base_url": f"{upstream.url}/v1",
    }
    raw["policy"]["routes"]["summarize"] = {"deployments": ["summarizer"]}
    raw["policy"]["context"] = {
        "summary": {"route": "summarize", "keep_recent_messages": 1, "refresh_tokens": 1}
    }
    upstream.default = Reply.json("openai/chat_completion.json")
    s = await serve(raw, KEYS)
    await s.stub.Generate(generate_request(messages=[user("remember me")], **IDS))
    assert await turn_cleared_in_flight(s, s, gated, stream=False)
    assert len(upstream.seen) == 1  # the summary of what the turn read was written, and not stored
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert await client.hget(f"{prefix}:{{t1|u1}}:c:c1", "summary") is None
        assert await client.llen(f"{prefix}:{{t1|u1}}:h:c1") == 0
    finally:
        await client.aclose()


async def test_a_summary_of_a_call_with_its_own_persona_and_no_memory_is_checked_too(
    serve: Any, gated: GatedUpstream, upstream: Upstream, redis_url: str
) -> None:
    """An application keeping its history itself (memory off) and naming its persona read no
    snapshot, so the summary it refreshed after a clear of its conversation was stored unchecked:
    the cleared conversation held a summary of what was cleared."""
    prefix = f"x{uuid.uuid4().hex[:10]}"
    raw = config(gated, {"store": "redis", "redis_url": redis_url, "key_prefix": prefix})
    raw["policy"]["personas"]["personas"] = [p for p in CATALOGUE if p["id"] == "mr-blue"]
    raw["policy"]["tier_assignment"] = {"default": "enterprise"}
    raw["policy"]["deployments"]["summarizer"] = {
        **raw["policy"]["deployments"]["d"],
        "base_url": f"{upstream.url}/v1",
    }
    raw["policy"]["routes"]["summarize"] = {"deployments": ["summarizer"]}
    raw["policy"]["context"] = {
        "summary": {"route": "summarize", "keep_recent_messages": 1, "refresh_tokens": 1}
    }
    upstream.default = Reply.json("openai/chat_completion.json")
    s = await serve(raw, KEYS)
    answered = gen.Message(role=gen.ROLE_ASSISTANT, content=[gen.ContentPart(text=ANSWER)])
    own_history = [user("remember me"), answered, user("in flight")]
    request = generate_request(messages=own_history, persona_id="mr-blue", memory=False, **IDS)
    gated.gate.clear()
    gated.held.clear()
    turn = asyncio.ensure_future(s.stub.Generate(request))
    async with asyncio.timeout(10):
        await gated.held.wait()
    await s.stub.ClearConversation(pb.ClearConversationRequest(**IDS))
    gated.gate.set()
    await turn
    assert len(upstream.seen) == 1  # the summary was written, and not stored
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert await client.hget(f"{prefix}:{{t1|u1}}:c:c1", "summary") is None
    finally:
        await client.aclose()
