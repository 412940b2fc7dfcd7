"""Hostile Gemini and Bedrock answers through the real server and a real gRPC client: valid answers
(tests/unit/providers/test_wire_fuzz.py) with values changed, removed or repeated, served by a
loopback upstream, unary and streamed. Every call ends with a clean status (never INTERNAL or
UNKNOWN), its usage and cost bounded and non-negative; nothing is logged at ERROR; and the sidecar
still answers a good call after them all."""

from __future__ import annotations

import io
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import user
from tests.integration.helpers import rich
from tests.support.api import generate_request, stream_request
from tests.support.eventstream import frame
from tests.support.tools import weather_tool
from tests.support.upstream import Reply, Upstream
from tests.support.wire_fuzz import mutate, wire_text
from tests.unit.providers.test_wire_fuzz import BEDROCK_ANSWER, BEDROCK_EVENTS, GEMINI_ANSWER, GEMINI_EVENTS

pytestmark = pytest.mark.integration
ENV = {"GEMINI_KEY": "AIzaSyTest-gemini-0123456789", "BEDROCK_KEY": "ABSKQmVkcm9ja0FQSUtleS1test"}
ROUNDS = 30
BOUND = 4 * 2**32  # a count the sidecar takes from an upstream: at most 2**32 (providers/base.py)
EVENT = {":content-type": "application/json", ":message-type": "event"}


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = await Upstream().start()
    yield server
    await server.close()


def config(provider: str, url: str) -> dict[str, Any]:
    d: dict[str, Any] = {"provider": provider, "base_url": url}
    if provider == "gemini":
        d |= {"model": "gemini-3-flash-preview", "api_key": {"env": "GEMINI_KEY"}}
    else:
        d |= {"model": "anthropic.claude-3-5-haiku-20241022-v1:0", "api_key": {"env": "BEDROCK_KEY"},
              "bedrock": {"region": "eu-west-1"}}  # fmt: skip
    return {
        "policy": {
            "default_route": "r",
            "deployments": {"d": d},
            "routes": {"r": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
            "routing": {"probes": {"enabled": False}, "breaker": {"min_requests": 1_000_000}},
        }
    }


def reply(provider: str, stream: bool, rng: random.Random) -> Reply:
    if not stream:
        valid = GEMINI_ANSWER if provider == "gemini" else BEDROCK_ANSWER
        return Reply(body=wire_text(mutate(valid, rng)).encode("utf-8", "surrogatepass"))
    if provider == "gemini":
        events = [mutate(e, rng, 1) if rng.random() < 0.3 else e for e in GEMINI_EVENTS]
        return Reply(
            chunks=[f"data: {wire_text(e)}\r\n\r\n".encode("utf-8", "surrogatepass") for e in events]
        )
    chunks = [
        frame({**EVENT, ":event-type": kind}, wire_text(mutate(body, rng, 1) if rng.random() < 0.1 else body)
              .encode("utf-8", "surrogatepass"))
        for kind, body in BEDROCK_EVENTS
    ]  # fmt: skip
    return Reply(chunks=chunks, headers={"content-type": "application/vnd.amazon.eventstream"})


def check_summary(summary: gen.GenerationSummary) -> None:
    u = summary.usage
    for count in (u.prompt_tokens, u.completion_tokens, u.cached_tokens, u.reasoning_tokens):
        assert 0 <= count <= BOUND, summary
    assert summary.cost_micros >= 0, summary


async def one_call(s: Any, stream: bool) -> grpc.StatusCode:
    fields = {"messages": [user("Weather in Paris?")], "tools": [weather_tool()], "tenant_id": "t1",
              "user_id": "u1"}  # fmt: skip
    events: list[gen.StreamGenerateResponse] = []
    try:
        if stream:
            async for event in s.stub.StreamGenerate(stream_request(**fields)):
                events.append(event)
            check_summary(events[-1].result.summary)
        else:
            check_summary((await s.stub.Generate(generate_request(**fields))).summary)
    except grpc.aio.AioRpcError as err:
        assert err.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), err
        if events:  # a stream that started ends interrupted, never as another call's failure
            assert (err.code(), (await rich(err)).reason) == (
                grpc.StatusCode.UNAVAILABLE,
                "STREAM_INTERRUPTED",
            )
        return err.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("provider", ["gemini", "bedrock"])
@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_hostile_answers_end_cleanly(
    serve: Any,
    upstream: Upstream,
    json_logs: io.StringIO,
    provider: str,
    stream: bool,
) -> None:
    rng = random.Random(f"{provider}-{stream}")
    s = await serve(config(provider, upstream.url), ENV)
    codes = []
    for _ in range(ROUNDS):
        upstream.push(reply(provider, stream, rng))
        codes.append(await one_call(s, stream))
    assert grpc.StatusCode.OK in codes and set(codes) - {grpc.StatusCode.OK}  # both kinds were tried
    errors = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    assert [e for e in errors if e.get("level") in ("ERROR", "CRITICAL")] == []
    assert "Traceback" not in json_logs.getvalue()
    upstream.push(_valid(provider, stream))
    assert await one_call(s, stream) is grpc.StatusCode.OK  # still answering


def _valid(provider: str, stream: bool) -> Reply:
    if not stream:
        return Reply(body=json.dumps(GEMINI_ANSWER if provider == "gemini" else BEDROCK_ANSWER).encode())
    if provider == "gemini":
        return Reply(chunks=[f"data: {json.dumps(e)}\r\n\r\n".encode() for e in GEMINI_EVENTS])
    chunks = [frame({**EVENT, ":event-type": k}, json.dumps(b).encode()) for k, b in BEDROCK_EVENTS]
    return Reply(chunks=chunks, headers={"content-type": "application/vnd.amazon.eventstream"})
