"""Anthropic extended thinking in a tool loop: the assistant turn that called tools must go back to
Anthropic with its thinking blocks first, unchanged (text and signature; a redacted block's data),
or Anthropic refuses the request. The loopback server below enforces that rule as Anthropic does;
the caller sends back the message the sidecar returned, or lets conversation memory replay it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import user
from tests.support.api import generate_request, stream_request, text_of
from tests.support.tools import run_tools, tool_calls, weather_tool

pytestmark = pytest.mark.integration
KEYS = {"ANT_KEY": "sk-ant-test-0123456789"}
IDS = {"tenant_id": "t1", "user_id": "u1"}
THOUGHT = "The user wants Paris. I should call get_weather."
THINKING = [
    {"type": "thinking", "thinking": THOUGHT, "signature": "EqQBsig1=="},
    {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIw"},
]
AFTER = {"type": "thinking", "thinking": "Sunny: say so.", "signature": "EqQBsig2=="}
TOOL_USE = {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}}
USAGE = {"input_tokens": 40, "output_tokens": 30}


def refusal(message: str) -> web.Response:
    error = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    return web.json_response(error, status=400)


def broken_rule(body: dict[str, Any]) -> str | None:
    """Anthropic's rule: with thinking enabled, the assistant turn holding the tool_use the request
    answers starts with the thinking blocks of that turn, exactly as they were sent."""
    if "thinking" not in body:
        return None
    for i, m in enumerate(body["messages"]):
        content = m["content"]
        if m["role"] != "assistant" or not isinstance(content, list):
            continue
        if not any(b.get("type") == "tool_use" for b in content):
            continue
        if content[: len(THINKING)] != THINKING:
            return (
                f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
                f"`{content[0].get('type')}`. When `thinking` is enabled, a final `assistant` message "
                "must start with a thinking block (preceeding the lastmost set of `tool_use` and "
                "`tool_result` blocks)."
            )
    return None


def sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def delta(index: int, **fields: str) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": fields}


def tool_use_stream() -> bytes:
    start = {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "usage": USAGE}
    signature = THINKING[0]["signature"]
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        delta(0, type="thinking_delta", thinking=THOUGHT[:20]),
        delta(0, type="thinking_delta", thinking=THOUGHT[20:]),
        delta(0, type="signature_delta", signature=signature),
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": THINKING[1]},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {**TOOL_USE, "input": {}}},
        delta(2, type="input_json_delta", partial_json='{"city": "Paris"}'),
        {"type": "content_block_stop", "index": 2},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 30}},
        {"type": "message_stop"},
    ]
    return sse(events)


class StrictAnthropic:
    """Turn one: thinking, a redacted block and a tool_use; later turns: refused unless the rule holds."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        if (broken := broken_rule(body)) is not None:
            return refusal(broken)
        if any(m["role"] == "assistant" for m in body["messages"]):
            text = {"type": "text", "text": "It is sunny in Paris."}
            return web.json_response(self.message([AFTER, text], "end_turn"))
        if not body.get("stream"):
            return web.json_response(self.message([*THINKING, TOOL_USE], "tool_use"))
        return web.Response(body=tool_use_stream(), content_type="text/event-stream")

    @staticmethod
    def message(content: list[dict[str, Any]], stop: str) -> dict[str, Any]:
        return {"id": "msg_2", "type": "message", "role": "assistant", "content": content,
                "stop_reason": stop, "usage": USAGE}  # fmt: skip


@pytest.fixture
async def strict() -> AsyncIterator[StrictAnthropic]:
    server = StrictAnthropic()
    app = web.Application()
    app.router.add_post("/v1/messages", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield server
    await runner.cleanup()


def config(url: str) -> dict[str, Any]:
    deployment = {"provider": "anthropic", "model": "claude", "base_url": url, "api_key": {"env": "ANT_KEY"}}
    return {
        "policy": {
            "default_route": "r",
            "deployments": {"d": {**deployment, "capabilities": {"reasoning": True}}},
            "routes": {"r": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
            "routing": {"probes": {"enabled": False}},
            "personas": {"sessions": {"memory": True, "max_history_messages": 50}},
        }
    }


REASONING = gen.GenerationConfig(max_tokens=2000, reasoning=gen.ReasoningConfig(budget_tokens=1024))


async def first_turn(s: Any, stream: bool, ids: dict[str, str]) -> gen.Message:
    fields = {"messages": [user("Weather in Paris?")], "tools": [weather_tool()], "config": REASONING, **ids}
    if stream:
        events = [e async for e in s.stub.StreamGenerate(stream_request(**fields))]
        return events[-1].result.message  # type: ignore[no-any-return]
    return (await s.stub.Generate(generate_request(**fields))).message  # type: ignore[no-any-return]


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_the_returned_message_goes_back_with_its_thinking_blocks(
    serve: Any, strict: StrictAnthropic, stream: bool
) -> None:
    s = await serve(config(strict.url), KEYS)
    asked = await first_turn(s, stream, IDS)
    assert [c.id for c in tool_calls(asked)] == ["toolu_01A"]
    messages = [user("Weather in Paris?"), asked, *run_tools(asked)]
    reply = await s.stub.Generate(
        generate_request(messages=messages, tools=[weather_tool()], config=REASONING, **IDS)
    )
    assert text_of(reply) == "It is sunny in Paris."
    assert strict.bodies[1]["messages"][1]["content"] == [*THINKING, TOOL_USE]


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_conversation_memory_replays_the_thinking_blocks(
    serve: Any, strict: StrictAnthropic, stream: bool
) -> None:
    s = await serve(config(strict.url), KEYS)
    ids = {**IDS, "conversation_id": "c1"}
    asked = await first_turn(s, stream, ids)
    reply = await s.stub.Generate(
        generate_request(messages=run_tools(asked), tools=[weather_tool()], config=REASONING, **ids)
    )
    assert text_of(reply) == "It is sunny in Paris."
    assert strict.bodies[1]["messages"][1]["content"] == [*THINKING, TOOL_USE]
    # a later turn: the tool-calling turn keeps its thinking; a plain answer's is not kept (the
    # provider wants it back only with tool calls, and drops any other earlier turn's)
    await s.stub.Generate(generate_request(messages=[user("Thanks!")], config=REASONING, **ids))
    replayed = strict.bodies[2]["messages"]
    assert replayed[1]["content"] == [*THINKING, TOOL_USE]
    assert replayed[3] == {"role": "assistant", "content": "It is sunny in Paris."}
