"""Tool calling through the real server: OpenAI and Anthropic wire formats both ways (replayed
transcripts), streamed tool-call deltas, the agent loop, capability routing and bad input."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import quota_pb2
from tests.conftest import echo_policy, user
from tests.integration.helpers import rich
from tests.support.api import generate_request, stream_request, text_of
from tests.support.tools import WEATHER_SCHEMA, assemble, run_tools, struct, tool_calls, weather_tool
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
KEYS = {"OAI_KEY": "sk-test-openai-0123456789", "ANT_KEY": "sk-ant-test-0123456789"}
QUOTA = {
    "limits": [{"name": "calls", "metric": "requests", "scope": "tenant", "window": "day", "limit": 100}]
}


def deployment(upstream: Upstream, provider: str, **extra: Any) -> dict[str, Any]:
    base = f"{upstream.url}/v1" if provider == "openai" else upstream.url
    key = "OAI_KEY" if provider == "openai" else "ANT_KEY"
    return {"provider": provider, "model": "the-model", "base_url": base, "api_key": {"env": key}, **extra}


def policy(upstream: Upstream, provider: str) -> dict[str, Any]:
    return {
        "default_route": "r",
        "deployments": {"d": deployment(upstream, provider)},
        "routes": {"r": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
        "routing": {"probes": {"enabled": False}},
        "tier_assignment": {"default": "enterprise"},
        "quota": QUOTA,
    }


def ask(*messages: gen.Message, **fields: Any) -> dict[str, Any]:
    return {
        "messages": list(messages) or [user("What is the weather in Paris?")],
        "tools": [weather_tool()],
        "tenant_id": "acme",
        "user_id": "u",
        **fields,
    }


# --- OpenAI -------------------------------------------------------------------------------------


async def test_openai_tool_call_both_ways(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.json("openai/tool_calls.json"))
    s = await serve({"policy": policy(upstream, "openai")}, KEYS)
    choice = gen.ToolChoice(name="get_weather")
    reply = await s.stub.Generate(generate_request(**ask(tool_choice=choice, parallel_tool_calls=False)))
    [call] = tool_calls(reply.message)
    assert (call.id, call.name, json.loads(call.arguments)) == (
        "call_Wq8tD3mYbT5cJv0k",
        "get_weather",
        {"city": "Paris"},
    )
    assert reply.summary.finish_reason == gen.FINISH_REASON_TOOL_CALLS
    body = upstream.seen[0].body
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather in a city",
                "parameters": WEATHER_SCHEMA,
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False


async def test_openai_parallel_tool_calls(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.json("openai/parallel_tool_calls.json"))
    s = await serve({"policy": policy(upstream, "openai")}, KEYS)
    reply = await s.stub.Generate(generate_request(**ask()))
    assert [(c.id, json.loads(c.arguments)["city"]) for c in tool_calls(reply.message)] == [
        ("call_A1", "Paris"),
        ("call_B2", "Tokyo"),
    ]


async def test_openai_streamed_tool_call_deltas_assemble(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.sse("openai/tool_calls_stream.sse", chunk_delay=0.01))
    s = await serve({"policy": policy(upstream, "openai")}, KEYS)
    events = [e async for e in s.stub.StreamGenerate(stream_request(**ask()))]
    text, calls = assemble(events)
    assert text == "" and calls == {
        0: {"id": "call_A1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        1: {"id": "call_B2", "name": "get_weather", "arguments": '{"city": "Tokyo"}'},
    }
    result = events[-1].result
    assert [(c.id, c.arguments) for c in tool_calls(result.message)] == [
        ("call_A1", '{"city": "Paris"}'),
        ("call_B2", '{"city": "Tokyo"}'),
    ]
    assert result.summary.finish_reason == gen.FINISH_REASON_TOOL_CALLS
    assert result.summary.usage.completion_tokens == 46


# --- llama.cpp (SmolLM2 under llama-server, recorded by `make e2e-llm`'s tool template) ---------


LLAMA_CALL = ("get_weather", {"city": "Paris"})


async def test_llamacpp_recorded_tool_call(serve: Any, upstream: Upstream) -> None:
    """llama-server's own bytes for a call forced by tool_choice required: one call, its id and
    arguments as the grammar-constrained model wrote them, finish reason tool_calls."""
    upstream.push(Reply.json("llamacpp/tool_call.json"))
    s = await serve({"policy": policy(upstream, "openai")}, KEYS)
    required = gen.ToolChoice(mode=gen.TOOL_CHOICE_MODE_REQUIRED)
    reply = await s.stub.Generate(generate_request(**ask(tool_choice=required, parallel_tool_calls=False)))
    [call] = tool_calls(reply.message)
    assert (call.name, json.loads(call.arguments)) == LLAMA_CALL and call.id
    assert text_of(reply) == ""
    assert reply.summary.finish_reason == gen.FINISH_REASON_TOOL_CALLS
    assert reply.summary.usage.prompt_tokens == 114
    # the second turn: the call and its result go up as OpenAI messages; the answer is text
    upstream.push(Reply.json("llamacpp/tool_result_answer.json"))
    history = [user("What is the weather in Paris?"), reply.message, *run_tools(reply.message)]
    answer = await s.stub.Generate(generate_request(messages=history, tenant_id="acme", user_id="u"))
    assert text_of(answer).startswith("The weather in Paris is quite pleasant") and not tool_calls(
        answer.message
    )
    assert answer.summary.finish_reason == gen.FINISH_REASON_LENGTH
    sent = upstream.seen[1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["id"] == sent[2]["tool_call_id"] == call.id


async def test_llamacpp_recorded_tool_call_stream(serve: Any, upstream: Upstream) -> None:
    """llama-server streams a call as deltas: the id and name first with `{`, then argument pieces;
    the client assembles them into the same call the summary reports."""
    upstream.push(Reply.sse("llamacpp/tool_call_stream.sse", chunk_delay=0.01))
    s = await serve({"policy": policy(upstream, "openai")}, KEYS)
    required = gen.ToolChoice(mode=gen.TOOL_CHOICE_MODE_REQUIRED)
    events = [e async for e in s.stub.StreamGenerate(stream_request(**ask(tool_choice=required)))]
    text, calls = assemble(events)
    arguments = '{\n  "city": "Paris"\n}'
    assert text == "" and calls == {
        0: {"id": "POQEmskdGYDUhdRIhfKTpcFxedmSY9Wo", "name": "get_weather", "arguments": arguments}
    }
    assert sum(1 for e in events if e.HasField("delta")) == 8  # the pieces as llama-server sent them
    result = events[-1].result
    assert [(c.name, json.loads(c.arguments)) for c in tool_calls(result.message)] == [LLAMA_CALL]
    assert result.summary.finish_reason == gen.FINISH_REASON_TOOL_CALLS
    usage = result.summary.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (114, 20)


# --- Anthropic ----------------------------------------------------------------------------------


async def test_anthropic_tool_use_both_ways(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.json("anthropic/tool_use.json"))
    s = await serve({"policy": policy(upstream, "anthropic")}, KEYS)
    req = ask(tool_choice=gen.ToolChoice(mode=gen.TOOL_CHOICE_MODE_REQUIRED), parallel_tool_calls=False)
    reply = await s.stub.Generate(generate_request(**req))
    assert text_of(reply) == "I'll check the weather."
    [call] = tool_calls(reply.message)
    assert (call.id, call.name, json.loads(call.arguments)) == (
        "toolu_01A09q90qw90lq917835lq9",
        "get_weather",
        {"city": "Paris"},
    )
    body = upstream.seen[0].body
    assert body["tools"] == [
        {"name": "get_weather", "description": "Current weather in a city", "input_schema": WEATHER_SCHEMA}
    ]
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


async def test_anthropic_parallel_tool_use(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.json("anthropic/parallel_tool_use.json"))
    s = await serve({"policy": policy(upstream, "anthropic")}, KEYS)
    reply = await s.stub.Generate(generate_request(**ask()))
    assert [c.id for c in tool_calls(reply.message)] == ["toolu_01P1", "toolu_01P2"]
    assert "tool_choice" not in upstream.seen[0].body


async def test_anthropic_streamed_input_json_deltas_assemble(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.sse("anthropic/tool_use_stream.sse", chunk_delay=0.01))
    s = await serve({"policy": policy(upstream, "anthropic")}, KEYS)
    events = [e async for e in s.stub.StreamGenerate(stream_request(**ask()))]
    text, calls = assemble(events)
    assert text == "Checking."
    assert calls == {  # Anthropic's block indexes 1 and 2 become the calls' ordinals 0 and 1
        0: {"id": "toolu_01S1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        1: {"id": "toolu_01S2", "name": "get_weather", "arguments": '{"city": "Tokyo"}'},
    }
    result = events[-1].result
    assert text_of(result) == "Checking." and len(tool_calls(result.message)) == 2
    assert result.summary.finish_reason == gen.FINISH_REASON_TOOL_CALLS


# --- the agent loop -----------------------------------------------------------------------------

FIRST = {"openai": "openai/tool_calls.json", "anthropic": "anthropic/tool_use.json"}
FIRST_STREAM = {"openai": "openai/tool_calls_stream.sse", "anthropic": "anthropic/tool_use_stream.sse"}
SECOND = {"openai": "openai/after_tool.json", "anthropic": "anthropic/after_tool.json"}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_agent_loop(serve: Any, upstream: Upstream, provider: str, stream: bool) -> None:
    """The model asks for a tool, the client runs it and sends the result, the model answers."""
    s = await serve({"policy": policy(upstream, provider)}, KEYS)
    question = user("What is the weather in Paris?")
    if stream:
        upstream.push(Reply.sse(FIRST_STREAM[provider]))
        events = [e async for e in s.stub.StreamGenerate(stream_request(**ask(question)))]
        asked = events[-1].result.message
    else:
        upstream.push(Reply.json(FIRST[provider]))
        asked = (await s.stub.Generate(generate_request(**ask(question)))).message
    results = run_tools(asked)
    assert results
    upstream.push(Reply.json(SECOND[provider]))
    final = await s.stub.Generate(generate_request(**ask(question, asked, *results)))
    assert text_of(final) == "It is sunny in Paris, 21°C." and not tool_calls(final.message)
    sent = upstream.seen[1].body["messages"]
    ids = [c.id for c in tool_calls(asked)]
    if provider == "openai":
        assert [c["id"] for c in sent[1]["tool_calls"]] == ids and sent[1]["role"] == "assistant"
        assert [(m["role"], m["tool_call_id"]) for m in sent[2:]] == [("tool", i) for i in ids]
    else:
        assert [b["id"] for b in sent[1]["content"] if b["type"] == "tool_use"] == ids
        assert sent[2]["role"] == "user" and len(sent) == 3  # every result in one user turn
        assert [b["tool_use_id"] for b in sent[2]["content"]] == ids


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_agent_loop_with_the_echo_provider(serve: Any, stream: bool) -> None:
    s = await serve({"policy": echo_policy()})
    question = user("Paris")
    if stream:
        events = [e async for e in s.stub.StreamGenerate(stream_request(**ask(question)))]
        asked = events[-1].result.message
        _, calls = assemble(events)
        assert calls[0]["arguments"] == tool_calls(asked)[0].arguments
    else:
        asked = (await s.stub.Generate(generate_request(**ask(question)))).message
    [call] = tool_calls(asked)
    assert (call.id, call.name, json.loads(call.arguments)) == (
        "call_0_get_weather",
        "get_weather",
        {"city": "Paris", "days": 1},
    )
    final = await s.stub.Generate(generate_request(**ask(question, asked, *run_tools(asked))))
    assert text_of(final) == 'tool results: {"city": "Paris", "sky": "sunny", "temperature_c": 21}'


# --- capabilities and bad input ------------------------------------------------------------------


async def test_a_route_skips_deployments_without_tools(serve: Any, upstream: Upstream) -> None:
    p = policy(upstream, "openai")
    p["deployments"]["d"] = deployment(upstream, "openai", capabilities={"tools": False})
    p["deployments"]["echo"] = {"provider": "echo", "model": "echo-1"}
    p["routes"]["r"]["deployments"] = ["d", "echo"]
    p["routes"]["only"] = {"deployments": ["d"]}
    s = await serve({"policy": p}, KEYS)
    reply = await s.stub.Generate(generate_request(**ask()))
    assert reply.summary.served_by.deployment == "echo" and upstream.seen == []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(**ask(model="only")))
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_CAPABLE_DEPLOYMENT")
    assert upstream.seen == []


def bad_inputs() -> list[tuple[str, dict[str, Any], str]]:
    image = gen.ContentPart(image=gen.Image(data=b"x" * (5 * 1024 * 1024 + 1), mime_type="image/png"))
    return [
        ("illegal tool name", ask(tools=[gen.Tool(name="get weather!")]), "input.tools[0].name"),
        (
            "a schema that is not a schema",
            ask(tools=[gen.Tool(name="t", parameters=struct({"type": "objekt"}))]),
            "input.tools[0].parameters",
        ),
        (
            "a tool result without its call",
            ask(
                user("hi"),
                gen.Message(role=gen.ROLE_TOOL, tool_call_id="call_x", content=[gen.ContentPart(text="1")]),
            ),
            "input.messages[1].tool_call_id",
        ),
        (
            "an oversized image",
            ask(gen.Message(role=gen.ROLE_USER, content=[gen.ContentPart(text="what?"), image])),
            "input.messages[0].content[1].image.data",
        ),
    ]


@pytest.mark.parametrize(("case", "fields", "field"), bad_inputs(), ids=[b[0] for b in bad_inputs()])
async def test_bad_tool_input_is_invalid_and_charges_nothing(
    serve: Any, upstream: Upstream, case: str, fields: dict[str, Any], field: str
) -> None:
    s = await serve(
        {"policy": policy(upstream, "openai"), "settings": {"max_receive_message_bytes": 16 * 1024 * 1024}},
        KEYS,
    )
    for stream in (False, True):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            if stream:
                async for _ in s.stub.StreamGenerate(stream_request(**fields)):
                    pass
            else:
                await s.stub.Generate(generate_request(**fields))
        err = await rich(info.value)
        assert (err.code, err.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
        assert field in err.fields, err.fields
    assert upstream.seen == []
    got = await s.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme"))
    assert [limit.used for limit in got.limits] == [0]


async def test_an_image_reaches_anthropic_and_counts_for_quota(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.json("anthropic/image_answer.json"))
    s = await serve({"policy": policy(upstream, "anthropic")}, KEYS)
    image = gen.Image(data=b"\x89PNG\r\n\x1a\nfake", mime_type="image/png", width=200, height=200)
    message = gen.Message(
        role=gen.ROLE_USER, content=[gen.ContentPart(text="What is this?"), gen.ContentPart(image=image)]
    )
    reply = await s.stub.Generate(generate_request(messages=[message], tenant_id="acme", user_id="u"))
    assert text_of(reply) == "A red square." and reply.summary.usage.prompt_tokens == 1580
    [block, text] = upstream.seen[0].body["messages"][0]["content"]
    assert block["type"] == "image" and block["source"]["media_type"] == "image/png"
    assert text == {"type": "text", "text": "What is this?"}


async def test_an_image_to_a_route_without_images_is_refused_before_any_call(
    serve: Any, upstream: Upstream
) -> None:
    p = policy(upstream, "openai")
    p["deployments"]["d"] = deployment(upstream, "openai", capabilities={"images": False})
    s = await serve({"policy": p}, KEYS)
    image = gen.ContentPart(image=gen.Image(url="https://example.com/a.png"))
    message = gen.Message(role=gen.ROLE_USER, content=[gen.ContentPart(text="What is this?"), image])
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(messages=[message], tenant_id="acme", user_id="u"))
    assert (await rich(info.value)).reason == "NO_CAPABLE_DEPLOYMENT" and upstream.seen == []


def _wide_tools(count: int, properties: int) -> list[gen.Tool]:
    """Tools whose parameters hold many empty subschemas: each costs the metaschema check about a
    millisecond of CPU, so a request of well under a MiB held the event loop for seconds."""
    schema = {"type": "object", "properties": {f"p{i}": {} for i in range(properties)}}
    return [gen.Tool(name=f"t{k}", parameters=struct(schema)) for k in range(count)]


async def test_a_request_whose_schemas_hold_too_many_subschemas_is_refused_before_any_is_checked(
    serve: Any,
) -> None:
    """40 tools of 600 empty subschemas (a 250 kB request, under the 100,000-element decode cap) were
    each checked against the JSON Schema metaschema on the event loop: about 25 s during which no
    other call of any tenant was served. A request's schemas hold at most 4,096 subschemas together;
    beyond, it is INVALID_ARGUMENT naming input.tools at once."""
    s = await serve({"policy": echo_policy()})
    fields = {"messages": [user("hi")], "tools": _wide_tools(40, 600)}
    started = asyncio.get_running_loop().time()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(**fields))
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
    assert err.fields == ["input.tools"]
    assert asyncio.get_running_loop().time() - started < 2.0


async def test_checking_a_requests_schemas_does_not_hold_other_calls(serve: Any) -> None:
    """Schemas within the bound still cost the metaschema check up to a few seconds of CPU: it runs
    off the event loop, so the loop (every other call, the health checks) goes on meanwhile. The
    server runs in this process: the longest gap between ticks of a task on its loop is the stall."""
    s = await serve({"policy": echo_policy()})
    loop = asyncio.get_running_loop()
    gaps: list[float] = []

    async def ticks() -> None:
        last = loop.time()
        while True:
            await asyncio.sleep(0.01)
            gaps.append(loop.time() - last)
            last = loop.time()

    ticker = asyncio.create_task(ticks())
    started = loop.time()
    try:
        await s.stub.Generate(generate_request(messages=[user("hi")], tools=_wide_tools(6, 650)))
    finally:
        ticker.cancel()
    checked = loop.time() - started
    assert max(gaps) < checked / 4, (max(gaps), checked)


async def test_at_most_two_requests_have_their_schemas_checked_at_once(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks run on the loop's default executor, which also resolves upstream host names and
    refreshes credentials: a burst of schema-heavy requests takes two of its threads, never all."""
    import threading

    from sidecar.api import convert

    running, most = 0, 0
    lock = threading.Lock()
    real = convert.to_call

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(convert, "to_call", counted)
    s = await serve({"policy": echo_policy()})
    ask = generate_request(messages=[user("hi")], tools=_wide_tools(2, 300))
    await asyncio.gather(*(s.stub.Generate(ask) for _ in range(6)))
    assert 1 <= most <= 2
