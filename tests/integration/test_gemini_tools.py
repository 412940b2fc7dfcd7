"""Tools, structured output and images on a Gemini route, through the real server and gRPC clients,
against a loopback Gemini that checks every request as Gemini does (tests/support/gemini.py)."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from aiohttp import web

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import user
from tests.integration.helpers import rich
from tests.support.api import generate_request, rpc_error, stream_request, text_of
from tests.support.gemini import GeminiFake, Turn
from tests.support.tools import WEATHER_SCHEMA, assemble, run_tools, struct, tool_calls, weather_tool

pytestmark = pytest.mark.integration
ENV = {"GEMINI_KEY": "AIzaSyTest-gemini-0123456789"}
IDS = {"tenant_id": "t1", "user_id": "u1"}
SIG = "CiQBcsjafGx3b1dXk4rYqOVRaI1Qf0M0pWd1u2l7S6yq0h1kQ0IKfAFyyNp8"
PARIS = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": SIG}
TOKYO = {"functionCall": {"name": "get_weather", "args": {"city": "Tokyo", "days": 2}}}
CALLS = Turn([{"text": "Let me check."}, PARIS, TOKYO])
SUNNY = Turn([{"text": "Sunny in Paris, rain in Tokyo."}])
QUESTION = "Weather in Paris and Tokyo?"


@pytest.fixture
async def fake() -> AsyncIterator[GeminiFake]:
    server = GeminiFake()
    app = web.Application()
    app.router.add_post("/v1beta/models/{action}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1beta"
    yield server
    await runner.cleanup()


def config(url: str, *, memory: bool = False, **deployment: Any) -> dict[str, Any]:
    d = {
        "provider": "gemini",
        "model": "gemini-3-flash-preview",
        "base_url": url,
        "api_key": {"env": "GEMINI_KEY"},
    }
    policy: dict[str, Any] = {
        "default_route": "r",
        "deployments": {"d": {**d, **deployment}},
        "routes": {"r": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
        "routing": {"probes": {"enabled": False}},
    }
    if memory:
        policy["personas"] = {"sessions": {"memory": True, "max_history_messages": 50}}
    return {"policy": policy}


def ask(*messages: gen.Message, **fields: Any) -> dict[str, Any]:
    return {"messages": list(messages) or [user(QUESTION)], "tools": [weather_tool()], **IDS, **fields}


async def first_turn(s: Any, stream: bool, **fields: Any) -> gen.Message:
    if stream:
        events = [e async for e in s.stub.StreamGenerate(stream_request(**ask(**fields)))]
        text, calls = assemble(events)
        result = events[-1].result
        assert text == "Let me check." and [c["name"] for c in calls.values()] == ["get_weather"] * 2
        assert [c["id"] for c in calls.values()] == [c.id for c in tool_calls(result.message)]
    else:
        result = await s.stub.Generate(generate_request(**ask(**fields)))
    assert result.summary.finish_reason == gen.FINISH_REASON_TOOL_CALLS
    assert result.summary.usage.completion_tokens == 12
    return result.message  # type: ignore[no-any-return]


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_a_tool_call_both_ways(serve: Any, fake: GeminiFake, stream: bool) -> None:
    """The declarations and the forced choice go up as Gemini documents them; the calls come back
    as the domain's tool calls, each with an id, the signature as a thinking block before them."""
    fake.push(CALLS)
    s = await serve(config(fake.url), ENV)
    choice = gen.ToolChoice(name="get_weather")
    message = await first_turn(s, stream, tool_choice=choice, parallel_tool_calls=False)
    body = fake.bodies[0]
    assert fake.paths[0].endswith(":streamGenerateContent?alt=sse" if stream else ":generateContent")
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather in a city",
                    "parametersJsonSchema": WEATHER_SCHEMA,
                }
            ]
        }
    ]
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }
    kinds = [p.WhichOneof("kind") for p in message.content]
    assert kinds == ["thinking", "text", "tool_call", "tool_call"]
    assert json.loads(message.content[0].thinking.redacted_data)["thoughtSignature"] == SIG
    paris, tokyo = tool_calls(message)
    assert (json.loads(paris.arguments), json.loads(tokyo.arguments)) == (
        {"city": "Paris"},
        {"city": "Tokyo", "days": 2},
    )
    assert paris.id and tokyo.id and paris.id != tokyo.id


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_the_returned_message_goes_back_with_its_signature(
    serve: Any, fake: GeminiFake, stream: bool
) -> None:
    fake.push(CALLS, SUNNY)
    s = await serve(config(fake.url), ENV)
    asked = await first_turn(s, stream)
    reply = await s.stub.Generate(generate_request(**ask(user(QUESTION), asked, *run_tools(asked))))
    assert text_of(reply) == "Sunny in Paris, rain in Tokyo.", fake.refusals
    assert reply.summary.finish_reason == gen.FINISH_REASON_STOP
    sent = fake.bodies[1]["contents"]
    assert sent[1] == {"role": "model", "parts": [{"text": "Let me check."}, PARIS, TOKYO]}
    result = {"city": "Paris", "sky": "sunny", "temperature_c": 21}
    assert sent[2]["parts"][0] == {"functionResponse": {"name": "get_weather", "response": result}}


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_a_two_turn_tool_loop_with_conversation_memory(
    serve: Any, fake: GeminiFake, stream: bool
) -> None:
    """The caller sends only its tool results on the second turn: memory replays the question and
    the calls with their signature (Gemini 3 refuses the turn without it); a third turn too."""
    fake.push(CALLS, SUNNY, Turn([{"text": "You are welcome."}]))
    s = await serve(config(fake.url, memory=True), ENV)
    ids = {"conversation_id": "c1"}
    asked = await first_turn(s, stream, **ids)
    reply = await s.stub.Generate(generate_request(**ask(*run_tools(asked), **ids)))
    assert text_of(reply) == "Sunny in Paris, rain in Tokyo.", fake.refusals
    assert [c["role"] for c in fake.bodies[1]["contents"]] == ["user", "model", "user"]
    assert fake.bodies[1]["contents"][1]["parts"] == [{"text": "Let me check."}, PARIS, TOKYO]
    reply = await s.stub.Generate(generate_request(**ask(user("Thanks!"), **ids)))
    assert text_of(reply) == "You are welcome.", fake.refusals
    assert fake.bodies[2]["contents"][1]["parts"] == [{"text": "Let me check."}, PARIS, TOKYO]
    assert fake.refusals == []


async def test_a_signature_gemini_did_not_issue_is_refused_as_gemini_refuses_it(
    serve: Any, fake: GeminiFake
) -> None:
    """The fake's signature check can fail: the caller altered the thinking part it sends back."""
    fake.push(CALLS)
    s = await serve(config(fake.url), ENV)
    asked = await first_turn(s, False)
    altered = gen.Message()
    altered.CopyFrom(asked)
    block = json.loads(altered.content[0].thinking.redacted_data)
    altered.content[0].thinking.redacted_data = json.dumps({**block, "thoughtSignature": "Zm9yZ2Vk"})
    request = generate_request(**ask(user(QUESTION), altered, *run_tools(asked)))
    err = await rpc_error(lambda: s.stub.Generate(request))
    assert (await rich(err)).reason == "PROVIDER_REJECTED"
    assert fake.refusals == ["Corrupted thought signature."]


async def test_calls_another_provider_made_go_to_gemini_with_its_stand_in(
    serve: Any, fake: GeminiFake
) -> None:
    """A tool loop whose first turn another provider served (a route fell back), or whose calls the
    application wrote: Gemini 3 would refuse the turn for want of a signature."""
    fake.push(SUNNY)
    s = await serve(config(fake.url), ENV)
    call = gen.ToolCall(id="call_Wq8tD3mYbT5cJv0k", name="get_weather", arguments='{"city": "Paris"}')
    asked = gen.Message(role=gen.ROLE_ASSISTANT, content=[gen.ContentPart(tool_call=call)])
    reply = await s.stub.Generate(generate_request(**ask(user(QUESTION), asked, *run_tools(asked))))
    assert text_of(reply) == "Sunny in Paris, rain in Tokyo.", fake.refusals
    [part] = fake.bodies[0]["contents"][1]["parts"]
    assert part["thoughtSignature"] == "skip_thought_signature_validator"
    assert part["functionCall"]["id"] == "call_Wq8tD3mYbT5cJv0k"


@pytest.mark.parametrize(
    "part",
    [
        {"functionCall": {"args": {"city": "Paris"}}},
        {"functionCall": {"name": "get_weather", "args": "city=Paris"}},
        {"functionCall": {"name": "get_weather", "args": {"city": "P" * 400_000}}},
    ],
    ids=["no-name", "args-not-object", "huge-args"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_a_hostile_function_call_is_a_bad_answer(
    serve: Any, fake: GeminiFake, part: dict[str, Any], stream: bool
) -> None:
    fake.push(Turn([part]))
    s = await serve(config(fake.url), ENV)
    request = (
        s.stub.StreamGenerate(stream_request(**ask()))
        if stream
        else s.stub.Generate(generate_request(**ask()))
    )
    err = await rpc_error(lambda: request)
    assert err.code() is grpc.StatusCode.UNAVAILABLE  # never INTERNAL: the route may fall back
    failure = await rich(err)
    # arguments past the sidecar's bounds are what the model wrote: not counted against the deployment
    cause = "MODEL_OUTPUT_UNUSABLE" if "P" * 400_000 in str(part) else "PROVIDER_BAD_RESPONSE"
    assert failure.reason == "PROVIDERS_UNAVAILABLE" and f"(d: {cause})" in failure.message


async def test_a_capability_override_no_longer_drops_tools(serve: Any, fake: GeminiFake) -> None:
    fake.push(CALLS)
    s = await serve(config(fake.url, capabilities={"tools": True}), ENV)
    await first_turn(s, False)
    assert fake.bodies[0]["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"


SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("answer", "ok"), [('{"city": "Paris"}', True), ('{"town": "Paris"}', False)], ids=["valid", "invalid"]
)
async def test_structured_output_is_asked_for_and_still_checked(
    serve: Any, fake: GeminiFake, answer: str, ok: bool
) -> None:
    fake.push(Turn([{"text": answer}]))
    s = await serve(config(fake.url), ENV)
    fmt = gen.ResponseFormat(
        json_schema=gen.JsonSchemaFormat(name="place", schema=struct(SCHEMA), strict=True)
    )
    request = generate_request(messages=[user("Where?")], response_format=fmt, **IDS)
    if ok:
        assert text_of(await s.stub.Generate(request)) == answer
    else:
        err = await rpc_error(lambda: s.stub.Generate(request))
        assert (await rich(err)).reason == "SCHEMA_VALIDATION_FAILED"
    config_sent = fake.bodies[0]["generationConfig"]
    assert config_sent == {"responseMimeType": "application/json", "responseJsonSchema": SCHEMA}


async def test_tools_with_a_json_answer_go_past_gemini_2_5(serve: Any, fake: GeminiFake) -> None:
    """Gemini 2.5 refuses function declarations with a JSON response type: a call asking for both
    goes to a deployment that takes them (Gemini 3 here), or is refused before anything is sent,
    saying what the 2.5 deployment lacks. JSON alone, or tools alone, still go to Gemini 2.5."""
    old = {"provider": "gemini", "model": "gemini-2.5-flash", "base_url": fake.url}
    new = {**old, "model": "gemini-3-flash-preview"}
    policy = config(fake.url)["policy"]
    policy["deployments"] = {"g25": {**old, "api_key": {"env": "GEMINI_KEY"}}}
    policy["deployments"]["g3"] = {**new, "api_key": {"env": "GEMINI_KEY"}}
    policy["routes"]["r"] = {"deployments": ["g25", "g3"], "strategy": "priority"}
    policy["routes"]["alone"] = {"deployments": ["g25"]}
    s = await serve({"policy": policy}, ENV)
    fmt = gen.ResponseFormat(json_schema=gen.JsonSchemaFormat(name="place", schema=struct(SCHEMA)))
    both = ask(user("Where?"), response_format=fmt)
    fake.push(Turn([{"text": '{"city": "Paris"}'}]), Turn([{"text": '{"city": "Paris"}'}]), CALLS)
    reply = await s.stub.Generate(generate_request(**both))
    assert (reply.summary.served_by.deployment, text_of(reply)) == ("g3", '{"city": "Paris"}')
    assert fake.paths[-1].endswith("/models/gemini-3-flash-preview:generateContent")
    json_alone = await s.stub.Generate(
        generate_request(messages=[user("Where?")], response_format=fmt, **IDS)
    )
    tools_alone = await s.stub.Generate(generate_request(**ask()))
    assert [r.summary.served_by.deployment for r in (json_alone, tools_alone)] == ["g25", "g25"]
    err = await rpc_error(lambda: s.stub.Generate(generate_request(**both, model="alone")))
    detail = await rich(err)
    assert (detail.code, detail.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_CAPABLE_DEPLOYMENT")
    assert detail.info.metadata["missing"] == "g25 lacks json_with_tools"
    assert len(fake.bodies) == 3 and fake.refusals == []


async def test_images_go_inline_or_by_url(serve: Any, fake: GeminiFake) -> None:
    fake.push(Turn([{"text": "A cat and a dog."}]))
    s = await serve(config(fake.url), ENV)
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
    content = [
        gen.ContentPart(image=gen.Image(data=png, mime_type="image/png")),
        gen.ContentPart(image=gen.Image(url="https://images.example.com/dog.webp")),
        gen.ContentPart(text="What are these?"),
    ]
    reply = await s.stub.Generate(
        generate_request(messages=[gen.Message(role=gen.ROLE_USER, content=content)], **IDS)
    )
    assert text_of(reply) == "A cat and a dog.", fake.refusals
    inline, by_url, text = fake.bodies[0]["contents"][0]["parts"]
    assert inline["inlineData"]["mimeType"] == "image/png"
    assert base64.b64decode(inline["inlineData"]["data"]) == png
    assert by_url == {
        "fileData": {"fileUri": "https://images.example.com/dog.webp", "mimeType": "image/webp"}
    }
    assert text == {"text": "What are these?"}


async def test_the_context_fit_counts_an_image_as_gemini_3_does(serve: Any, fake: GeminiFake) -> None:
    """A 100 x 100 image is 1120 prompt tokens on Gemini 3 (media_resolution high); the estimate
    counted 255, so a prompt that overflows a 1,200-token window with its 100-token answer went to
    that window. It goes to the larger one."""
    fake.push(Turn([{"text": "A dot."}]))
    policy = config(fake.url)["policy"]
    d = policy["deployments"].pop("d")
    policy["deployments"] = {
        "small": {**d, "context_window": 1200, "default_max_tokens": 100},
        "large": {**d, "context_window": 100_000, "default_max_tokens": 100},
    }
    policy["routes"]["r"] = {"deployments": ["small", "large"], "strategy": "priority"}
    s = await serve({"policy": policy}, ENV)
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    image = gen.ContentPart(image=gen.Image(data=png, mime_type="image/png", width=100, height=100))
    message = gen.Message(role=gen.ROLE_USER, content=[image, gen.ContentPart(text="What is it?")])
    reply = await s.stub.Generate(generate_request(messages=[message], **IDS))
    assert (reply.summary.served_by.deployment, text_of(reply)) == ("large", "A dot.")


async def test_a_hostile_answer_is_another_attempt_not_the_callers_failure(
    serve: Any, fake: GeminiFake
) -> None:
    fake.push(Turn([{"functionCall": {"name": "get_weather", "args": [1, 2]}}]), CALLS)
    raw = config(fake.url)
    raw["policy"]["routes"]["r"]["retry"] = {"max_attempts": 2}
    s = await serve(raw, ENV)
    reply = await s.stub.Generate(generate_request(**ask()))
    assert [a.outcome for a in reply.summary.attempts] == ["PROVIDER_BAD_RESPONSE", "OK"]
    assert len(tool_calls(reply.message)) == 2


async def test_reasoning_on_a_deployment_that_says_it_reasons(serve: Any, fake: GeminiFake) -> None:
    """`capabilities: {reasoning: true}` on a Gemini deployment: the budget goes up as its
    thinkingConfig (it was dropped), thought summaries come back as thinking deltas."""
    thought = {"text": "The user wants Paris.", "thought": True}
    fake.push(Turn([thought, {"text": "Sunny."}]))
    s = await serve(config(fake.url, capabilities={"reasoning": True}), ENV)
    reasoning = gen.ReasoningConfig(budget_tokens=2048, include_thinking=True)
    request = stream_request(
        messages=[user("Paris?")], config=gen.GenerationConfig(reasoning=reasoning), **IDS
    )
    events = [e async for e in s.stub.StreamGenerate(request)]
    deltas = [(e.delta.WhichOneof("kind"), getattr(e.delta, e.delta.WhichOneof("kind"))) for e in events[:-1]]
    assert deltas == [("thinking", "The user wants Paris."), ("text", "Sunny.")], fake.refusals
    thinking = fake.bodies[0]["generationConfig"]["thinkingConfig"]
    assert thinking == {"thinkingBudget": 2048, "includeThoughts": True}


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_a_thinking_call_leaves_room_for_its_answer(serve: Any, fake: GeminiFake, stream: bool) -> None:
    """Gemini counts thinking within maxOutputTokens: a call of max_tokens 1024 thinking with a
    2048 budget sent maxOutputTokens 1024 and got MAX_TOKENS without an answer. The room is raised
    by the budget, as for Anthropic and Bedrock; a call without max_tokens leaves Gemini's own
    limit (the model's, which holds both)."""
    fake.push(Turn([{"text": "Sunny."}]), Turn([{"text": "Sunny."}]))
    s = await serve(config(fake.url, capabilities={"reasoning": True}), ENV)
    low = gen.ReasoningConfig(effort=gen.REASONING_EFFORT_LOW)
    for asked, sent in (({"max_tokens": 1024}, 1024 + 2048), ({}, None)):
        settings = gen.GenerationConfig(reasoning=low, **asked)
        fields = {"messages": [user("Paris?")], "config": settings, **IDS}
        if stream:
            events = [e async for e in s.stub.StreamGenerate(stream_request(**fields))]
            result = events[-1].result
        else:
            result = await s.stub.Generate(generate_request(**fields))
        assert (text_of(result), result.summary.finish_reason) == ("Sunny.", gen.FINISH_REASON_STOP)
        assert fake.bodies[-1]["generationConfig"].get("maxOutputTokens") == sent
        assert fake.bodies[-1]["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 2048}


async def test_a_hostile_call_is_logged_without_the_models_output(
    serve: Any, fake: GeminiFake, json_logs: io.StringIO
) -> None:
    canary = "CANARYtoolname7f3a"
    fake.push(Turn([{"functionCall": {"name": canary, "args": canary}}]))
    s = await serve(config(fake.url), ENV)
    await rpc_error(lambda: s.stub.Generate(generate_request(**ask())))
    logs = json_logs.getvalue()
    assert "a functionCall's args is not an object" in logs  # the operator learns what was wrong
    assert canary not in logs


async def test_a_hostile_call_after_the_first_chunk_interrupts_the_stream(
    serve: Any, fake: GeminiFake
) -> None:
    fake.push(Turn([{"text": "Let me check."}, {"functionCall": {"args": {"city": "Paris"}}}]))
    s = await serve(config(fake.url), ENV)
    seen: list[gen.StreamGenerateResponse] = []

    async def read() -> None:
        async for event in s.stub.StreamGenerate(stream_request(**ask())):
            seen.append(event)

    err = await rpc_error(read)
    assert seen[0].delta.text == "Let me check."
    assert err.code() is grpc.StatusCode.UNAVAILABLE
    assert (await rich(err)).reason == "STREAM_INTERRUPTED"


async def test_a_second_result_for_one_call_is_refused_at_the_edge(serve: Any, fake: GeminiFake) -> None:
    """Two results for one call (an application retrying its tool and appending both): Gemini
    refuses the turn (as many function responses as calls), and so do the others. It went to Gemini
    and came back PROVIDER_REJECTED; now it is INVALID_ARGUMENT naming the second, nothing sent."""
    fake.push(CALLS, SUNNY)
    s = await serve(config(fake.url), ENV)
    asked = await first_turn(s, False)
    results = run_tools(asked)
    twice = [user(QUESTION), asked, *results, results[0]]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(**ask(*twice)))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (await rich(info.value)).fields == [f"input.messages[{len(twice) - 1}].tool_call_id"]
    assert len(fake.bodies) == 1 and fake.refusals == []


async def test_a_second_result_for_a_remembered_call_is_refused_before_it_is_sent(
    serve: Any, fake: GeminiFake
) -> None:
    """With conversation memory the request's leading results answer the stored calls: the edge
    cannot check them, the resolve step does once the history is known. A second result for one of
    them went to Gemini, refused (PROVIDER_REJECTED); now INVALID_ARGUMENT naming it."""
    fake.push(CALLS, SUNNY)
    s = await serve(config(fake.url, memory=True), ENV)
    ids = {"conversation_id": "c1"}
    asked = await first_turn(s, False, **ids)
    results = run_tools(asked)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(**ask(*results, results[0], **ids)))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (await rich(info.value)).fields == [f"input.messages[{len(results)}].tool_call_id"]
    assert len(fake.bodies) == 1 and fake.refusals == []
    reply = await s.stub.Generate(generate_request(**ask(*results, **ids)))  # memory kept the calls
    assert text_of(reply) == "Sunny in Paris, rain in Tokyo.", fake.refusals
