"""A model's tool call kept in memory as the provider sent it goes back on every wire that sends
tool calls in a shape its upstream takes (sidecar/providers/tool_arguments.py)."""

from __future__ import annotations

import json

import orjson
import pytest

from sidecar.config.schema import DeploymentConfig
from sidecar.core.types import GenerationParams, Message, Role, ToolCall, ToolSpec
from sidecar.providers import anthropic, bedrock, gemini, openai, tool_arguments
from sidecar.providers.base import ProviderRequest
from sidecar.providers.tool_arguments import UNPARSED

NOT_AN_OBJECT = [
    '{"city": Paris',  # malformed
    '{"city": "Tok',  # cut by max_tokens
    '["Paris"]',  # JSON, not an object
    '"Paris"',
    '{"t": NaN}',  # Python's json reads it; JSON does not
    '{"t": 1e400}',  # JSON, past a double: read as infinity, which writes back as no JSON
]


@pytest.mark.parametrize("arguments", NOT_AN_OBJECT)
def test_text_that_is_not_a_json_object_goes_back_inside_one(arguments: str) -> None:
    assert tool_arguments.as_object(arguments) == {UNPARSED: arguments}
    assert json.loads(tool_arguments.as_text(arguments)) == {UNPARSED: arguments}


def test_a_json_object_goes_back_as_the_model_wrote_it() -> None:
    written = '{ "city" : "Paris",\n "days": 2 }'
    assert tool_arguments.as_text(written) == written
    assert tool_arguments.as_object(written) == {"city": "Paris", "days": 2}
    assert (tool_arguments.as_text(""), tool_arguments.as_object("")) == ("{}", {})


def request(arguments: str) -> ProviderRequest:
    messages = (
        Message(Role.USER, "Weather?"),
        Message(Role.ASSISTANT, "", tool_calls=(ToolCall("c1", "get_weather", arguments),)),
        Message(Role.TOOL, '{"error": "bad arguments"}', tool_call_id="c1"),
    )
    return ProviderRequest(messages, GenerationParams(), stream=False)


def test_openai_and_anthropic_send_a_malformed_call_back() -> None:
    """OpenAI-compatible servers (vLLM, llama-server) parse `arguments` and refuse malformed text;
    Anthropic's `input` is an object (json.loads of it failed the call with INTERNAL)."""
    sent = openai.to_wire(request('{"city": Paris'), DeploymentConfig(provider="openai", model="m"))
    [call] = sent["messages"][1]["tool_calls"]
    assert json.loads(call["function"]["arguments"]) == {UNPARSED: '{"city": Paris'}
    sent = anthropic.to_wire(request('{"city": Paris'), DeploymentConfig(provider="anthropic", model="m"))
    [use] = [b for b in sent["messages"][1]["content"] if b["type"] == "tool_use"]
    assert use["input"] == {UNPARSED: '{"city": Paris'}


def test_numbers_past_a_double_go_to_gemini_and_bedrock_as_written() -> None:
    """A call's arguments, and a tool result, holding a number past a double: Bedrock's body had
    `Infinity` in it (not JSON: Converse refuses the request), Gemini's `null` instead of the number."""
    arguments, result = '{"distance": 1e400}', '{"mass": -2e999}'
    req = ProviderRequest(
        (
            Message(Role.USER, "How far?"),
            Message(Role.ASSISTANT, "", tool_calls=(ToolCall("c1", "measure", arguments),)),
            Message(Role.TOOL, result, tool_call_id="c1"),
        ),
        GenerationParams(tools=(ToolSpec("measure"),)),
        stream=False,
    )
    body = orjson.loads(
        bedrock._encoded(bedrock.to_wire(req, DeploymentConfig(provider="bedrock", model="m")))
    )
    assert body["messages"][1]["content"][0]["toolUse"]["input"] == {UNPARSED: arguments}
    gemini_body = orjson.loads(
        orjson.dumps(gemini.to_wire(req, DeploymentConfig(provider="gemini", model="m")))
    )
    call, response = (c["parts"][0] for c in gemini_body["contents"][1:])
    assert call["functionCall"]["args"] == {UNPARSED: arguments}
    assert response["functionResponse"]["response"] == {"output": result}
