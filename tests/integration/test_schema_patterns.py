"""A response_format whose pattern backtracks exponentially on the answer, through the real server:
the call fails SCHEMA_VALIDATION_FAILED within the match budget, and the sidecar keeps answering
meanwhile. Before, `^(a|aa)+$` and an answer of 28 `a`s and a `!` held the event loop for 18 s
(health checks included); this answer's 60 would have held it for days."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import echo_policy, user
from tests.integration.helpers import rich
from tests.support.api import generate_request, rpc_error, stream_request
from tests.support.tools import struct
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration


async def test_a_backtracking_pattern_neither_stalls_the_sidecar_nor_the_call(serve: Any) -> None:
    s = await serve({"policy": echo_policy()})
    schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": "^(a|aa)+$"}}}
    fmt = gen.ResponseFormat(json_schema=gen.JsonSchemaFormat(name="p", schema=struct(schema)))
    # the echo answers {"a": <the user's text>}: the caller chose the string the pattern runs on
    request = generate_request(messages=[user("a" * 60 + "!")], response_format=fmt)
    health = health_pb2_grpc.HealthStub(s.channel)
    started = time.monotonic()
    call = asyncio.ensure_future(rpc_error(lambda: s.stub.Generate(request, timeout=30)))
    checked = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    err = await call
    assert checked.status == health_pb2.HealthCheckResponse.SERVING
    assert time.monotonic() - started < 10
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    info = (await rich(err)).info
    assert info.reason == "SCHEMA_VALIDATION_FAILED"
    assert "took too long" in info.metadata["violation"]


async def test_unevaluated_properties_beside_pattern_properties_are_invalid_naming_the_field(
    serve: Any,
) -> None:
    s = await serve({"policy": echo_policy()})
    schema = {"type": "object", "patternProperties": {"^x-": {}}, "unevaluatedProperties": False}
    fmt = gen.ResponseFormat(json_schema=gen.JsonSchemaFormat(name="p", schema=struct(schema)))
    err = await rpc_error(
        lambda: s.stub.Generate(generate_request(messages=[user("hi")], response_format=fmt))
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad = (await rich(err)).bad_request
    assert bad is not None
    fields = [v.field for v in bad.field_violations]
    assert any(f.startswith("input.response_format") for f in fields), fields


@pytest.mark.parametrize("pattern", ["a{4294967295}", "(" * 3000 + ")" * 3000])
async def test_a_pattern_that_cannot_be_compiled_is_invalid_naming_the_field_never_internal(
    serve: Any, pattern: str, caplog: pytest.LogCaptureFixture
) -> None:
    s = await serve({"policy": echo_policy()})
    schema = struct({"type": "object", "properties": {"a": {"type": "string", "pattern": pattern}}})
    fmt = gen.ResponseFormat(json_schema=gen.JsonSchemaFormat(name="p", schema=schema))
    for request, field in [
        (
            generate_request(messages=[user("hi")], response_format=fmt),
            "input.response_format.json_schema.schema",
        ),
        (
            generate_request(messages=[user("hi")], tools=[gen.Tool(name="t", parameters=schema)]),
            "input.tools[0].parameters",
        ),
    ]:
        err = await rpc_error(lambda r=request: s.stub.Generate(r))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
        bad = (await rich(err)).bad_request
        assert bad is not None and [v.field for v in bad.field_violations] == [field]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_schema_reference_to_nothing_is_invalid_before_anything_runs(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    s = await serve({"policy": echo_policy()})
    schema = {"type": "object", "properties": {"a": {"type": "string", "$ref": "#/$defs/missing"}}}
    fmt = gen.ResponseFormat(json_schema=gen.JsonSchemaFormat(name="p", schema=struct(schema)))
    streamed = stream_request(messages=[user("hi there")], response_format=fmt)
    unary = generate_request(messages=[user("hi there")], response_format=fmt)
    for err in [
        await rpc_error(lambda: s.stub.Generate(unary)),
        await rpc_error(lambda: s.stub.StreamGenerate(streamed)),
    ]:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
        bad = (await rich(err)).bad_request
        assert bad is not None
        assert [v.field for v in bad.field_violations] == ["input.response_format.json_schema.schema"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_schema_that_applies_itself_to_the_same_value_is_invalid_at_the_edge(serve: Any) -> None:
    s = await serve({"policy": echo_policy()})
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string", "allOf": [{"$ref": "#/properties/a"}]}},
    }
    fmt = gen.ResponseFormat(json_schema=gen.JsonSchemaFormat(name="p", schema=struct(schema)))
    unary = generate_request(messages=[user("hi there")], response_format=fmt)
    err = await rpc_error(lambda: s.stub.Generate(unary))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    bad = (await rich(err)).bad_request
    assert bad is not None
    assert [v.field for v in bad.field_violations] == ["input.response_format.json_schema.schema"]


async def test_an_upstream_answer_nested_past_the_validators_stack_is_schema_validation_failed(
    serve: Any, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    deep: dict[str, Any] = {}
    for _ in range(400):
        deep = {"c": deep}
    body = {
        "id": "c1",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": json.dumps(deep)},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }
    upstream.push(Reply(status=200, body=json.dumps(body).encode()))
    deployment = {
        "provider": "openai",
        "model": "m",
        "base_url": f"{upstream.url}/v1",
        "api_key": {"env": "K"},
    }
    policy = {
        "default_route": "r",
        "deployments": {"d": deployment},
        "routes": {"r": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
        "routing": {"probes": {"enabled": False}},
    }
    s = await serve({"policy": policy}, {"K": "sk-test-0123456789abcdef"})
    tree = {"type": "object", "properties": {"c": {"$ref": "#"}}}
    fmt = gen.ResponseFormat(json_schema=gen.JsonSchemaFormat(name="tree", schema=struct(tree)))
    err = await rpc_error(
        lambda: s.stub.Generate(generate_request(messages=[user("a tree")], response_format=fmt))
    )
    assert err.code() == grpc.StatusCode.UNAVAILABLE, err.details()
    info = (await rich(err)).info
    assert info.reason == "SCHEMA_VALIDATION_FAILED"
    assert info.metadata["violation"] == "the answer is JSON nested too deeply to check"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
