"""A tool loop that falls back between providers mid-conversation (memory replays every turn):
OpenAI, then Gemini, then Claude on Bedrock, then Anthropic each answered one call. Whichever comes
next, Gemini or Bedrock, thinking or not, is sent a history its API takes (the strict loopback
checks of tests/support/gemini.py and tests/support/bedrock.py)."""

from __future__ import annotations

import json

import pytest

from sidecar.config.schema import DeploymentConfig
from sidecar.core.types import GenerationParams, Message, Reasoning, Role, ThinkingBlock, ToolCall, ToolSpec
from sidecar.providers import anthropic, bedrock, gemini, gemini_wire
from sidecar.providers.base import ProviderRequest
from tests.support.bedrock import check_converse
from tests.support.gemini import request_problems

SIG = "CiQBcsjafGx3b1dXk4rYqOVRaI1Qf0M0pWd1u2l7S6yq0h1kQ0IKfAFyyNp8"
WEATHER = ToolSpec(
    "get_weather", "Weather", json.dumps({"type": "object", "properties": {"city": {"type": "string"}}})
)
GEMINI_ID = gemini_wire.SYNTHETIC_ID_PREFIX + "0123456789abcdef"
GEMINI = DeploymentConfig(provider="gemini", model="gemini-3-flash-preview")
CLAUDE = DeploymentConfig(provider="bedrock", model="anthropic.claude-sonnet-4-20250514-v1:0")
ANTHROPIC = DeploymentConfig(provider="anthropic", model="claude-sonnet-4-20250514")


def call(call_id: str, city: str) -> tuple[ToolCall, ...]:
    return (ToolCall(call_id, "get_weather", json.dumps({"city": city})),)


HISTORY = (
    Message(Role.USER, "Weather in Paris, Tokyo, Rome and Oslo?"),
    Message(Role.ASSISTANT, "", tool_calls=call("call_abc", "Paris")),  # OpenAI
    Message(Role.TOOL, '{"sky": "sunny"}', tool_call_id="call_abc"),
    Message(Role.ASSISTANT, "Tokyo next.", tool_calls=call(GEMINI_ID, "Tokyo"),  # Gemini 3
            thinking=(gemini_wire.signed_block(SIG), gemini_wire.signed_block(SIG, GEMINI_ID))),
    Message(Role.TOOL, "rain", tool_call_id=GEMINI_ID),
    Message(Role.ASSISTANT, "", tool_calls=call("tooluse_1", "Rome"),  # Claude on Bedrock, thinking
            thinking=(ThinkingBlock(text="Rome, then.", signature="EqQBsig"),)),
    Message(Role.TOOL, "hot", tool_call_id="tooluse_1"),
    Message(Role.ASSISTANT, "", tool_calls=call("toolu_01A", "Oslo"),  # Anthropic, redacted thinking
            thinking=(ThinkingBlock(redacted="EmwKAhgBEgy3va"),)),
    Message(Role.TOOL, "cold", tool_call_id="toolu_01A"),
)  # fmt: skip
THINKING = [None, Reasoning(budget_tokens=2048)]


def request(turns: int, reasoning: Reasoning | None) -> ProviderRequest:
    params = GenerationParams(tools=(WEATHER,), max_tokens=4096, reasoning=reasoning)
    return ProviderRequest(HISTORY[:turns], params, stream=False)


@pytest.mark.parametrize("reasoning", THINKING, ids=["plain", "thinking"])
@pytest.mark.parametrize("turns", [3, 5, 7, 9])
def test_gemini_takes_the_history_of_any_provider(turns: int, reasoning: Reasoning | None) -> None:
    assert request_problems(gemini.to_wire(request(turns, reasoning), GEMINI), {SIG}) == []


@pytest.mark.parametrize("reasoning", THINKING, ids=["plain", "thinking"])
@pytest.mark.parametrize("turns", [3, 5, 7, 9])
def test_bedrock_takes_the_history_of_any_provider(turns: int, reasoning: Reasoning | None) -> None:
    check_converse(bedrock.to_wire(request(turns, reasoning), CLAUDE))


@pytest.mark.parametrize(("turns", "thinks"), [(3, False), (5, False), (7, True), (9, True)])
def test_claude_thinks_unless_the_last_tool_turn_came_without_its_thinking(turns: int, thinks: bool) -> None:
    """Claude refuses a thinking call whose last turn of tool calls does not start with its
    thinking (OpenAI's and Gemini's turns have none): that call goes without thinking."""
    body = bedrock.to_wire(request(turns, THINKING[1]), CLAUDE)
    assert ("additionalModelRequestFields" in body) is thinks
    reasoning = [b for m in body["messages"] for b in m["content"] if "reasoningContent" in b]
    assert bool(reasoning) is thinks


@pytest.mark.parametrize(("turns", "thinks"), [(3, False), (5, False), (7, True), (9, True)])
def test_claude_on_anthropic_thinks_unless_the_last_tool_turn_came_without_its_thinking(
    turns: int, thinks: bool
) -> None:
    """The same rule on Anthropic's own API: the call after an OpenAI or Gemini tool turn goes
    without thinking (and may carry its sampling fields again)."""
    body = anthropic.to_wire(request(turns, THINKING[1]), ANTHROPIC)
    assert ("thinking" in body) is thinks
    last = [m for m in body["messages"] if m["role"] == "assistant"][-1]["content"]
    assert (last[0]["type"] in ("thinking", "redacted_thinking")) is thinks
