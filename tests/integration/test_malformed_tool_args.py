"""A model's tool call whose arguments are not a JSON object (malformed, or cut by max_tokens) is
kept in conversation memory as the provider sent it, so the application can answer its id with an
error result on the next turn and the tool loop goes on; every wire that sends tool calls sends it
back in a shape its upstream accepts. Through the real server, over the in-memory store and Redis."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.providers.tool_arguments import UNPARSED as UNPARSED_ARGUMENTS
from tests.conftest import user
from tests.support.api import generate_request, stream_request
from tests.support.tools import tool_calls, weather_tool
from tests.support.upstream import Reply, Upstream, fixture, sse_events

pytestmark = pytest.mark.integration

IDS = {"tenant_id": "t1", "user_id": "u1", "conversation_id": "c1"}
KEYS = {"OAI_KEY": "sk-test-openai-0123456789", "ANT_KEY": "sk-ant-test-0123456789"}
MALFORMED = '{"city": Paris, "days": 2'  # what a model wrote: not JSON


@pytest.fixture(params=["memory", "redis"])
def sessions(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "memory":
        return {}
    url = request.getfixturevalue("redis_url")
    return {"store": "redis", "redis_url": url, "key_prefix": f"x{uuid.uuid4().hex[:10]}"}


def config(oai: Upstream, ant: Upstream, sessions: dict[str, Any]) -> dict[str, Any]:
    key = {"OAI_KEY": "oai", "ANT_KEY": "ant"}
    deployments = {
        "oai": {
            "provider": "openai",
            "model": "m",
            "base_url": f"{oai.url}/v1",
            "api_key": {"env": "OAI_KEY"},
        },
        "ant": {"provider": "anthropic", "model": "m", "base_url": ant.url, "api_key": {"env": "ANT_KEY"}},
    }
    assert set(key.values()) == set(deployments)
    return {
        "policy": {
            "default_route": "oai",
            "deployments": deployments,
            "routes": {name: {"deployments": [name], "retry": {"max_attempts": 1}} for name in deployments},
            "routing": {"probes": {"enabled": False}},
            "personas": {"sessions": {"memory": True, "max_history_messages": 50, **sessions}},
        }
    }


def openai_call(arguments: str) -> Reply:
    message = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_bad", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
    ]}  # fmt: skip
    body = {"id": "x", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}  # fmt: skip
    return Reply(body=json.dumps(body).encode())


def error_result(call_id: str) -> gen.Message:
    text = json.dumps({"error": "the arguments were not valid JSON"})
    return gen.Message(role=gen.ROLE_TOOL, tool_call_id=call_id, content=[gen.ContentPart(text=text)])


@pytest.mark.parametrize("then", ["oai", "ant"])
async def test_a_malformed_call_is_remembered_and_its_error_result_accepted(
    serve: Any, upstream: Upstream, upstream2: Upstream, sessions: dict[str, Any], then: str
) -> None:
    s = await serve(config(upstream, upstream2, sessions), KEYS)
    upstream.push(openai_call(MALFORMED))
    asked = await s.stub.Generate(
        generate_request(messages=[user("Weather in Paris?")], tools=[weather_tool()], model="oai", **IDS)
    )
    [call] = tool_calls(asked.message)
    assert (call.id, call.arguments) == ("call_bad", MALFORMED)  # the caller sees what the model wrote
    upstream.push(Reply.json("openai/after_tool.json"))
    upstream2.push(Reply.json("anthropic/after_tool.json"))
    answered = generate_request(
        messages=[error_result("call_bad")], tools=[weather_tool()], model=then, **IDS
    )
    await s.stub.Generate(answered)  # the tool loop goes on
    if then == "oai":
        sent = upstream.seen[-1].body["messages"]
        assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
        [wire] = sent[1]["tool_calls"]
        assert wire["id"] == "call_bad" and sent[2]["tool_call_id"] == "call_bad"
        assert json.loads(wire["function"]["arguments"]) == {UNPARSED_ARGUMENTS: MALFORMED}
    else:
        sent = upstream2.seen[-1].body["messages"]
        assert [m["role"] for m in sent] == ["user", "assistant", "user"]
        [use] = [b for b in sent[1]["content"] if b["type"] == "tool_use"]
        assert (use["id"], use["input"]) == ("call_bad", {UNPARSED_ARGUMENTS: MALFORMED})
        assert sent[2]["content"][0]["tool_use_id"] == "call_bad"


def anthropic_stream_cut_by_max_tokens() -> Reply:
    """The recorded two-call stream, its second call cut in the middle of its arguments."""
    raw = fixture("anthropic/tool_use_stream.sse").decode()
    raw = raw.replace('{\\"city\\": \\"Tokyo\\"}', '{\\"city\\": \\"Tok').replace(
        '"tool_use","stop', '"max_tokens","stop'
    )
    assert '\\"Tok"' in raw and '"max_tokens"' in raw
    return Reply(chunks=sse_events(raw.encode()))


async def test_a_call_cut_by_max_tokens_in_a_stream_is_remembered_too(
    serve: Any, upstream: Upstream, upstream2: Upstream, sessions: dict[str, Any]
) -> None:
    s = await serve(config(upstream, upstream2, sessions), KEYS)
    upstream2.push(anthropic_stream_cut_by_max_tokens(), Reply.json("anthropic/after_tool.json"))
    request = stream_request(
        messages=[user("Weather in Paris and Tokyo?")], tools=[weather_tool()], model="ant", **IDS
    )
    events = [e async for e in s.stub.StreamGenerate(request)]
    assert events[-1].result.summary.finish_reason == gen.FINISH_REASON_LENGTH
    ok = gen.Message(role=gen.ROLE_TOOL, tool_call_id="toolu_01S1", content=[gen.ContentPart(text="sunny")])
    answered = generate_request(
        messages=[ok, error_result("toolu_01S2")], tools=[weather_tool()], model="ant", **IDS
    )
    await s.stub.Generate(answered)
    sent = upstream2.seen[-1].body["messages"]
    uses = [b for b in sent[1]["content"] if b["type"] == "tool_use"]
    assert [(u["id"], u["input"]) for u in uses] == [
        ("toolu_01S1", {"city": "Paris"}),
        ("toolu_01S2", {UNPARSED_ARGUMENTS: '{"city": "Tok'}),
    ]
    assert [r["tool_use_id"] for r in sent[2]["content"]] == ["toolu_01S1", "toolu_01S2"]


@pytest.mark.parametrize("then", ["oai", "ant"])
@pytest.mark.parametrize("arguments", [MALFORMED, '["Paris", 2]', '"Paris"', '{"a": NaN}'])
async def test_an_application_keeping_its_own_history_sends_the_malformed_call_back(
    serve: Any, upstream: Upstream, upstream2: Upstream, then: str, arguments: str
) -> None:
    """What memory stores and sends back, a caller keeping the history itself may send: the edge
    refused its assistant message (INVALID_ARGUMENT, arguments not a JSON object), so the tool loop of
    an application without memory stopped at the model's first malformed call."""
    s = await serve(config(upstream, upstream2, {}), KEYS)
    call = gen.ToolCall(id="call_bad", name="get_weather", arguments=arguments)
    assistant = gen.Message(role=gen.ROLE_ASSISTANT, content=[gen.ContentPart(tool_call=call)])
    upstream.push(Reply.json("openai/after_tool.json"))
    upstream2.push(Reply.json("anthropic/after_tool.json"))
    history = [user("Weather in Paris?"), assistant, error_result("call_bad")]
    await s.stub.Generate(generate_request(messages=history, tools=[weather_tool()], model=then))
    if then == "oai":
        [wire] = upstream.seen[-1].body["messages"][1]["tool_calls"]
        assert json.loads(wire["function"]["arguments"]) == {UNPARSED_ARGUMENTS: arguments}
    else:
        [use] = [b for b in upstream2.seen[-1].body["messages"][1]["content"] if b["type"] == "tool_use"]
        assert use["input"] == {UNPARSED_ARGUMENTS: arguments}
