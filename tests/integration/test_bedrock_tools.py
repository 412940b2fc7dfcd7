"""Tools and images on AWS Bedrock through the real server and gRPC clients, against a strict
loopback Bedrock runtime (tests/support/bedrock.py: SigV4 recomputed, every body checked against
the Converse API reference, JSON answers and the binary event stream), and hostile upstreams."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import user
from tests.integration.helpers import rich
from tests.support.api import generate_request, stream_request
from tests.support.bedrock import Answer, StrictBedrock
from tests.support.eventstream import event, tool_use_stream
from tests.support.tools import WEATHER_SCHEMA, run_tools, struct, tool_calls, weather_tool
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
AWS = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
CALL_ID = "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"
USE = {"toolUse": {"toolUseId": CALL_ID, "name": "get_weather", "input": {"city": "Paris"}}}
SUNNY = "It is sunny in Paris."
IDS = {"tenant_id": "t1", "user_id": "u1"}
EVENT_STREAM = {"content-type": "application/vnd.amazon.eventstream"}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
FORECAST = {"city": "Paris", "sky": "sunny"}


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Dummy credentials through the real chain (environment first), nothing from this machine."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS[1])
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


def weather_agent(body: dict[str, Any]) -> Answer:
    """A model with get_weather: a result in the last user turn is answered, else it calls the tool."""
    if body.get("toolConfig", {}).get("toolChoice") == {"tool": {"name": "json_answer"}}:
        return [{"toolUse": {"toolUseId": "tooluse_J", "name": "json_answer", "input": FORECAST}}], "tool_use"
    if any("toolResult" in b for b in body["messages"][-1]["content"]):
        return [{"text": SUNNY}], "end_turn"
    if "toolConfig" not in body:
        return [{"text": "I cannot look that up."}], "end_turn"
    return [{"text": "Let me check."}, USE], "tool_use"


@pytest.fixture
async def bedrock() -> AsyncIterator[StrictBedrock]:
    server = await StrictBedrock(weather_agent, AWS, "eu-west-1").start()
    yield server
    assert server.refusals == []  # every request the sidecar sent is one AWS takes
    await server.close()


def config(
    url: str, *, memory: bool = False, second: dict[str, Any] | None = None, **deployment: Any
) -> dict[str, Any]:
    b = {"provider": "bedrock", "model": MODEL, "base_url": url, "bedrock": {"region": "eu-west-1"}}
    deployments: dict[str, Any] = {"b": {**b, **deployment}}
    if second is not None:
        deployments["second"] = second
    policy: dict[str, Any] = {
        "default_route": "r",
        "deployments": deployments,
        "routes": {"r": {"deployments": list(deployments), "retry": {"max_attempts": 1}}},
        "routing": {"probes": {"enabled": False}},
    }
    if memory:
        policy["personas"] = {"sessions": {"memory": True, "max_history_messages": 50}}
    return {"policy": policy}


async def ask(s: Any, stream: bool, **fields: Any) -> tuple[gen.Message, gen.ResultSummary]:
    if stream:
        events = [e async for e in s.stub.StreamGenerate(stream_request(**fields))]
        return events[-1].result.message, events[-1].result.summary
    reply = await s.stub.Generate(generate_request(**fields))
    return reply.message, reply.summary


STREAM = pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])


@STREAM
async def test_a_tool_call_both_ways(serve: Any, bedrock: StrictBedrock, stream: bool) -> None:
    s = await serve(config(bedrock.url))
    choice = gen.ToolChoice(name="get_weather")
    message, summary = await ask(
        s, stream, messages=[user("Weather in Paris?")], tools=[weather_tool()], tool_choice=choice, **IDS
    )
    [call] = tool_calls(message)
    assert (call.id, call.name, json.loads(call.arguments)) == (CALL_ID, "get_weather", {"city": "Paris"})
    assert summary.finish_reason == gen.FINISH_REASON_TOOL_CALLS
    assert (summary.usage.prompt_tokens, summary.usage.completion_tokens) == (410, 58)
    assert bedrock.bodies[0]["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "Current weather in a city",
                    "inputSchema": {"json": WEATHER_SCHEMA},
                }
            }
        ],
        "toolChoice": {"tool": {"name": "get_weather"}},
    }


@STREAM
async def test_a_tool_loop_over_two_turns_with_conversation_memory(
    serve: Any, bedrock: StrictBedrock, stream: bool
) -> None:
    s = await serve(config(bedrock.url, memory=True))
    ids = {**IDS, "conversation_id": "c1"}
    asked, _ = await ask(s, stream, messages=[user("Weather in Paris?")], tools=[weather_tool()], **ids)
    answer, summary = await ask(s, stream, messages=run_tools(asked), tools=[weather_tool()], **ids)
    assert "".join(p.text for p in answer.content) == SUNNY
    assert summary.finish_reason == gen.FINISH_REASON_STOP
    result = json.dumps({"city": "Paris", "sky": "sunny", "temperature_c": 21})
    assert bedrock.bodies[1]["messages"] == [
        {"role": "user", "content": [{"text": "Weather in Paris?"}]},
        {"role": "assistant", "content": [{"text": "Let me check."}, USE]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": CALL_ID, "content": [{"text": result}]}}]},
    ]
    # a third turn that forbids tools (Converse has no "none"): no toolConfig, the history as text
    none = gen.ToolChoice(mode=gen.TOOL_CHOICE_MODE_NONE)
    await ask(s, stream, messages=[user("Thanks!")], tools=[weather_tool()], tool_choice=none, **ids)
    third = bedrock.bodies[2]
    assert "toolConfig" not in third
    assert third["messages"][1]["content"][1] == {
        "text": f'[tool call {CALL_ID}: get_weather({{"city": "Paris"}})]'
    }


@STREAM
async def test_images_go_as_bytes(serve: Any, bedrock: StrictBedrock, stream: bool) -> None:
    s = await serve(config(bedrock.url))
    data_url = "data:image/gif;base64," + base64.b64encode(b"GIF89a" + bytes(20)).decode()
    parts = [
        gen.ContentPart(image=gen.Image(data=PNG, mime_type="image/png")),
        gen.ContentPart(image=gen.Image(url=data_url)),
        gen.ContentPart(text="What are these?"),
    ]
    await ask(s, stream, messages=[gen.Message(role=gen.ROLE_USER, content=parts)], **IDS)
    assert bedrock.bodies[0]["messages"][0]["content"] == [
        {"image": {"format": "png", "source": {"bytes": base64.b64encode(PNG).decode()}}},
        {"image": {"format": "gif", "source": {"bytes": data_url.split(",")[1]}}},
        {"text": "What are these?"},
    ]


def url_image() -> gen.Message:
    parts = [gen.ContentPart(image=gen.Image(url="https://example.com/cat.png")), gen.ContentPart(text="?")]
    return gen.Message(role=gen.ROLE_USER, content=parts)


async def test_routing_keeps_what_converse_cannot_take_away_from_bedrock(
    serve: Any, bedrock: StrictBedrock
) -> None:
    """An https:// image (Converse takes bytes only) and a JSON schema (no response format on
    Converse) go to a deployment that takes them, or are refused before any call."""
    alone = await serve(config(bedrock.url))
    schema = gen.ResponseFormat(json_object=gen.JsonObjectFormat())
    for fields in ({"messages": [url_image()]}, {"messages": [user("Hi")], "response_format": schema}):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await alone.stub.Generate(generate_request(**fields, **IDS))
        err = await rich(info.value)
        assert (err.code, err.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_CAPABLE_DEPLOYMENT")
    echo = {"provider": "echo", "model": "echo"}
    mixed = await serve(config(bedrock.url, second=echo))
    reply = await mixed.stub.Generate(generate_request(messages=[url_image()], **IDS))
    assert reply.summary.served_by.deployment == "second"
    assert bedrock.bodies == []


@STREAM
async def test_a_json_schema_answer_through_a_forced_tool(
    serve: Any, bedrock: StrictBedrock, stream: bool
) -> None:
    """A deployment that claims json_schema (a model that takes a forced tool choice) answers
    through the json_answer tool; its input is the answer, checked against the schema."""
    s = await serve(config(bedrock.url, capabilities={"json_schema": True}))
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "sky": {"type": "string"}},
              "required": ["city", "sky"], "additionalProperties": False}  # fmt: skip
    fmt = gen.ResponseFormat(
        json_schema=gen.JsonSchemaFormat(name="forecast", schema=struct(schema), strict=True)
    )
    message, summary = await ask(s, stream, messages=[user("Weather in Paris?")], response_format=fmt, **IDS)
    assert json.loads("".join(p.text for p in message.content)) == FORECAST
    assert summary.finish_reason == gen.FINISH_REASON_STOP and not tool_calls(message)
    [tool] = bedrock.bodies[0]["toolConfig"]["tools"]
    assert tool["toolSpec"]["name"] == "json_answer" and tool["toolSpec"]["inputSchema"] == {"json": schema}


async def test_tool_calls_count_as_output_when_the_stream_reports_no_usage(
    serve: Any, upstream: Upstream
) -> None:
    frames = tool_use_stream("", [(CALL_ID, "get_weather", ['{"city": ', '"Paris"}'])], usage={})
    upstream.push(Reply(chunks=frames, headers=EVENT_STREAM))
    s = await serve(config(upstream.url))
    message, summary = await ask(s, True, messages=[user("Weather?")], tools=[weather_tool()], **IDS)
    assert [c.arguments for c in tool_calls(message)] == ['{"city": "Paris"}']
    assert summary.usage.completion_tokens > 0  # counted from the call: there is no text


def converse(*blocks: Any, stop: str = "tool_use") -> Reply:
    body = {"output": {"message": {"role": "assistant", "content": list(blocks)}}, "stopReason": stop,
            "usage": {"inputTokens": 5, "outputTokens": 5, "totalTokens": 10}}  # fmt: skip
    return Reply(body=json.dumps(body).encode(), headers={"content-type": "application/json"})


def frames(*extra: bytes) -> Reply:
    start = event("messageStart", {"role": "assistant"})
    stop = event("messageStop", {"stopReason": "tool_use"})
    return Reply(chunks=[start, *extra, stop], headers=EVENT_STREAM)


def begin(index: int, **use: Any) -> bytes:
    return event("contentBlockStart", {"contentBlockIndex": index, "start": {"toolUse": use}})


def piece(index: int, value: Any) -> bytes:
    return event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": value}}})


WEATHER_USE = USE["toolUse"]
STARTED = begin(0, toolUseId="t", name="f")
HUGE = "y" * 400_000  # past the 256 KiB a call may carry
HOSTILE = {
    "unary-no-id": (False, lambda: converse({"toolUse": {"name": "get_weather", "input": {}}})),
    "unary-input-not-json": (False, lambda: converse({"toolUse": {**WEATHER_USE, "input": "{city"}})),
    "unary-huge-input": (False, lambda: converse({"toolUse": {**WEATHER_USE, "input": {"x": HUGE}}})),
    "stream-no-id": (True, lambda: frames(begin(0, name="get_weather"))),
    "stream-input-not-json": (True, lambda: frames(STARTED, piece(0, "{city: Paris"))),
    "stream-delta-never-started": (True, lambda: frames(piece(4, '{"city": "Paris"}'))),
    "stream-huge-input": (True, lambda: frames(STARTED, *[piece(0, "x" * 100_000)] * 3)),
}  # fmt: skip


@pytest.mark.parametrize("case", list(HOSTILE))
async def test_a_hostile_upstream_is_a_bad_response_never_internal(
    serve: Any, upstream: Upstream, case: str
) -> None:
    stream, reply = HOSTILE[case]
    upstream.push(reply())
    s = await serve(config(upstream.url))
    fields = {"messages": [user("Weather?")], "tools": [weather_tool()], **IDS}
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await ask(s, stream, **fields)
    err = await rich(info.value)
    assert err.code == grpc.StatusCode.UNAVAILABLE, err
    assert err.reason in ("PROVIDERS_UNAVAILABLE", "STREAM_INTERRUPTED")
    # input past the sidecar's bounds is what the model wrote: not counted against the deployment
    cause = "MODEL_OUTPUT_UNUSABLE" if "huge" in case else "PROVIDER_BAD_RESPONSE"
    assert cause in err.message, err.message


async def test_an_image_over_converses_limit_is_refused_before_anything_is_sent(
    serve: Any, bedrock: StrictBedrock
) -> None:
    """The edge takes 5 MiB an image; Converse takes 3.75 MB: on a route of Bedrock alone, routing
    refuses it (no deployment can take it), naming the image, unsent. (With a deployment that can
    take it, it goes there: tests/integration/test_image_fit.py.)"""
    s = await serve(config(bedrock.url))
    big = gen.ContentPart(image=gen.Image(data=PNG + bytes(4_000_000), mime_type="image/png"))
    message = gen.Message(role=gen.ROLE_USER, content=[gen.ContentPart(text="?"), big])
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(messages=[message], **IDS))
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_CAPABLE_DEPLOYMENT")
    assert err.bad_request is not None
    [violation] = err.bad_request.field_violations
    assert violation.field == "input.messages"
    assert (
        violation.description
        == "image 1 of the prompt: b cannot take it (4000072 bytes; it takes at most 3932160)"
    )
    assert bedrock.bodies == []


async def test_no_capable_deployment_says_what_each_deployment_lacks(
    serve: Any, bedrock: StrictBedrock
) -> None:
    """An https:// image on a route of Bedrock (images, but bytes only) and a deployment without
    images: the refusal says what each one lacks, not every need of the call for both."""
    echo = {"provider": "echo", "model": "echo", "capabilities": {"images": False}}
    s = await serve(config(bedrock.url, second=echo))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(messages=[url_image()], **IDS))
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_CAPABLE_DEPLOYMENT")
    assert "b lacks image_urls; second lacks images" in err.message, err.message
    assert err.info.metadata["missing"] == "b lacks image_urls; second lacks images"
    assert err.info.metadata["needs"] == "image_urls,images"
    assert bedrock.bodies == []


async def test_a_result_after_another_assistant_message_is_refused_at_the_edge(
    serve: Any, bedrock: StrictBedrock
) -> None:
    """A result for a call of an earlier assistant message, after another one (an application that
    appends a late result to its history): Converse refuses it ("toolResult for unknown toolUseIds"),
    as Anthropic and OpenAI do. It went to Bedrock and came back PROVIDER_REJECTED; now it is
    INVALID_ARGUMENT naming the result, and nothing is sent (the fixture checks no refusal)."""
    s = await serve(config(bedrock.url))

    def calls(call_id: str) -> gen.Message:
        use = gen.ToolCall(id=call_id, name="get_weather", arguments='{"city": "Paris"}')
        return gen.Message(role=gen.ROLE_ASSISTANT, content=[gen.ContentPart(tool_call=use)])

    def result(call_id: str) -> gen.Message:
        return gen.Message(role=gen.ROLE_TOOL, tool_call_id=call_id, content=[gen.ContentPart(text="sunny")])

    late = [user("Paris?"), calls("tooluse_1"), result("tooluse_1"), calls("tooluse_2")]
    late += [result("tooluse_2"), result("tooluse_1"), user("and now?")]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(messages=late, tools=[weather_tool()], **IDS))
    err = await rich(info.value)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.fields == ["input.messages[5].tool_call_id"]
    assert bedrock.bodies == []
