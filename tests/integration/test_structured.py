"""Structured output through the real server: response_format on the wire, answers validated."""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import echo_policy, user
from tests.integration.helpers import rich
from tests.support.api import generate_request, stream_request, text_of
from tests.support.tools import struct
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
KEYS = {"OAI_KEY": "sk-test-openai-0123456789"}
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temperature_c": {"type": "integer"}},
    "required": ["city", "temperature_c"],
    "additionalProperties": False,
}


def policy(upstream: Upstream) -> dict[str, Any]:
    return {
        "default_route": "r",
        "deployments": {
            "d": {
                "provider": "openai",
                "model": "m",
                "base_url": f"{upstream.url}/v1",
                "api_key": {"env": "OAI_KEY"},
            }
        },
        "routes": {"r": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
        "routing": {"probes": {"enabled": False}},
    }


def schema_format(schema: dict[str, Any] = SCHEMA, strict: bool = True) -> gen.ResponseFormat:
    return gen.ResponseFormat(
        json_schema=gen.JsonSchemaFormat(name="weather", schema=struct(schema), strict=strict)
    )


async def test_a_json_schema_answer_is_sent_and_validated(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.json("openai/json_schema.json"))
    s = await serve({"policy": policy(upstream)}, KEYS)
    reply = await s.stub.Generate(
        generate_request(messages=[user("Paris?")], response_format=schema_format())
    )
    assert json.loads(text_of(reply)) == {"city": "Paris", "temperature_c": 21}
    assert upstream.seen[0].body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "weather", "schema": SCHEMA, "strict": True},
    }


async def test_an_answer_that_does_not_validate_is_a_typed_error(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.json("openai/json_schema_invalid.json"))
    s = await serve({"policy": policy(upstream)}, KEYS)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(messages=[user("Paris?")], response_format=schema_format()))
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "SCHEMA_VALIDATION_FAILED")
    assert "temperature_c" in err.info.metadata["violation"]


async def test_json_object_mode_on_the_wire(serve: Any, upstream: Upstream) -> None:
    upstream.push(Reply.json("openai/json_schema.json"))
    s = await serve({"policy": policy(upstream)}, KEYS)
    fmt = gen.ResponseFormat(json_object=gen.JsonObjectFormat())
    reply = await s.stub.Generate(generate_request(messages=[user("Paris?")], response_format=fmt))
    assert json.loads(text_of(reply))["city"] == "Paris"
    assert upstream.seen[0].body["response_format"] == {"type": "json_object"}


async def test_a_stream_passes_deltas_and_validates_at_the_end(serve: Any) -> None:
    s = await serve({"policy": echo_policy()})
    good = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    events = [
        e
        async for e in s.stub.StreamGenerate(
            stream_request(messages=[user("hi there")], response_format=schema_format(good))
        )
    ]
    assert json.loads(text_of(events[-1].result)) == {"answer": "hi there"}
    streamed = s.stub.StreamGenerate(
        stream_request(messages=[user("hi there")], response_format=schema_format())
    )
    seen: list[gen.StreamGenerateResponse] = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for e in streamed:
            seen.append(e)
    assert seen and all(e.HasField("delta") for e in seen)  # deltas went out, then the error
    assert (await rich(info.value)).reason == "SCHEMA_VALIDATION_FAILED"


async def test_a_schema_that_is_not_a_schema_is_invalid_naming_the_field(
    serve: Any, upstream: Upstream
) -> None:
    s = await serve({"policy": policy(upstream)}, KEYS)
    bad = schema_format({"type": "object", "properties": {"city": {"type": 12}}})
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(messages=[user("Paris?")], response_format=bad))
    err = await rich(info.value)
    assert (err.code, err.fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["input.response_format.json_schema.schema"],
    )
    assert upstream.seen == []


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_llama_cpp_recorded_answers_validate(serve: Any, upstream: Upstream, stream: bool) -> None:
    """The bytes llama-server sent for SmolLM2 with this schema (tests/fixtures/providers/llamacpp),
    replayed: its JSON (newlines, indentation and all) validates, and its counts come through."""
    if stream:
        upstream.push(Reply.sse("llamacpp/json_schema_stream.sse"))
    else:
        upstream.push(Reply.json("llamacpp/json_schema.json"))
    s = await serve({"policy": policy(upstream)}, KEYS)
    fields: dict[str, Any] = {
        "messages": [user("Give the weather in Paris as JSON.")],
        "response_format": schema_format(),
    }
    if stream:
        events = [e async for e in s.stub.StreamGenerate(stream_request(**fields))]
        assert any(e.HasField("delta") for e in events)
        result = events[-1].result
    else:
        result = await s.stub.Generate(generate_request(**fields))
    assert json.loads(text_of(result)) == {"city": "Paris", "temperature_c": 25}
    usage = result.summary.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (38, 25)
    assert result.summary.finish_reason == gen.FINISH_REASON_STOP
    assert upstream.seen[0].body["response_format"]["json_schema"]["schema"] == SCHEMA


async def test_llama_cpp_recorded_plain_answers(serve: Any, upstream: Upstream) -> None:
    """llama-server's own unary and SSE bytes for a plain question, through the OpenAI adapter."""
    upstream.push(Reply.json("llamacpp/chat_completion.json"), Reply.sse("llamacpp/stream.sse"))
    s = await serve({"policy": policy(upstream)}, KEYS)
    question = [user("Name three colours.")]
    unary = await s.stub.Generate(generate_request(messages=question))
    events = [e async for e in s.stub.StreamGenerate(stream_request(messages=question))]
    streamed = "".join(e.delta.text for e in events if e.HasField("delta"))
    assert text_of(unary) == streamed == "There are no three colours in the world."
    for summary in (unary.summary, events[-1].result.summary):
        assert summary.finish_reason == gen.FINISH_REASON_STOP
        assert (summary.usage.prompt_tokens, summary.usage.completion_tokens) == (24, 10)
    assert events[-1].result.summary.usage.cached_tokens == 23


async def test_json_object_mode_is_refused_before_any_call_where_no_deployment_can_keep_to_it(
    serve: Any, upstream: Upstream
) -> None:
    """A json_object request to a route whose deployments have no structured output (Anthropic by
    default: its wire has no response format) went out without any format, the model answered in
    prose, and the call failed SCHEMA_VALIDATION_FAILED ("retrying may succeed") after the provider
    was paid, every time. It is FAILED_PRECONDITION / NO_CAPABLE_DEPLOYMENT before any call, as a
    json_schema request is; a route with a deployment that can (OpenAI) sends it there."""
    raw = policy(upstream)
    raw["deployments"]["claude"] = {
        "provider": "anthropic",
        "model": "claude",
        "base_url": upstream.url,
        "api_key": {"env": "ANT_KEY"},
    }
    raw["routes"]["a"] = {"deployments": ["claude"], "retry": {"max_attempts": 1}}
    raw["routes"]["both"] = {"deployments": ["claude", "d"], "retry": {"max_attempts": 1}}
    s = await serve({"policy": raw}, {**KEYS, "ANT_KEY": "sk-ant-test-0123456789"})
    upstream.default = Reply.json("anthropic/message.json")
    fmt = gen.ResponseFormat(json_object=gen.JsonObjectFormat())
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(messages=[user("Paris?")], response_format=fmt, model="a"))
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_CAPABLE_DEPLOYMENT")
    assert upstream.seen == []
    upstream.push(Reply.json("openai/json_schema.json"))
    reply = await s.stub.Generate(
        generate_request(messages=[user("Paris?")], response_format=fmt, model="both")
    )
    assert json.loads(text_of(reply))["city"] == "Paris"
    assert reply.summary.served_by.deployment == "d"
