"""Claude's extended thinking on Bedrock in a tool loop: the turn that called tools goes back with
its reasoningContent blocks first, unchanged (text and signature; redacted content), or Bedrock
refuses it. The strict loopback runtime (tests/support/bedrock.py) enforces that rule; the caller
sends back the message the sidecar returned, or lets conversation memory replay it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import user
from tests.integration.test_bedrock_tools import AWS, CALL_ID, IDS, STREAM, SUNNY, USE, ask, config
from tests.integration.test_bedrock_tools import aws_credentials as aws_credentials  # the fixture
from tests.support.bedrock import Answer, StrictBedrock
from tests.support.tools import run_tools, tool_calls, weather_tool

pytestmark = pytest.mark.integration
THOUGHT = "The user wants Paris. I should call get_weather."
SIGNED = {"reasoningContent": {"reasoningText": {"text": THOUGHT, "signature": "EqQBsig1=="}}}
REDACTED = {"reasoningContent": {"redactedContent": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIw"}}
AFTER = {
    "reasoningContent": {"reasoningText": {"text": "Sunny: say so, briefly.", "signature": "EqQBsig2=="}}
}
REASONING = gen.GenerationConfig(max_tokens=2000, reasoning=gen.ReasoningConfig(budget_tokens=1024))


def thinking_agent(body: dict[str, Any]) -> Answer:
    if any("toolResult" in b for b in body["messages"][-1]["content"]):
        return [AFTER, {"text": SUNNY}], "end_turn"
    return [SIGNED, REDACTED, USE], "tool_use"


@pytest.fixture
async def claude() -> AsyncIterator[StrictBedrock]:
    server = await StrictBedrock(thinking_agent, AWS, "eu-west-1").start()
    yield server
    assert server.refusals == []
    await server.close()


@STREAM
async def test_the_returned_message_goes_back_with_its_reasoning_blocks(
    serve: Any, claude: StrictBedrock, stream: bool
) -> None:
    s = await serve(config(claude.url, capabilities={"reasoning": True}))
    fields = {"tools": [weather_tool()], "config": REASONING, **IDS}
    asked, _ = await ask(s, stream, messages=[user("Weather in Paris?")], **fields)
    assert [c.id for c in tool_calls(asked)] == [CALL_ID]
    thinking = [p.thinking for p in asked.content if p.WhichOneof("kind") == "thinking"]
    assert [(t.thinking, t.signature, t.redacted_data) for t in thinking] == [
        (THOUGHT, "EqQBsig1==", ""),
        ("", "", REDACTED["reasoningContent"]["redactedContent"]),
    ]
    answer, _ = await ask(s, stream, messages=[user("Weather in Paris?"), asked, *run_tools(asked)], **fields)
    assert "".join(p.text for p in answer.content if p.WhichOneof("kind") == "text") == SUNNY
    first = claude.bodies[0]
    assert first["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    assert first["inferenceConfig"] == {"maxTokens": 2000}
    assert claude.bodies[1]["messages"][1]["content"] == [SIGNED, REDACTED, USE]


async def test_conversation_memory_replays_the_reasoning_blocks(serve: Any, claude: StrictBedrock) -> None:
    s = await serve(config(claude.url, memory=True, capabilities={"reasoning": True}))
    fields = {"tools": [weather_tool()], "config": REASONING, **IDS, "conversation_id": "c1"}
    asked, _ = await ask(s, True, messages=[user("Weather in Paris?")], **fields)
    await ask(s, False, messages=run_tools(asked), **fields)
    assert claude.bodies[1]["messages"][1]["content"] == [SIGNED, REDACTED, USE]
