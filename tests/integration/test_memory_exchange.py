"""Conversation memory keeps the whole exchange: an agent loop's tool calls and tool results are
replayed on later turns, and images by reference (inline bytes become a line of text). Over the
in-memory store and a real Redis, unary and streamed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import uuid
from typing import Any

import grpc
import pytest
import redis.asyncio

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.core.types import Message, Role, ToolCall
from sidecar.sessions.redis import RedisConversationStore
from sidecar.sessions.store import ConversationKey, ConversationSummary, StorePolicy, SwitchRecord
from tests.conftest import user
from tests.integration.helpers import rich
from tests.support.api import generate_request, stream_request
from tests.support.tools import run_tools, tool_calls, weather_tool
from tests.support.upstream import Reply, Upstream, fixture

pytestmark = pytest.mark.integration

IDS = {"tenant_id": "t1", "user_id": "u1", "conversation_id": "c1"}
KEYS = {"OAI_KEY": "sk-test-0123456789"}


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


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_tool_calls_and_results_are_replayed_from_memory(
    serve: Any, upstream: Upstream, sessions: dict[str, Any], stream: bool
) -> None:
    s = await serve(config(upstream, sessions), KEYS)
    question = user("What is the weather in Paris?")
    if stream:
        upstream.push(Reply.sse("openai/tool_calls_stream.sse"))
        events = [
            e
            async for e in s.stub.StreamGenerate(
                stream_request(messages=[question], tools=[weather_tool()], **IDS)
            )
        ]
        asked = events[-1].result.message
    else:
        upstream.push(Reply.json("openai/tool_calls.json"))
        asked = (
            await s.stub.Generate(generate_request(messages=[question], tools=[weather_tool()], **IDS))
        ).message
    calls = tool_calls(asked)
    assert calls
    # the client sends only the tool results: the call they answer comes from memory
    upstream.push(Reply.json("openai/after_tool.json"))
    await s.stub.Generate(generate_request(messages=run_tools(asked), tools=[weather_tool()], **IDS))
    upstream.push(Reply.json("openai/chat_completion.json"))
    await s.stub.Generate(generate_request(messages=[user("Thanks!")], **IDS))
    sent = upstream.seen[-1].body["messages"]
    ids = [c.id for c in calls]
    assert [m["role"] for m in sent] == ["user", "assistant", *["tool"] * len(ids), "assistant", "user"]
    assert [c["id"] for c in sent[1]["tool_calls"]] == ids
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in sent[1]["tool_calls"]] == [
        (c.name, c.arguments) for c in calls
    ]
    assert [m["tool_call_id"] for m in sent[2 : 2 + len(ids)]] == ids
    assert sent[-2]["content"] == "It is sunny in Paris, 21°C." and sent[-1]["content"] == "Thanks!"


async def test_images_are_remembered_by_reference_and_inline_bytes_are_not_stored(
    serve: Any, upstream: Upstream, sessions: dict[str, Any]
) -> None:
    s = await serve(config(upstream, sessions), KEYS)
    inline = gen.Image(data=b"\x89PNG\r\n\x1a\n" + b"x" * 100, mime_type="image/png", width=20, height=20)
    linked = gen.Image(url="https://example.com/chart.png", width=640, height=480)
    message = gen.Message(
        role=gen.ROLE_USER,
        content=[
            gen.ContentPart(text="Compare these."),
            gen.ContentPart(image=inline),
            gen.ContentPart(image=linked),
        ],
    )
    upstream.default = Reply.json("openai/chat_completion.json")
    await s.stub.Generate(generate_request(messages=[message], **IDS))
    first = upstream.seen[0].body["messages"][0]["content"]
    assert sum(part["type"] == "image_url" for part in first) == 2  # the call itself had both
    await s.stub.Generate(generate_request(messages=[user("And now?")], **IDS))
    replayed = upstream.seen[1].body["messages"][0]["content"]
    texts = [p["text"] for p in replayed if p["type"] == "text"]
    urls = [p["image_url"]["url"] for p in replayed if p["type"] == "image_url"]
    assert urls == ["https://example.com/chart.png"]
    assert "Compare these." in texts[0]
    assert "[image/png image of 108 bytes, not kept in conversation memory]" in "\n".join(texts)


async def test_a_tool_result_that_answers_no_stored_call_is_invalid(
    serve: Any, upstream: Upstream, sessions: dict[str, Any]
) -> None:
    s = await serve(config(upstream, sessions), KEYS)
    orphan = gen.Message(
        role=gen.ROLE_TOOL, tool_call_id="call_nowhere", content=[gen.ContentPart(text="21 C")]
    )
    for ids in (IDS, {**IDS, "memory": False}):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await s.stub.Generate(generate_request(messages=[orphan], **ids))
        err = await rich(info.value)
        assert err.code is grpc.StatusCode.INVALID_ARGUMENT
        assert err.fields == ["input.messages[0].tool_call_id"]
    assert upstream.seen == []


async def test_history_written_in_version_1_still_loads_next_to_version_2(redis_url: str) -> None:
    """A sidecar upgraded in place reads the records its predecessor wrote ({"r", "t", "n"})."""
    policy = StorePolicy(ttl_seconds=60, max_history_messages=10, max_switch_history=5)
    prefix = f"v{uuid.uuid4().hex[:10]}"
    store = RedisConversationStore.from_url(redis_url, policy, prefix=prefix)
    key = ConversationKey("t1", "u1", "c1")
    client = redis.asyncio.from_url(redis_url)
    try:
        await client.rpush(
            f"{prefix}:{{t1|u1}}:h:c1", json.dumps({"r": "user", "t": "old question", "n": "ann"})
        )
        asked = Message(Role.ASSISTANT, "", tool_calls=(ToolCall("c9", "lookup", "{}"),))
        await store.append(key, (asked, Message(Role.TOOL, "found", tool_call_id="c9")))
        history = (await store.snapshot(key, history=True)).history
        assert history == (
            Message(Role.USER, "old question", "ann"),
            asked,
            Message(Role.TOOL, "found", tool_call_id="c9"),
        )
    finally:
        await client.aclose()
        await store.aclose()


async def test_a_history_capped_between_a_call_and_its_results_replays_without_the_orphans(
    redis_url: str,
) -> None:
    """A list an older sidecar capped mid-unit (its LTRIM cut a tool call from its results) is
    replayed from the first message that is not an orphan result, so the conversation goes on."""
    policy = StorePolicy(ttl_seconds=60, max_history_messages=10, max_switch_history=5)
    prefix = f"o{uuid.uuid4().hex[:10]}"
    store = RedisConversationStore.from_url(redis_url, policy, prefix=prefix)
    client = redis.asyncio.from_url(redis_url)
    try:
        await client.rpush(
            f"{prefix}:{{t1|u1}}:h:c1",
            json.dumps({"v": 2, "r": "tool", "t": "21 C", "ti": "c9"}),
            json.dumps({"v": 2, "r": "assistant", "t": "It is 21 C."}),
        )
        history = (await store.snapshot(ConversationKey("t1", "u1", "c1"), history=True)).history
        assert history == (Message(Role.ASSISTANT, "It is 21 C."),)
    finally:
        await client.aclose()
        await store.aclose()


async def test_a_record_this_version_cannot_read_is_left_out_with_what_came_before(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A record of a role a newer sidecar wrote (or a damaged one) failed every call of the
    conversation with INTERNAL. It is left out, with the messages before it (so no tool result
    outlives its call), and logged without its content."""
    policy = StorePolicy(ttl_seconds=60, max_history_messages=10, max_switch_history=5)
    prefix = f"n{uuid.uuid4().hex[:10]}"
    store = RedisConversationStore.from_url(redis_url, policy, prefix=prefix)
    client = redis.asyncio.from_url(redis_url)
    try:
        await client.rpush(
            f"{prefix}:{{t1|u1}}:h:c1",
            json.dumps({"v": 2, "r": "assistant", "t": "", "tc": [{"i": "c9", "n": "lookup", "a": "{}"}]}),
            json.dumps({"v": 3, "r": "developer", "t": "secret-canary from the future"}),
            json.dumps({"v": 2, "r": "tool", "t": "21 C", "ti": "c9"}),
            "{not json",
            json.dumps({"v": 2, "r": "user", "t": "and tomorrow?"}),
            json.dumps({"v": 2, "r": "assistant", "t": "Rain."}),
        )
        with caplog.at_level(logging.WARNING, logger="sidecar.sessions"):
            history = (await store.snapshot(ConversationKey("t1", "u1", "c1"), history=True)).history
        assert history == (Message(Role.USER, "and tomorrow?"), Message(Role.ASSISTANT, "Rain."))
        (line,) = [r for r in caplog.records if r.name == "sidecar.sessions"]
        assert line.records == 4 and "canary" not in line.getMessage()  # type: ignore[attr-defined]
    finally:
        await client.aclose()
        await store.aclose()


async def test_a_switch_keeps_the_whole_conversation_alive_in_redis(redis_url: str) -> None:
    """Every write renews the conversation's TTL, its history included (as in the memory store): a
    Switch renewed only the hash, so the history of a conversation that went on switching
    personas expired under its active persona and summary."""
    policy = StorePolicy(ttl_seconds=600, max_history_messages=10, max_switch_history=5)
    prefix = f"e{uuid.uuid4().hex[:10]}"
    store = RedisConversationStore.from_url(redis_url, policy, prefix=prefix)
    client = redis.asyncio.from_url(redis_url)
    key, history = ConversationKey("t1", "u1", "c1"), f"{prefix}:{{t1|u1}}:h:c1"
    try:
        await store.append(key, (Message(Role.USER, "q"), Message(Role.ASSISTANT, "a")))
        await client.pexpire(history, 5_000)  # as if it had been written 595 s ago
        await store.activate(key, "mr-blue", await store.next_version(key))
        assert await client.pttl(history) > 590_000
        await client.pexpire(history, 5_000)
        await store.save_summary(key, ConversationSummary("s", 2, "digest"))
        assert await client.pttl(history) > 590_000
    finally:
        await client.aclose()
        await store.aclose()


class ReplyDropper:
    """A TCP relay to Redis that, when told, cuts the connection instead of passing on the next
    reply: the command ran, the client saw a dropped connection (and redis-py retried it)."""

    def __init__(self, target: int) -> None:
        self.target, self.drop, self.port = target, False, 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> ReplyDropper:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await self._server.wait_closed()

    async def _accept(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        server_in, server_out = await asyncio.open_connection("127.0.0.1", self.target)
        self._writers += [client_out, server_out]
        for pump in (self._pump(client_in, server_out, up=True), self._pump(server_in, client_out, up=False)):
            task = asyncio.ensure_future(pump)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, up: bool) -> None:
        while data := await source.read(65536):
            if not up and self.drop:
                self.drop = False
                sink.transport.abort()
                return
            sink.write(data)
            await sink.drain()
        sink.close()


async def test_a_reply_lost_after_the_append_ran_does_not_store_the_turn_twice(redis_url: str) -> None:
    """redis-py retries a command whose connection dropped (retries=1 for this store), and an
    append whose reply was lost had run: the exchange was stored twice."""
    dropper = await ReplyDropper(int(redis_url.rsplit(":", 1)[1].split("/")[0])).start()
    policy = StorePolicy(ttl_seconds=60, max_history_messages=10, max_switch_history=5)
    store = RedisConversationStore.from_url(
        f"redis://127.0.0.1:{dropper.port}/0", policy, prefix=f"d{uuid.uuid4().hex[:10]}"
    )
    key = ConversationKey("t1", "u1", "c1")
    try:
        await store.append(key, (Message(Role.USER, "q1"), Message(Role.ASSISTANT, "a1")))
        dropper.drop = True
        await store.append(key, (Message(Role.USER, "q2"), Message(Role.ASSISTANT, "a2")))
        assert not dropper.drop  # the reply was dropped
        history = (await store.snapshot(key, history=True)).history
        assert [m.text for m in history] == ["q1", "a1", "q2", "a2"]
    finally:
        await store.aclose()
        await dropper.close()


async def test_a_reply_lost_after_a_switch_record_ran_does_not_record_it_twice(redis_url: str) -> None:
    dropper = await ReplyDropper(int(redis_url.rsplit(":", 1)[1].split("/")[0])).start()
    policy = StorePolicy(ttl_seconds=60, max_history_messages=10, max_switch_history=5)
    store = RedisConversationStore.from_url(
        f"redis://127.0.0.1:{dropper.port}/0", policy, prefix=f"d{uuid.uuid4().hex[:10]}"
    )
    record = SwitchRecord("c1", "", "mr-blue", "use mr blue", True, "", 1_800_000_000.25, 1)
    try:
        await store.record_switch("t1", "u1", dataclasses.replace(record, to_persona="agent-79"))
        dropper.drop = True
        await store.record_switch("t1", "u1", record)
        assert not dropper.drop  # the reply was dropped
        assert [r.to_persona for r in await store.switches("t1", "u1", "", 10)] == ["mr-blue", "agent-79"]
    finally:
        await store.aclose()
        await dropper.close()


async def test_a_reply_lost_after_a_switch_was_applied_still_reports_it_applied(redis_url: str) -> None:
    """The retry of an applied activation found its own version applied and answered "not applied":
    the Switch failed with SWITCH_SUPERSEDED while its persona was the active one."""
    dropper = await ReplyDropper(int(redis_url.rsplit(":", 1)[1].split("/")[0])).start()
    policy = StorePolicy(ttl_seconds=60, max_history_messages=10, max_switch_history=5)
    store = RedisConversationStore.from_url(
        f"redis://127.0.0.1:{dropper.port}/0", policy, prefix=f"d{uuid.uuid4().hex[:10]}"
    )
    key = ConversationKey("t1", "u1", "c1")
    try:
        assert await store.activate(key, "agent-79", await store.next_version(key)) == (True, "")
        version = await store.next_version(key)
        dropper.drop = True
        assert await store.activate(key, "mr-blue", version) == (True, "agent-79")
        assert not dropper.drop  # the reply was dropped
        assert await store.activate(key, "agent-80", version) == (False, "mr-blue")  # another, same version
    finally:
        await store.aclose()
        await dropper.close()


async def test_an_empty_answer_is_not_replayed_as_an_empty_message(
    serve: Any, upstream: Upstream, sessions: dict[str, Any]
) -> None:
    """An answer with no text and no tool call (a content filter, a refusal cut to nothing) left an
    empty assistant message in the history, replayed on every later turn; the edge refuses such a
    message from a caller, and Anthropic refuses it ("all messages must have non-empty content
    except for the optional final assistant message"), so the conversation failed from then on."""
    raw = config(upstream, sessions)
    raw["policy"]["deployments"]["d"] = {
        "provider": "anthropic",
        "model": "claude",
        "base_url": upstream.url,
        "api_key": {"env": "ANTHROPIC_KEY"},
    }
    s = await serve(raw, {"ANTHROPIC_KEY": "ak-0123456789"})
    empty = json.loads(fixture("anthropic/message.json"))
    empty["content"], empty["stop_reason"] = [], "refusal"
    upstream.push(Reply(body=json.dumps(empty).encode()), Reply.json("anthropic/message.json"))
    first = await s.stub.Generate(generate_request(messages=[user("Tell me something.")], **IDS))
    assert not first.message.content or not first.message.content[0].text
    await s.stub.Generate(generate_request(messages=[user("Hello?")], **IDS))
    sent = upstream.seen[-1].body["messages"]
    assert all(m["content"] for m in sent), sent
    assert [m["content"] for m in sent] == ["Tell me something.", "Hello?"]


async def test_a_tool_call_cut_at_max_tokens_is_not_replayed(serve: Any, upstream: Upstream) -> None:
    """An answer that stopped at max_tokens in the middle of a tool call's arguments stored the cut
    call ('{"city":"Par'): every later turn replayed it, and a route to Anthropic (which takes the
    arguments as a JSON object) failed with INTERNAL from then on. The call is kept (the application
    may answer it with an error result: tests/integration/test_malformed_tool_args.py), but one the
    application did not answer is not replayed."""
    raw = config(upstream, {})
    raw["policy"]["deployments"]["e"] = {
        "provider": "anthropic",
        "model": "claude",
        "base_url": upstream.url,
        "api_key": {"env": "ANTHROPIC_KEY"},
    }
    raw["policy"]["routes"]["a"] = {"deployments": ["e"], "retry": {"max_attempts": 1}}
    s = await serve(raw, {**KEYS, "ANTHROPIC_KEY": "ak-0123456789"})
    cut = json.loads(fixture("openai/tool_calls.json"))
    choice = cut["choices"][0]
    choice["finish_reason"] = "length"
    choice["message"]["tool_calls"][0]["function"]["arguments"] = '{"city":"Par'
    upstream.push(Reply(body=json.dumps(cut).encode()), Reply.json("anthropic/message.json"))
    weather = [user("What is the weather in Paris?")]
    await s.stub.Generate(generate_request(messages=weather, tools=[weather_tool()], **IDS))
    await s.stub.Generate(generate_request(messages=[user("Never mind.")], model="a", **IDS))
    sent = upstream.seen[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "user"]  # the unanswered cut call is not replayed


def _every_call_answered(sent: list[dict[str, Any]]) -> bool:
    """OpenAI's rule: an assistant message with tool_calls is followed by a tool message for each."""
    for i, m in enumerate(sent):
        calls = {c["id"] for c in m.get("tool_calls") or ()}
        after = set()
        for n in sent[i + 1 :]:
            if n["role"] != "tool":
                break
            after.add(n["tool_call_id"])
        if not calls <= after:
            return False
    return True


async def test_tool_calls_the_application_did_not_answer_are_not_replayed(
    serve: Any, upstream: Upstream, sessions: dict[str, Any]
) -> None:
    """A turn that asked for tool calls, then a turn that moves on without their results (the user
    changed the subject, or answered one call of two): the stored calls without results were
    replayed on every later turn, a prompt OpenAI and Anthropic refuse ("an assistant message with
    'tool_calls' must be followed by tool messages responding to each 'tool_call_id'"), so the
    conversation failed until its TTL. Only answered calls are replayed."""
    s = await serve(config(upstream, sessions), KEYS)
    upstream.push(Reply.json("openai/parallel_tool_calls.json"), Reply.json("openai/chat_completion.json"))
    asked = (
        await s.stub.Generate(
            generate_request(messages=[user("Weather in Paris and Rome?")], tools=[weather_tool()], **IDS)
        )
    ).message
    await s.stub.Generate(generate_request(messages=[user("Never mind, tell me a joke.")], **IDS))
    sent = upstream.seen[-1].body["messages"]
    assert _every_call_answered(sent), sent
    assert [m["role"] for m in sent] == ["user", "user"]
    # one result of two parallel calls: the other call is not replayed either
    upstream.push(Reply.json("openai/parallel_tool_calls.json"))
    asked = (
        await s.stub.Generate(generate_request(messages=[user("And Oslo?")], tools=[weather_tool()], **IDS))
    ).message
    upstream.default = Reply.json("openai/after_tool.json")
    await s.stub.Generate(generate_request(messages=run_tools(asked)[:1], tools=[weather_tool()], **IDS))
    await s.stub.Generate(generate_request(messages=[user("Thanks!")], **IDS))
    sent = upstream.seen[-1].body["messages"]
    assert _every_call_answered(sent), sent
    (kept,) = [m for m in sent if m.get("tool_calls")]
    assert [c["id"] for c in kept["tool_calls"]] == [tool_calls(asked)[0].id]


async def test_a_summary_this_version_cannot_read_is_skipped(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A rolling summary in a shape this version does not know (a newer sidecar's during a rolling
    upgrade, a damaged value) failed every call of the conversation with INTERNAL until its TTL.
    It is skipped, as when there is none (its messages stay uncovered, so in the prompt), and
    logged without its content; the next refresh writes a readable one."""
    policy = StorePolicy(ttl_seconds=60, max_history_messages=10, max_switch_history=5)
    prefix = f"s{uuid.uuid4().hex[:10]}"
    store = RedisConversationStore.from_url(redis_url, policy, prefix=prefix)
    client = redis.asyncio.from_url(redis_url)
    key = ConversationKey("t1", "u1", "c1")
    try:
        for value in (
            '{"v": 3, "text": "secret-canary"}',
            "{not json secret-canary",
            '{"t": 5, "m": "x", "c": 1}',
        ):
            await client.hset(f"{prefix}:{{t1|u1}}:c:c1", "summary", value)  # type: ignore[misc]
            with caplog.at_level(logging.WARNING, logger="sidecar.sessions"):
                assert await store.summary(key) is None
        lines = [r for r in caplog.records if r.name == "sidecar.sessions"]
        assert len(lines) == 3 and all("canary" not in r.getMessage() for r in lines)
        await store.save_summary(key, ConversationSummary("s", 2, "digest"))
        assert await store.summary(key) == ConversationSummary("s", 2, "digest")
    finally:
        await client.aclose()
        await store.aclose()


async def test_a_switch_record_this_version_cannot_read_is_left_out_of_the_history(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """One switch record in a shape this version does not know failed every ListSwitchHistory of
    the user with INTERNAL until its TTL; it is left out, the others are listed, and it is logged
    by count, never quoted."""
    policy = StorePolicy(ttl_seconds=60, max_history_messages=10, max_switch_history=5)
    prefix = f"w{uuid.uuid4().hex[:10]}"
    store = RedisConversationStore.from_url(redis_url, policy, prefix=prefix)
    client = redis.asyncio.from_url(redis_url)
    try:
        await store.record_switch(
            "t1", "u1", SwitchRecord("c1", "", "mr-blue", "use mr blue", True, "", 1.0, 1)
        )
        await client.lpush(
            f"{prefix}:{{t1|u1}}:sw",
            "{not json secret-canary",
            '{"v": 9, "cmd": 1}',
            json.dumps(
                {
                    "c": "c1",
                    "f": "",
                    "to": "x",
                    "cmd": "use x",
                    "ok": True,
                    "e": "",
                    "at": float("nan"),
                    "v": 3,
                }
            ),
        )  # type: ignore[misc]
        await store.record_switch("t1", "u1", SwitchRecord("c1", "mr-blue", "x", "use x", True, "", 2.0, 2))
        with caplog.at_level(logging.WARNING, logger="sidecar.sessions"):
            found = await store.switches("t1", "u1", "", 10)
        assert [r.version for r in found] == [2, 1]
        (line,) = [r for r in caplog.records if r.name == "sidecar.sessions"]
        assert line.records == 3 and "canary" not in line.getMessage()  # type: ignore[attr-defined]
    finally:
        await client.aclose()
        await store.aclose()
