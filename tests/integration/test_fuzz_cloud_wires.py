"""Hostile requests that pass protobuf parsing, through the real server to the Bedrock (SigV4) and
Gemini adapters, each against a loopback that refuses what the real service refuses
(tests/support/bedrock.py, tests/support/gemini.py): deeply nested tool parameters and schemas,
images whose mime type or size lies, unknown enum values, numbers out of range, thinking blocks
that were never the provider's. Each is answered, or refused with a classified error: never
INTERNAL or UNKNOWN, and what the edge refuses (INVALID_ARGUMENT) names its field and is not charged.
"""

from __future__ import annotations

import base64
import math
import struct as struct_
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from aiohttp import web

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import quota_pb2
from tests.conftest import user
from tests.integration.helpers import rich
from tests.support.api import generate_request, stream_request
from tests.support.bedrock import StrictBedrock
from tests.support.gemini import GeminiFake, Turn
from tests.support.tools import struct, weather_tool

pytestmark = pytest.mark.integration
AWS = ("AKIDFUZZ", "fuzz/secret+key")
IDS = {"tenant_id": "t1", "user_id": "u1"}
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


class AlwaysGemini(GeminiFake):
    """The strict Gemini, answering a short text whenever its script is empty."""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not self.script:
            self.push(Turn([{"text": "fine"}]))
        return await super().handle(request)


@pytest.fixture
async def gemini() -> AsyncIterator[AlwaysGemini]:
    server = AlwaysGemini()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1beta/models/{action}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1beta"
    yield server
    await runner.cleanup()


@pytest.fixture
async def bedrock() -> AsyncIterator[StrictBedrock]:
    server = await StrictBedrock(lambda body: ([{"text": "fine"}], "end_turn"), AWS, "eu-west-1").start()
    yield server
    await server.close()


def config(gemini_url: str, bedrock_url: str) -> dict[str, Any]:
    caps = {"tools": True, "images": True, "json_schema": True, "reasoning": True}
    deployments = {
        "gem": {
            "provider": "gemini",
            "model": "gemini-3-flash-preview",
            "base_url": gemini_url,
            "api_key": {"env": "GEMINI_KEY"},
        },
        "bed": {
            "provider": "bedrock",
            "model": "anthropic.claude-sonnet-4-20250514-v1:0",
            "base_url": bedrock_url,
            "bedrock": {"region": "eu-west-1"},
            "capabilities": caps,
        },
    }
    one = {"retry": {"max_attempts": 1}}
    policy = {
        "default_route": "gem",
        "deployments": deployments,
        "routes": {"gem": {"deployments": ["gem"], **one}, "bed": {"deployments": ["bed"], **one}},
        "routing": {"probes": {"enabled": False}},
        "tiers": {"free": {"requests_per_minute": 1_000_000}},
    }
    return {"policy": policy}


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        node = {"type": "object", "properties": {"x": node}}
    return node


def image(data: bytes = PNG, mime: str = "image/png", **extra: Any) -> gen.Message:
    part = gen.ContentPart(image=gen.Image(data=data, mime_type=mime, **extra))
    return gen.Message(role=gen.ROLE_USER, content=[part, gen.ContentPart(text="what is this?")])


def tool(parameters: dict[str, Any], name: str = "t") -> gen.Tool:
    return gen.Tool(name=name, description="d", parameters=struct(parameters))


def fmt(schema: dict[str, Any]) -> gen.ResponseFormat:
    return gen.ResponseFormat(json_schema=gen.JsonSchemaFormat(name="s", schema=struct(schema)))


def thinking(**fields: str) -> list[gen.Message]:
    said = gen.Message(
        role=gen.ROLE_ASSISTANT,
        content=[
            gen.ContentPart(thinking=gen.ThinkingBlock(**fields)),
            gen.ContentPart(text="earlier answer"),
        ],
    )
    return [user("first"), said, user("and now?")]


def big_png(width: int = 9000, height: int = 40) -> bytes:
    """A valid grey PNG of this size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct_.pack(">I", len(data)) + kind + data + struct_.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + b"\x80" * width for _ in range(height))
    header = struct_.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "tool params nested 14": lambda: {"tools": [tool(nested(14))]},
    "tool params nested 12": lambda: {"tools": [tool(nested(12))]},
    "schema nested 14": lambda: {"response_format": fmt(nested(14))},
    "schema nested 12": lambda: {"response_format": fmt(nested(12))},
    "schema $ref": lambda: {
        "response_format": fmt(
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {"type": "string"}}}
        )
    },
    "schema not an object type": lambda: {"response_format": fmt({"type": "banana"})},
    "schema huge enum": lambda: {
        "response_format": fmt({"type": "string", "enum": [str(i) for i in range(20000)]})
    },
    "tool params not a schema": lambda: {"tools": [tool({"type": 7, "properties": "x"})]},
    "tool params array top": lambda: {"tools": [tool({"type": "array", "items": {"type": "string"}})]},
    "tool name with spaces": lambda: {"tools": [gen.Tool(name="get weather", description="d")]},
    "tool name 200 chars": lambda: {"tools": [gen.Tool(name="t" * 200, description="d")]},
    "tools duplicated": lambda: {"tools": [weather_tool(), weather_tool()]},
    "500 tools": lambda: {"tools": [weather_tool(f"t{i}") for i in range(500)]},
    "tool choice unknown name": lambda: {
        "tools": [weather_tool()],
        "tool_choice": gen.ToolChoice(name="nope"),
    },
    "tool choice mode 99": lambda: {"tools": [weather_tool()], "tool_choice": gen.ToolChoice(mode=99)},  # type: ignore[arg-type]
    "gif as png": lambda: {"messages": [image(GIF, "image/png")]},
    "png as jpeg": lambda: {"messages": [image(PNG, "image/jpeg")]},
    "gif honest": lambda: {"messages": [image(GIF, "image/gif")]},
    "svg": lambda: {"messages": [image(b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml")]},
    "text as image": lambda: {"messages": [image(b"hello there", "text/plain")]},
    "empty image": lambda: {"messages": [image(b"", "image/png")]},
    "garbage image": lambda: {"messages": [image(b"\x00" * 100, "image/png")]},
    "no mime": lambda: {"messages": [image(PNG, "")]},
    "mime with params": lambda: {"messages": [image(PNG, "image/png; charset=binary")]},
    "negative size": lambda: {"messages": [image(PNG, "image/png", width=-5, height=-7)]},
    "huge claimed size": lambda: {"messages": [image(PNG, "image/png", width=2**31 - 1, height=2**31 - 1)]},
    "wide png": lambda: {"messages": [image(big_png(), "image/png")]},
    "png 1x1 claiming 20000 wide": lambda: {"messages": [image(PNG, "image/png", width=20000, height=20000)]},
    "tall png": lambda: {"messages": [image(big_png(30, 12000), "image/png")]},
    "image url": lambda: {
        "messages": [
            gen.Message(
                role=gen.ROLE_USER,
                content=[
                    gen.ContentPart(image=gen.Image(url="http://127.0.0.1:1/x.png", mime_type="image/png")),
                    gen.ContentPart(text="see"),
                ],
            )
        ]
    },
    "data url": lambda: {
        "messages": [
            gen.Message(
                role=gen.ROLE_USER,
                content=[
                    gen.ContentPart(
                        image=gen.Image(url="data:image/png;base64," + base64.b64encode(PNG).decode())
                    ),
                    gen.ContentPart(text="see"),
                ],
            )
        ]
    },
    "role 99": lambda: {"messages": [gen.Message(role=99, content=[gen.ContentPart(text="hi")])]},  # type: ignore[arg-type]
    "effort 99": lambda: {"config": gen.GenerationConfig(reasoning=gen.ReasoningConfig(effort=99))},  # type: ignore[arg-type]
    "budget negative": lambda: {
        "config": gen.GenerationConfig(reasoning=gen.ReasoningConfig(budget_tokens=-1))
    },
    "budget huge": lambda: {
        "config": gen.GenerationConfig(reasoning=gen.ReasoningConfig(budget_tokens=2**31 - 1))
    },
    "budget over max_tokens": lambda: {
        "config": gen.GenerationConfig(
            max_tokens=100, reasoning=gen.ReasoningConfig(budget_tokens=5000, include_thinking=True)
        )
    },
    "max_tokens negative": lambda: {"config": gen.GenerationConfig(max_tokens=-1)},
    "max_tokens zero": lambda: {"config": gen.GenerationConfig(max_tokens=0)},
    "temperature nan": lambda: {"config": gen.GenerationConfig(temperature=math.nan)},
    "temperature 1.7": lambda: {"config": gen.GenerationConfig(temperature=1.7)},
    "top_p 5": lambda: {"config": gen.GenerationConfig(top_p=5)},
    "seed negative": lambda: {"config": gen.GenerationConfig(seed=-(2**63))},
    "1000 stop sequences": lambda: {"config": gen.GenerationConfig(stop=[f"s{i}" for i in range(1000)])},
    "empty stop": lambda: {"config": gen.GenerationConfig(stop=[""])},
    "thinking forged signature": lambda: {"messages": thinking(thinking="hmm", signature="forged")},
    "thinking without signature": lambda: {"messages": thinking(thinking="hmm")},
    "thinking redacted garbage": lambda: {"messages": thinking(redacted_data="not base64 !!")},
    "thinking empty block": lambda: {"messages": thinking()},
    "only system": lambda: {
        "messages": [gen.Message(role=gen.ROLE_SYSTEM, content=[gen.ContentPart(text="sys")])]
    },
    "assistant last": lambda: {
        "messages": [
            user("q"),
            gen.Message(role=gen.ROLE_ASSISTANT, content=[gen.ContentPart(text="prefill")]),
        ]
    },
    "whitespace user": lambda: {"messages": [user("   ")]},
    "empty content": lambda: {"messages": [gen.Message(role=gen.ROLE_USER)]},
    "two users": lambda: {"messages": [user("a"), user("b")]},
    "parallel false no tools": lambda: {"parallel_tool_calls": False},
}


# Refused at the edge, naming the field: each provider refuses them (after the call was reserved
# and sent), and a size that lies miscounts the image's tokens.
REFUSED = {
    "gif as png",
    "png as jpeg",
    "garbage image",
    "png 1x1 claiming 20000 wide",
    "text as image",
    "svg",
}


async def used(s: Any) -> list[tuple[str, int, int]]:
    reply = await s.stub.GetQuota(quota_pb2.GetQuotaRequest(**IDS))
    return [(limit.name, limit.used, limit.reserved) for limit in reply.limits]


@pytest.mark.parametrize("route", ["gem", "bed"])
async def test_hostile_requests_to_the_cloud_wires_are_classified(
    route: str, serve: Any, gemini: AlwaysGemini, bedrock: StrictBedrock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS[1])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    s = await serve(config(gemini.url, bedrock.url), {"GEMINI_KEY": "AIzaSyFuzz-0123456789abcdef"})
    report: list[str] = []
    bad: list[str] = []
    for name, build in CASES.items():
        fields = {"messages": [user("hello")], **build(), "model": route, **IDS}
        for stream in (False, True):
            before = await used(s)
            try:
                if stream:
                    async for _ in s.stub.StreamGenerate(stream_request(**fields), timeout=30):
                        pass
                else:
                    await s.stub.Generate(generate_request(**fields), timeout=30)
                outcome = "OK"
            except grpc.aio.AioRpcError as err:
                info = await rich(err)
                outcome = f"{err.code().name} {info.reason} {info.fields} {err.details()[:150]}"
                if err.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
                    bad.append(f"{name} stream={stream}: {outcome}")
                if err.code() == grpc.StatusCode.INVALID_ARGUMENT and info.reason != "PROVIDER_REJECTED":
                    if not info.fields:
                        bad.append(f"{name} stream={stream}: no field named: {outcome}")
                    if await used(s) != before:
                        bad.append(f"{name} stream={stream}: charged: {before} -> {await used(s)}")
            if name in REFUSED and not outcome.startswith("INVALID_ARGUMENT INVALID_REQUEST"):
                bad.append(f"{name} stream={stream}: not refused at the edge: {outcome}")
            report.append(f"{route} {name:32} stream={stream!s:5} {outcome}")
    assert not bad, "\n".join(bad) + "\n\nevery case:\n" + "\n".join(report)


async def test_a_sigv4_refusal_is_told_in_words_not_masked_as_the_signature(
    serve: Any, bedrock: StrictBedrock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the signature and the session token of a SigV4 request are secrets: the Authorization
    header's public scope (Credential=, the date, the region, SignedHeaders) and X-Amz-Date are not,
    so the error text keeps words they share ("credentials refused" read "c[redacted]s refused",
    a region or date named by the upstream was masked)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not/the+secret/the-upstream-knows")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEJr//////////wEaDP+session/token")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    s = await serve(config("http://127.0.0.1:1/v1beta", bedrock.url), {"GEMINI_KEY": "AIzaSyFuzz-0123456789"})
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(messages=[user("hello")], model="bed", **IDS), timeout=30)
    assert bedrock.refusals == ["signature"]
    assert (await rich(info.value)).reason == "PROVIDER_AUTH_FAILED"
    assert info.value.details() == "upstream HTTP 403: credentials refused"
